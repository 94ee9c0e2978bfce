"""websocket transport: one socket carries a session's requests, replies and pushed events.

Writes go through one shared Flusher task rather than a task per socket: an uncompressed `send_frame`
completes without suspending unless the socket's buffer is backed up, so one task can write a publish to
thousands of sockets in a single pass, and idle sockets cost no task at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from gateway.bayeux.protocol import WEBSOCKET, BayeuxProtocol, RequestContext
from gateway.hub.session import WakeReason
from gateway.transport.codec import TransportError, decode, encode

if TYPE_CHECKING:
    from gateway.hub.session import HeldConnect, Session
    from gateway.transport.http import HttpPolicy
    from gateway.wire.message import Message

log = structlog.get_logger("gateway.transport.websocket")

# Above this many bytes waiting in a socket's buffer, aiohttp would suspend the sender: such a socket
# is written by its own task so it cannot stall the others.
_BACKED_UP: Final = 32 * 1024
_WRITE_ERRORS: Final = (ConnectionError, RuntimeError)

Encoder = Callable[[list["Message"]], bytes]


class Flusher:
    """Writes the pending frames of every WebSocket that has something to send, from one task."""

    def __init__(self) -> None:
        self._dirty: dict[_Connection, None] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        # One publish fans out the same message object to many sockets: encode it once per pass.
        self._cache: dict[int, tuple[Message, bytes]] = {}

    def mark(self, conn: _Connection) -> None:
        """Schedule `conn` for writing."""
        self._dirty[conn] = None
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def close(self) -> None:
        """Stop the flusher task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _encode(self, messages: list[Message]) -> bytes:
        if len(messages) != 1:
            return encode(messages)
        message = messages[0]
        hit = self._cache.get(id(message))
        if hit is not None and hit[0] is message:
            return hit[1]
        data = encode(messages)
        self._cache[id(message)] = (message, data)  # keeps `message` alive, so its id stays unique
        return data

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._dirty:
                self._waiter = loop.create_future()
                await self._waiter
                self._waiter = None
            batch, self._dirty = self._dirty, {}
            try:
                for conn in batch:
                    if conn.own_task is not None:
                        continue  # its own task writes until nothing is left
                    if conn.backed_up():
                        conn.flush_in_own_task()
                        continue
                    try:
                        await conn.flush(self._encode)
                    except _WRITE_ERRORS:
                        pass  # the socket is closing; its reader loop ends the connection
                    except Exception:
                        log.exception("websocket_flush_failed")
            finally:
                self._cache.clear()


