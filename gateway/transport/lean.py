"""A lean HTTP/1.1 path for long-polling POSTs, in front of aiohttp on the same port.

A long-polling client makes one request per delivery: with 1,000 subscribers at 10 publishes/s that
is 10,000 requests a second, and aiohttp's general request machinery (request and response objects,
router, middleware, a task per request) cost about two thirds of the gateway's core. This protocol
serves the one request shape long-polling clients send, and nothing else:

    POST <bayeux path or a CometD suffix>[?query] HTTP/1.1, with exactly one Content-Length and no
    Transfer-Encoding, Expect, Upgrade or folded header lines.

Every other request (REST calls, WebSocket upgrades, callback-polling GETs, OPTIONS, HTTP/1.0,
chunked bodies, anything malformed) is handed to aiohttp together with the rest of the connection,
so aiohttp's parser and error handling stay the authority on everything unusual.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import weakref
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import Final, cast

import structlog
from multidict import CIMultiDict

from gateway.transport.lean_head import MAX_HEAD, incomplete_is_ours, parse_head
from gateway.transport.long_polling import Answer, Pending, PollingTransport, error

# After a 413 the rest of the body is read and discarded (a lingering close), so a client still sending
# reads the answer instead of a reset: up to the declared length, at most this much and for this long.
LINGER_BYTES: Final = 16 * 1024 * 1024
LINGER_S: Final = 5.0
_STATUS_LINES: Final = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}

log = structlog.get_logger("gateway.transport.lean")


class LeanPolling:
    """Serves long-polling POSTs on the lean path; owns its open connections."""

    def __init__(
        self,
        *,
        polling: PollingTransport,
        paths: Iterable[str],
        max_body_bytes: int,
        keepalive_timeout_s: float,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.polling = polling
        # Headers on every answer, as aiohttp's on_response_prepare hook adds them to its own (HSTS).
        self.headers = b"".join(b"%s: %s\r\n" % (n.encode("latin-1"), v.encode("latin-1")) for n, v in headers)
        self.keepalive_timeout_s = keepalive_timeout_s
        self.max_body_bytes = max_body_bytes
        self.paths = frozenset(p.encode() for p in paths)
        self._connections: weakref.WeakSet[LeanProtocol] = weakref.WeakSet()
        self._date = b""
        self._date_at = 0
        self.closing = False
        self.busy = 0  # requests being answered
        self._drained = asyncio.Event()
        self._released: list[tuple[LeanProtocol, Pending]] = []

    def protocol_factory(self, fallback: Callable[[], asyncio.BaseProtocol]) -> Callable[[], LeanProtocol]:
        """A protocol factory for `loop.create_server`; `fallback` builds aiohttp's protocol."""
        return lambda: LeanProtocol(self, fallback)

    def serves(self, target: bytes) -> bool:
        """True when the request target is the Bayeux endpoint (query ignored, as aiohttp does)."""
        return target.partition(b"?")[0] in self.paths

    def date(self) -> bytes:
        """The Date header value, formatted once a second."""
        now = int(time.time())
        if now != self._date_at:
            self._date_at = now
            self._date = formatdate(now, usegmt=True).encode()
        return self._date

    def opened(self, connection: LeanProtocol) -> None:
        """Track a connection, for close_all."""
        self._connections.add(connection)

    async def close_all(self, grace_s: float = 1.0) -> None:
        """Close every lean connection; busy ones after their answer (held connects were released)."""
        self.closing = True
        for connection in list(self._connections):
            connection.close_when_idle()
        if self.busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), grace_s)
        for connection in list(self._connections):
            connection.abort()

    async def run_sweeper(self) -> None:
        """Close keep-alive connections idle for longer than keepalive_timeout_s (0: never)."""
        timeout = self.keepalive_timeout_s
        if timeout <= 0:
            return
        while True:
            await asyncio.sleep(min(timeout / 2, 15.0))
            cutoff = time.monotonic() - timeout
            for connection in list(self._connections):
                if not connection.busy and connection.seen < cutoff:  # a held connect is not idle
                    connection.close_when_idle()

    def released(self, connection: LeanProtocol, pending: Pending) -> None:
        """A held connect was released: answer it in the next pass, with the others released by then."""
        self._released.append((connection, pending))
        if len(self._released) == 1:
            asyncio.get_running_loop().call_soon(self._answer_released)

    def _answer_released(self) -> None:
        batch, self._released = self._released, []
        for connection, pending in batch:
            try:
                answer = self.polling.complete(pending)
            except Exception:
                log.exception("lean_request_failed")
                answer = error(500, "internal error")
            connection.answer(answer)

    def started(self) -> None:
        """A request is being answered."""
        self.busy += 1

    def finished(self) -> None:
        """A request was answered."""
        self.busy -= 1
        if self.closing and not self.busy:
            self._drained.set()


