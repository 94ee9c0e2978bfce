"""websocket transport: one socket carries a session's requests, replies and pushed events."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from typing import TYPE_CHECKING

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from gateway.bayeux.protocol import WEBSOCKET, BayeuxProtocol, RequestContext
from gateway.hub.session import WakeReason
from gateway.transport.codec import TransportError, decode, encode

if TYPE_CHECKING:
    from gateway.bayeux.message import Message
    from gateway.hub.session import HeldConnect, Session
    from gateway.transport.http import HttpPolicy

log = structlog.get_logger("gateway.transport.websocket")


class _Connection:
    """One WebSocket: an outbox of frames and a writer task that also drains bound sessions."""

    __slots__ = ("__weakref__", "_dirty", "_held", "_outbox", "_tasks", "_waiter", "ctx", "ws")

    def __init__(self, ws: web.WebSocketResponse, ctx: RequestContext) -> None:
        self.ws = ws
        self.ctx = ctx
        self._outbox: deque[list[Message]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._dirty = False
        self._held: set[HeldConnect] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Something is waiting to be written (called by sessions on enqueue)."""
        self._dirty = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def send(self, messages: list[Message]) -> None:
        """Queue one frame (replies keep their own frame, after the events queued before them)."""
        if messages:
            self._outbox.append(messages)
            self.wake()

    def answer_later(self, protocol: BayeuxProtocol, held: HeldConnect, session: Session) -> None:
        """Answer a held connect on this socket when it is released."""
        self._held.add(held)
        task = asyncio.create_task(self._answer(protocol, held, session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, protocol: BayeuxProtocol, held: HeldConnect, session: Session) -> None:
        try:
            late = await protocol.await_connect(held, session)
        finally:
            self._held.discard(held)
        if late is not None:
            self.send(late)

    async def write_loop(self) -> None:
        """Write frames until the socket closes: pushed events first, then replies."""
        loop = asyncio.get_running_loop()
        ws = self.ws
        while not ws.closed:
            if not self._dirty:
                self._waiter = loop.create_future()
                await self._waiter
                self._waiter = None
            self._dirty = False
            for session in self.ctx.sessions:
                if session.pusher == self.wake and not session.connect_only and session.queue:
                    await ws.send_frame(encode(session.drain()), WSMsgType.TEXT)
            while self._outbox:
                await ws.send_frame(encode(self._outbox.popleft()), WSMsgType.TEXT)

    def close(self) -> None:
        """Unbind sessions (they stay alive until expiry) and release their held connects."""
        for session in self.ctx.sessions:
            if session.pusher == self.wake:
                session.pusher = None
        # Not cancelled: each answer task must run on to release its connect and start session expiry.
        for held in list(self._held):
            held.wake(WakeReason.REPLACED)


class WebSocketTransport:
    """Upgrades requests on the Bayeux path and runs the reader loop."""

    def __init__(self, *, protocol: BayeuxProtocol, http: HttpPolicy) -> None:
        self._protocol = protocol
        self._http = http
        self._settings = protocol.settings
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
        conn = _Connection(ws, RequestContext(transport=WEBSOCKET, headers=request.headers))
        conn.ctx.pusher = conn.wake
        conn.ctx.browser_id = self._http.browser_id(request)
        writer = asyncio.create_task(conn.write_loop())
        try:
            await self._read_loop(conn)
        finally:
            conn.close()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer
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
                    conn.answer_later(self._protocol, outcome.held, outcome.session)
            elif frame.type == WSMsgType.ERROR:
                # aiohttp already closed with 1009 for an oversized frame, 1002/1007 for bad framing.
                log.info("websocket_error", error=str(ws.exception()))
                return

    async def close_all(self) -> None:
        """Close every open socket with 1001 (going away): the gateway is stopping."""
        sockets = list(self._open)
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets),
            return_exceptions=True,
        )