class _Connection:
    """One WebSocket: its request context (sessions bound to it), outbox of replies and held connects."""

    __slots__ = ("__weakref__", "_flusher", "_held", "_outbox", "ctx", "own_task", "protocol", "transport", "ws")

    def __init__(
        self,
        ws: web.WebSocketResponse,
        ctx: RequestContext,
        *,
        protocol: BayeuxProtocol,
        flusher: Flusher,
        transport: asyncio.Transport | None,
    ) -> None:
        self.ws = ws
        self.ctx = ctx
        self.protocol = protocol
        self.transport = transport
        self._flusher = flusher
        self._outbox: list[list[Message]] | None = None
        self._held: set[HeldConnect] | None = None
        self.own_task: asyncio.Task[None] | None = None
        # Stored once: sessions keep this exact object as their pusher, compared with `is`.
        ctx.pusher = self.wake

    def wake(self) -> None:
        """Something is waiting to be written (sessions call this on enqueue)."""
        if not self.ws.closed:
            self._flusher.mark(self)

    def send(self, messages: list[Message]) -> None:
        """Queue one frame of replies (written before the events queued after them: a reply may carry
        events drained earlier, a released connect's, and later events must not overtake those)."""
        if messages and not self.ws.closed:
            if self._outbox is None:
                self._outbox = []
            self._outbox.append(messages)
            self.wake()

    def hold(self, held: HeldConnect, session: Session) -> None:
        """Answer a held connect on this socket when it is released."""
        if self._held is None:
            self._held = set()
        self._held.add(held)

        def released(done: HeldConnect) -> None:
            if self._held is not None:
                self._held.discard(done)
            late = self.protocol.finish_connect(done, session)
            if late is not None:
                self.send(late)

        held.on_release(released)

    def _mine(self, session: Session) -> bool:
        return session.pusher is self.ctx.pusher and not session.connect_only

    def pending(self) -> bool:
        """True if anything waits to be written."""
        return bool(self._outbox) or any(s.queue and self._mine(s) for s in self.ctx.sessions)

    def backed_up(self) -> bool:
        """True if the socket's send buffer is so full that a write would suspend."""
        transport = self.transport
        return transport is not None and transport.get_write_buffer_size() > _BACKED_UP

    async def flush(self, encoder: Encoder = encode) -> None:
        """Write the queued frames in order, then the events pushed since the last of them."""
        ws = self.ws
        if ws.closed:
            return
        outbox = self._outbox
        while outbox:
            await ws.send_frame(encode(outbox.pop(0)), WSMsgType.TEXT)
        for session in self.ctx.sessions:
            if session.queue and self._mine(session):
                await ws.send_frame(encoder(session.drain()), WSMsgType.TEXT)

    def flush_in_own_task(self) -> None:
        """Write a slow socket from its own task, until it has nothing left."""

        async def run() -> None:
            try:
                while self.pending() and not self.ws.closed:
                    await self.flush()
            except _WRITE_ERRORS:
                pass
            finally:
                self.own_task = None

        self.own_task = asyncio.create_task(run())

    def close(self) -> None:
        """Unbind sessions (they live on until expiry) and release their held connects."""
        pusher = self.ctx.pusher
        for session in self.ctx.sessions:
            if pusher is not None:
                session.unbind(pusher)
        for held in list(self._held or ()):
            held.wake(WakeReason.REPLACED)  # starts the session's expiry clock


class WebSocketTransport:
    """Upgrades requests on the Bayeux path and runs each socket's reader loop."""

    def __init__(self, *, protocol: BayeuxProtocol, http: HttpPolicy) -> None:
        self._protocol = protocol
        self._http = http
        self._settings = protocol.settings
        self._flusher = Flusher()
        self._open: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one WebSocket until it closes."""
        if not self._http.origin_allowed(request.headers):
            return self._http.refuse_origin()
        ws = web.WebSocketResponse(
            max_msg_size=self._settings.max_body_bytes,
            heartbeat=self._settings.websocket_heartbeat_s,
        )
        await ws.prepare(request)
        self._open.add(ws)
        ctx = RequestContext(
            transport=WEBSOCKET,
            headers=request.headers,
            browser_id=self._http.browser_id(request.headers),
            address=request.remote,
        )
        conn = _Connection(ws, ctx, protocol=self._protocol, flusher=self._flusher, transport=request.transport)
        try:
            await self._read_loop(conn)
        finally:
            conn.close()
            if not ws.closed:
                await ws.close()
        return ws

    async def _read_loop(self, conn: _Connection) -> None:
        ws = conn.ws
        async for frame in ws:
            if frame.type == WSMsgType.TEXT or frame.type == WSMsgType.BINARY:
                try:
                    messages = decode(frame.data, max_messages=self._settings.max_messages_per_request)
                except TransportError as exc:
                    log.info("websocket_bad_frame", reason=exc.reason)
                    await ws.close(code=exc.ws_close, message=exc.reason.encode()[:120])
                    return
                outcome = await self._protocol.process(messages, conn.ctx)
                conn.send(outcome.messages)
                if outcome.held is not None and outcome.session is not None:
                    conn.hold(outcome.held, outcome.session)
            elif frame.type == WSMsgType.ERROR:
                # aiohttp has already closed with 1009 (frame too big) or 1002/1007 (bad framing).
                log.info("websocket_error", error=str(ws.exception()))
                return

    async def close_all(self) -> None:
        """Close every open socket with 1001 (going away): the gateway is stopping."""
        sockets = list(self._open)
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets),
            return_exceptions=True,
        )
        await self._flusher.close()
