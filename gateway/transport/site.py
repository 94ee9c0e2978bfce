"""The listening site: aiohttp's TCP site, with connections starting on the lean long-polling path.

Connections are served by aiohttp's protocol with the dialects' envelopes for requests its parser refuses
(api/malformed.py); with the lean path they start on it and are handed to that protocol when not ours.
With an SSLContext the site speaks HTTPS/WSS only; the lean path then sits behind the TLS layer like aiohttp.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from aiohttp import web

from gateway.api.malformed import Dialects, handler_factory
from gateway.transport.lean import LeanPolling


class BayeuxSite(web.TCPSite):
    """A TCPSite whose connections go to `lean` first; without `lean` and `dialects` it is aiohttp's own."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        lean: LeanPolling | None,
        dialects: Dialects = (),
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, backlog=backlog)
        self._lean = lean
        self._dialects = dialects

    async def start(self) -> None:
        """Listen; like TCPSite.start, with the lean protocol in front of aiohttp's."""
        if self._lean is None and not self._dialects:
            await super().start()
            return
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        aiohttp_protocol: Callable[[], asyncio.BaseProtocol] = (
            handler_factory(server, self._dialects) if self._dialects else server
        )
        factory = self._lean.protocol_factory(aiohttp_protocol) if self._lean is not None else aiohttp_protocol
        self._server = await asyncio.get_running_loop().create_server(
            factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port