class LeanProtocol(asyncio.Protocol):
    """One client connection on the lean path, until it sends a request that is not ours."""

    def __init__(self, service: LeanPolling, fallback: Callable[[], asyncio.BaseProtocol]) -> None:
        self._service = service
        self._fallback = fallback
        self._transport: asyncio.Transport | None = None
        self._address: str | None = None  # the client's IP, for the login limits
        self._buffer = b""
        self.busy = False
        self._eof = False
        self._close_after = False
        self._handed_off = False
        self._write_paused = False
        self._read_paused = False
        self._linger = 0  # bytes still to discard after a 413; 0: not lingering
        self.seen = time.monotonic()  # last request data or answer, for the keep-alive timeout

    # -- asyncio callbacks ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport; TCP_NODELAY as aiohttp sets it (answers are small)."""
        # uvloop's transports are not asyncio.Transport subclasses, only the same interface.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else None
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._service.opened(self)

    def data_received(self, data: bytes) -> None:
        """Buffer; parse the next request unless one is being answered (answers go out in order)."""
        self.seen = time.monotonic()
        if self._linger:
            self._discard(len(data))
            return
        self._buffer = self._buffer + data if self._buffer else data
        if not self.busy:
            self._next()
        elif len(self._buffer) > self._service.max_body_bytes + MAX_HEAD and not self._read_paused:
            # A client pipelining while its connect is held: stop reading until we catch up.
            self._read_paused = True
            if self._transport is not None:
                self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        """Half-close: answer what is in progress, then close."""
        self._eof = True
        if self._linger:
            return None  # the client sent all it will: close
        if self.busy:
            return True  # keep the transport open for the answer
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """The client went away. A held connect stays held until it is answered or times out (as aiohttp)."""
        self._transport = None

    def pause_writing(self) -> None:
        """The client does not read its answers: stop taking requests."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The client reads again."""
        self._write_paused = False
        if not self.busy:
            self._next()

    # -- requests ------------------------------------------------------------------------------------

    def _next(self) -> None:
        """Start the next complete request in the buffer, or hand the connection to aiohttp."""
        transport = self._transport
        if transport is None or self._handed_off or self._write_paused:
            return
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
        if end < 0:
            if not incomplete_is_ours(buffer):
                self._hand_off()  # too long, not a POST or bare LFs: aiohttp answers it
            elif self._eof:
                transport.close()  # the client half-closed: the rest of this request never comes
            return
        head = parse_head(buffer[:end], self._service.paths)
        if head is None:
            self._hand_off()
            return
        headers, length, close = head
        start = end + 4
        if length > self._service.max_body_bytes:
            # Not reading the body: the connection cannot be reused.
            self._close_after = True
            self._buffer = b""
            self._write(error(413, "request body too large"))
            self._start_linger(length, len(buffer) - start)
            return
        if len(buffer) - start < length:
            if self._eof:
                transport.close()
            return  # the body is still arriving
        body = buffer[start : start + length]
        self._buffer = buffer[start + length :]
        self._close_after = close or self._service.closing
        self.busy = True
        self._service.started()
        asyncio.get_running_loop().create_task(self._serve(headers, body))

    async def _serve(self, headers: CIMultiDict[str], body: bytes) -> None:
        try:
            started = await self._service.polling.begin(headers, body, self._address)
        except Exception:
            # The protocol answers every bad message in-band: this is a bug, and still no traceback to the client.
            log.exception("lean_request_failed")
            started = error(500, "internal error")
        if isinstance(started, Pending) and started.held is not None:
            # Answered from the release callback, not from this task: one pass writes a whole fan-out.
            started.held.on_release(lambda _: self._service.released(self, started))
            return
        self.answer(started if isinstance(started, Answer) else self._service.polling.complete(started))

    def answer(self, answer: Answer) -> None:
        """Send the answer of the request in progress, then go on with the next one."""
        self.busy = False
        self._service.finished()
        if self._transport is None:
            return
        self.seen = time.monotonic()
        self._write(answer)
        if self._close_after or self._service.closing:
            self._transport.close()  # `Connection: close` or shutdown: pipelined requests after it are dropped
            return
        self._next()

    def _write(self, answer: Answer) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        status = answer.status
        lines = [
            _STATUS_LINES.get(status) or b"HTTP/1.1 %d Status\r\n" % status,
            b"Content-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\n"
            % (answer.content_type.encode(), len(answer.body), self._service.date()),
        ]
        for name, value in answer.headers:
            lines.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
        if self._service.headers:
            lines.append(self._service.headers)
        if self._close_after:
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        lines.append(answer.body)
        transport.write(b"".join(lines))

    def _start_linger(self, length: int, received: int) -> None:
        """Close after the 413, once the body still arriving is read (bounded in bytes and time)."""
        transport = self._transport
        if transport is None:
            return
        self._linger = min(length, LINGER_BYTES) - received
        if self._linger <= 0 or self._eof:
            self._linger = 0
            transport.close()
            return
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        asyncio.get_running_loop().call_later(LINGER_S, _close, transport)

    def _discard(self, size: int) -> None:
        """Bytes of a refused body: drop them; close once the bound is read."""
        self._linger = max(self._linger - size, 0)
        if not self._linger and self._transport is not None:
            self._transport.close()

    def _hand_off(self) -> None:
        """Give the connection, from the current request on, to aiohttp."""
        transport = self._transport
        if transport is None:
            return
        self._handed_off = True
        protocol = self._fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        buffer, self._buffer = self._buffer, b""
        if isinstance(protocol, asyncio.Protocol):
            if buffer:
                protocol.data_received(buffer)
            if self._eof:
                protocol.eof_received()

    # -- shutdown ------------------------------------------------------------------------------------

    def close_when_idle(self) -> None:
        """Close now if idle, else after the answer in progress."""
        self._close_after = True
        if not self.busy and self._transport is not None and not self._handed_off:
            self._transport.close()

    def abort(self) -> None:
        """Close at once (end of the shutdown grace)."""
        if self._transport is not None and not self._handed_off:
            self._transport.abort()


def _close(transport: asyncio.Transport) -> None:
    """Close unless closed already (the end of a lingering close)."""
    if not transport.is_closing():
        transport.close()
