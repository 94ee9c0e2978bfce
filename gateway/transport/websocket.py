"""websocket transport: one socket carries a session's requests, replies and pushed events.

Writes go through one shared Flusher task rather than a task per socket: an uncompressed `send_frame`
completes without suspending unless the socket's buffer is backed up, so one task can write a publish to
thousands of sockets in a single pass, and idle sockets cost no task at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
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

_WRITE_ERRORS: Final = (ConnectionError, RuntimeError)

Encoder = Callable[[list["Message"]], bytes]
OnCut = Callable[[str], None]

_CLOSE_GRACE_S: Final = 1.0  # how long a socket whose sessions are all removed waits for a new handshake


class Flusher:
    """Writes the pending frames of every WebSocket that has something to send, from one task."""

    def __init__(self) -> None:
        self._dirty: dict[_Connection, None] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        # One publish fans out the same message object to many sockets: encode it once per pass.
        self._cache: dict[int | tuple[int, ...], tuple[tuple[Message, ...], bytes]] = {}

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
        # Keyed by the messages' identities: every session that queued the same publishes since the last
        # pass (one, or several once the sockets fall behind) shares one encoding. Without the several,
        # a loaded gateway encoded per socket, fell further behind and queued more: a spiral.
        key = id(messages[0]) if len(messages) == 1 else tuple(map(id, messages))
        hit = self._cache.get(key)
        if hit is not None and len(hit[0]) == len(messages) and all(map(operator.is_, hit[0], messages)):
            return hit[1]
        data = encode(messages)
        self._cache[key] = (tuple(messages), data)  # keeps the messages alive, so their ids stay unique
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
                        if not await conn.flush(self._encode):
                            conn.flush_in_own_task()  # it backed up on the way: never stall the others
                    except _WRITE_ERRORS:
                        pass  # the socket is closing; its reader loop ends the connection
                    except Exception:
                        log.exception("websocket_flush_failed")
            finally:
                self._cache.clear()


class _Connection:
    """One WebSocket: its request context (sessions bound to it), outbox of replies and held connects."""

    __slots__ = (
        "__weakref__",
        "_closing",
        "_drain_timeout_s",
        "_flusher",
        "_held",
        "_on_cut",
        "_outbox",
        "_unsent",
        "ctx",
        "own_task",
        "protocol",
        "transport",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        ctx: RequestContext,
        *,
        protocol: BayeuxProtocol,
        flusher: Flusher,
        transport: asyncio.Transport | None,
        drain_timeout_s: float = 30.0,
        on_cut: OnCut | None = None,
    ) -> None:
        self.ws = ws
        self.ctx = ctx
        self.protocol = protocol
        self.transport = transport
        self._flusher = flusher
        self._outbox: list[list[Message]] | None = None
        self._held: set[HeldConnect] | None = None
        self.own_task: asyncio.Task[None] | None = None
        self._drain_timeout_s = drain_timeout_s
        self._on_cut = on_cut
        self._closing: asyncio.Task[None] | None = None
        self._unsent: bytes | None = None
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
        return (
            self._unsent is not None or bool(self._outbox) or any(s.queue and self._mine(s) for s in self.ctx.sessions)
        )

    def backed_up(self) -> bool:
        """True if the socket's send buffer is so full that a write might suspend (asyncio pauses a protocol
        above the high-water mark and resumes it only below the low one)."""
        return not self._fits(0)

    def _fits(self, size: int) -> bool:
        transport = self.transport
        if transport is None:
            return True
        low, high = transport.get_write_buffer_limits()
        buffered = transport.get_write_buffer_size()
        return buffered <= low and buffered + size < high

    async def flush(self, encoder: Encoder = encode, *, own_task: bool = False) -> bool:
        """Write the queued frames in order, then the events pushed since the last of them.

        From the shared flusher (`own_task` false) only what cannot suspend is written: it returns False, the
        frame kept, as soon as one would not fit below the high-water mark. From the socket's own task every
        write must drain within the drain timeout, or the socket is cut.
        """
        ws = self.ws
        if ws.closed:
            return True
        if self._unsent is not None:
            data, self._unsent = self._unsent, None
            if not await self._write(data, own_task):
                return False
        outbox = self._outbox
        while outbox:
            if not await self._write(encode(outbox.pop(0)), own_task):
                return False
        for session in tuple(self.ctx.sessions):
            if session.queue and self._mine(session) and not await self._write(encoder(session.drain()), own_task):
                return False
        if self._ended():
            self._close_soon()
        return True

    async def _write(self, data: bytes, own_task: bool) -> bool:
        if not own_task:
            if not self._fits(len(data)):
                self._unsent = data  # written first by the socket's own task
                return False
            await self.ws.send_frame(data, WSMsgType.TEXT)
            return True
        async with asyncio.timeout(self._drain_timeout_s):
            await self.ws.send_frame(data, WSMsgType.TEXT)
        return True

    def _ended(self) -> bool:
        """True once every session this socket carried was removed: nothing will use it any more."""
        sessions = self.ctx.sessions
        return bool(sessions) and all(s.closed for s in sessions)

    def _close_soon(self) -> None:
        if self._closing is None and not self.ws.closed:
            self._closing = asyncio.create_task(self._close())

    async def _close(self) -> None:
        # A client told to handshake again (402 after an eviction) does so on this very socket, at once:
        # closing it meanwhile fails that handshake. Only a socket still unused after a moment is closed.
        await asyncio.sleep(_CLOSE_GRACE_S)
        self._closing = None  # past the grace: the close below is not cancelled when the socket ends
        if self._ended():
            await self.ws.close(code=WSCloseCode.OK, message=b"session removed")

    def flush_in_own_task(self) -> None:
        """Write a slow socket from its own task, until it has nothing left (or cut it if it does not drain)."""

        async def run() -> None:
            try:
                while self.pending() and not self.ws.closed:
                    await self.flush(own_task=True)
            except TimeoutError:
                self.cut("drain_timeout")
            except _WRITE_ERRORS:
                pass
            finally:
                self.own_task = None

        self.own_task = asyncio.create_task(run())

    def cut(self, reason: str) -> None:
        """Drop the TCP connection at once (a close frame could not get through); sessions live on to expiry."""
        log.warning("websocket_cut", reason=reason, sessions=[s.client_id for s in self.ctx.sessions])
        if self._on_cut is not None:
            self._on_cut(reason)
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Unbind sessions (they live on until expiry) and release their held connects."""
        pusher = self.ctx.pusher
        for session in self.ctx.sessions:
            if pusher is not None:
                session.unbind(pusher)
        for held in list(self._held or ()):
            held.wake(WakeReason.REPLACED)  # starts the session's expiry clock
        if self._closing is not None:
            # The socket ended within the grace (its client, or the gateway stopping): no close is left pending.
            self._closing.cancel()
            self._closing = None


class WebSocketTransport:
    """Upgrades requests on the Bayeux path and runs each socket's reader loop."""

    def __init__(self, *, protocol: BayeuxProtocol, http: HttpPolicy, on_cut: OnCut | None = None) -> None:
        self._protocol = protocol
        self._on_cut = on_cut
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
            heartbeat=self._settings.ws_ping_interval_s,
        )
        await ws.prepare(request)
        self._open.add(ws)
        ctx = RequestContext(
            transport=WEBSOCKET,
            headers=request.headers,
            browser_id=self._http.browser_id(request.headers),
            address=request.remote,
        )
        conn = _Connection(
            ws,
            ctx,
            protocol=self._protocol,
            flusher=self._flusher,
            transport=request.transport,
            drain_timeout_s=self._settings.ws_drain_timeout_s,
            on_cut=self._on_cut,
        )
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
