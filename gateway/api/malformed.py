"""Requests aiohttp's parser refuses (over-long lines, invalid characters in the path, no Host...), answered
in the dialect's envelope when the request line names a dialect's path.

aiohttp answers a request it cannot parse from its protocol (`RequestHandler.handle_error`, 400 in plain
text), before any application, router or middleware sees it; there is no request path by then. This
handler keeps the start of the last request line it was sent (a slice per chunk of data, only when the
chunk starts with one), and when the parser fails, a path under a dialect's prefix gets that dialect's
400 (`BadRequest`) instead; every other path keeps aiohttp's answer. Either way the connection closes.

Known limit: with pipelined requests in one chunk, the dialect is that of the chunk's first request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from gateway.api.common import json_response
from gateway.api.errors import ErrorTable
from gateway.api.failures import BadRequest

_KEEP: Final = 256  # bytes of the request target kept: enough for any dialect's prefix
_METHOD: Final = 24  # a request line's method is found within this many bytes

Dialects = tuple[tuple[bytes, ErrorTable], ...]  # (path prefix, its error table)


class DialectRequestHandler(RequestHandler):
    """aiohttp's protocol, with its parser's refusals in the dialect's envelope."""

    __slots__ = ("_dialects", "_target")

    def __init__(self, dialects: Dialects, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dialects = dialects
        self._target = b""

    def data_received(self, data: bytes) -> None:
        """Remember the target of a request line starting this chunk; then parse as aiohttp does."""
        space = data.find(b" ", 0, _METHOD)
        if space > 0 and data[space + 1 : space + 2] == b"/" and data[:space].isalpha():
            self._target = data[space + 1 : space + 1 + _KEEP]
        super().data_received(data)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A parser refusal under a dialect's prefix: its envelope; anything else: aiohttp's answer."""
        errors = self._dialect() if status == 400 and isinstance(exc, HttpProcessingError) else None
        if errors is None:
            return super().handle_error(request, status, exc, message)
        self.log_debug("Malformed request in the %s dialect: %s", errors.dialect, exc)
        response = json_response(errors.error(BadRequest))
        response.force_close()
        return response

    def _dialect(self) -> ErrorTable | None:
        target = self._target
        for prefix, errors in self._dialects:
            # The prefix, then the end of a segment (or an invalid character: still this dialect's path).
            if target.startswith(prefix) and not target[len(prefix) : len(prefix) + 1].isalnum():
                return errors
        return None


def handler_factory(server: web.Server, dialects: Dialects) -> Callable[[], RequestHandler]:
    """A protocol factory building what `server()` builds, with the dialect envelopes."""
    # What Server.__call__ passes: the runner's handler options (timeouts, limits); no public accessor.
    kwargs: dict[str, Any] = server._kwargs
    loop = server._loop
    return lambda: DialectRequestHandler(dialects, server, loop=loop, **kwargs)
