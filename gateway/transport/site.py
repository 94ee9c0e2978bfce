"""The listening site: aiohttp's TCP site, with connections starting on the lean long-polling path.

With an SSLContext the site speaks HTTPS/WSS only; the lean path then sits behind the TLS layer like aiohttp.
"""

from __future__ import annotations

import asyncio
import ssl

from aiohttp import web

from gateway.transport.lean import LeanPolling


class BayeuxSite(web.TCPSite):
    """A TCPSite whose connections go to `lean` first; without `lean` it is aiohttp's own."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        lean: LeanPolling | None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, backlog=backlog)
        self._lean = lean

    async def start(self) -> None:
        """Listen; like TCPSite.start, with the lean protocol in front of aiohttp's."""
        if self._lean is None:
            await super().start()
            return
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._lean.protocol_factory(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port
