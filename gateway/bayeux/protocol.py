"""BayeuxProtocol: turns a batch of client messages into replies; holds /meta/connect.

Transports hand it decoded messages and a RequestContext and write back what it returns; it knows
nothing of HTTP or WebSocket framing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import structlog

from gateway.bayeux import errors
from gateway.bayeux.binding import SessionBinding, without_credentials
from gateway.bayeux.browsers import BrowserHolds
from gateway.bayeux.replay import Replayer
from gateway.bayeux.security import Denied, Identity
from gateway.bayeux.subscriptions import Subscriptions
from gateway.bayeux.validation import check_fields
from gateway.hub.session import HeldConnect, Session, WakeReason
from gateway.wire.channel import is_meta, is_service
from gateway.wire.limits import DEPTH_EXCEEDED, Refused
from gateway.wire.message import (
    CONNECT,
    DISCONNECT,
    HANDSHAKE,
    SUBSCRIBE,
    UNSUBSCRIBE,
    VERSION,
    Message,
    Reconnect,
    fail,
    reply_to,
)

if TYPE_CHECKING:
    from gateway.bayeux.extensions import Extensions
    from gateway.bayeux.security import SecurityPolicy
    from gateway.bayeux.server import BayeuxServer
    from gateway.hub.hub import Hub
    from gateway.settings import BayeuxSettings

log = structlog.get_logger("gateway.bayeux")

WEBSOCKET: Final = "websocket"
LONG_POLLING: Final = "long-polling"
CALLBACK_POLLING: Final = "callback-polling"


@dataclass(slots=True)
class RequestContext:
    """What the transport knows about the request carrying the messages."""

    transport: str
    headers: Mapping[str, str]
    browser_id: str | None = None
    # The client's address (its IP), for the login limits; None when the transport does not know it.
    address: str | None = None
    # Set by a handshake over HTTP when the client had no browser cookie: the transport sets it.
    new_browser_id: str | None = None
    # WebSocket: wakes the connection's writer; sessions connecting over it push through it.
    pusher: Callable[[], None] | None = None
    sessions: set[Session] = field(default_factory=set)
    # Sessions this request (or WebSocket) proved it may act for with their identity's credentials.
    proven: set[Session] | None = None


@dataclass(slots=True)
class Outcome:
    """Messages to send now, and a /meta/connect to answer later (if one is held)."""

    messages: list[Message]
    held: HeldConnect | None = None
    session: Session | None = None


class BayeuxProtocol:
    """The Bayeux 1.0 server state machine over the Hub."""

    def __init__(
        self,
        *,
        hub: Hub,
        server: BayeuxServer,
        policy: SecurityPolicy,
        extensions: Extensions,
        settings: BayeuxSettings,
        replayer: Replayer | None = None,
    ) -> None:
        self.hub = hub
        self.server = server
        self.policy = policy
        self._replayer = replayer or Replayer(log=None, logs=server.logs, hub=hub)
        self._subscriptions = Subscriptions(hub=hub, policy=policy, replayer=self._replayer)
        self.extensions = extensions
        self.settings = settings
        self._advice: Final = {
            "reconnect": Reconnect.RETRY.value,
            "interval": settings.interval_ms,
            "timeout": settings.timeout_ms,
        }
        # A lost session is told to handshake again, and how long to wait for the answer: aiocometd-ng replaces
        # its whole advice with the last one and times its requests by its `timeout`; without one, a handshake
        # sent to a server that died meanwhile (no reset reached the client) would wait forever.
        self._rehandshake: Final = {
            "reconnect": Reconnect.HANDSHAKE.value,
            "interval": 0,
            "timeout": settings.timeout_ms,
        }
        self._browsers = BrowserHolds(limit=settings.max_sessions_per_browser)
        self._binding = SessionBinding(policy=policy, require_browser_cookie=settings.require_browser_cookie)
        hub.on_removed(self._log_removed)

    # -- entry points ---------------------------------------------------------------------------------

    async def process(self, messages: list[Any], ctx: RequestContext) -> Outcome:
        """Handle one request's messages in order; return the response and any held connect."""
        handshake_replies: list[Message] = []
        replies: list[Message] = []
        held: HeldConnect | None = None
        flush: Session | None = None
        connect_reply: Message | None = None
        batched: set[Session] = set()
        events: list[Message] = []
        replayed = False
        with ExitStack() as batch:
            for message in messages:
                if type(message) is Refused:
                    replies.append(self._refused(message))
                    continue
                if not isinstance(message, dict):
                    replies.append(fail({}, errors.MESSAGE_INVALID))
                    continue
                problem = check_fields(message)
                if problem is not None:
                    replies.append(problem)
                    continue
                channel = message["channel"]
                if channel == HANDSHAKE:
                    reply, session = await self._handshake(message, ctx)
                    handshake_replies.append(reply)
                    if session is not None:
                        flush = session
                    continue
                session = self.hub.get(message.get("clientId"))
                if (
                    session is not None
                    and not self._binding.bound(session, ctx)
                    and not await self._binding.admits(session, message, ctx)
                ):
                    session = None  # another connection without the session's proof: unknown to it
                if session is None:
                    replies.append(self._unknown_session(message))
                    continue
                if session not in batched:
                    batched.add(session)
                    batch.enter_context(session.batch())
                flush = session
                if not self.extensions.incoming(message, session):
                    replies.append(fail(reply_to(message), errors.MESSAGE_DELETED))
                    continue
                if channel == CONNECT:
                    reply, hold = self._connect(message, session, ctx, alone=len(messages) == 1)
                    if hold is not None:
                        held = hold
                        continue
                    connect_reply = reply
                    replies.append(reply)
                    continue
                self.hub.touch(session)
                if channel == SUBSCRIBE:
                    reply, replay = await self._subscriptions.subscribe(message, session)
                    replayed = replayed or (replay and session is flush)
                elif channel == UNSUBSCRIBE:
                    reply = self._subscriptions.unsubscribe(message, session)
                elif channel == DISCONNECT:
                    reply = reply_to(message)
                    reply["successful"] = True
                    self.extensions.outgoing_reply(message, reply, session)
                    self.hub.remove(session, "disconnect")
                    replies.append(reply)
                    continue
                elif is_meta(channel):
                    reply = fail(reply_to(message), errors.META_PUBLISH_DENIED)
                else:
                    reply = await self._publish(message, session)
                self.extensions.outgoing_reply(message, reply, session)
                replies.append(reply)
            # Inside the batch: the requesting session's events ride on this response; on leaving it, the
            # other sessions touched by the request are woken for what they queued.
            if flush is not None and not flush.closed:
                if connect_reply is not None:
                    events = self.extensions.connect_delivery(flush, connect_reply)
                elif not flush.connect_only:
                    events = flush.drain()
        if replayed:
            # A replay rides on this response: the subscribe reply first, so a client that waits for it
            # (aiocometd) is not sent thousands of events before it.
            return Outcome(handshake_replies + replies + events, held, flush)
        return Outcome(handshake_replies + events + replies, held, flush)

    def finish_connect(self, held: HeldConnect, session: Session) -> list[Message] | None:
        """The events and reply of a released connect, or None if a newer connect replaced it."""
        self._browsers.release(held)
        reason = held.reason
        reply = self._connect_reply(held.request)
        if reason is WakeReason.REPLACED:
            session.release(held, expires_at=self._expiry())
            return None
        if reason is WakeReason.EVICTED:
            fail(reply, errors.SESSION_UNKNOWN, dict(self._rehandshake))
        elif reason is WakeReason.REMOVED:
            reply["advice"] = {**self._advice, "reconnect": Reconnect.NONE.value}
        events = self.extensions.connect_delivery(session, reply) if not session.closed else session.drain()
        session.release(held, expires_at=self._expiry())
        self.extensions.outgoing_reply(held.request, reply, session)
        return [*events, reply]

    # -- meta handlers --------------------------------------------------------------------------------

    # /meta/handshake  MUST: version, supportedConnectionTypes; MAY: minimumVersion, ext, id.
    # Reply MUST: version, supportedConnectionTypes, clientId, successful; MAY: advice, ext, id.
    async def _handshake(self, message: Message, ctx: RequestContext) -> tuple[Message, Session | None]:
        reply = reply_to(message)
        if not self.extensions.incoming(message, None):
            return fail(reply, errors.MESSAGE_DELETED), None
        try:
            identity = await self.policy.authenticate(message, ctx.headers, ctx.address)
        except Exception:
            log.exception("authenticate_failed", transport=ctx.transport)
            identity = Denied("policy error")
        if isinstance(identity, Denied):
            log.info("handshake_denied", transport=ctx.transport, reason=identity.reason)
            fail(reply, errors.HANDSHAKE_DENIED, {"reconnect": Reconnect.NONE.value, "interval": 0})
            self.extensions.outgoing_reply(message, reply, None)
            return reply, None
        browser_id = ctx.browser_id
        if browser_id is None and ctx.transport != WEBSOCKET:
            browser_id = ctx.new_browser_id = secrets.token_hex(8)
        session = self.hub.create_session(
            transport=ctx.transport,
            user=identity.name if isinstance(identity, Identity) else None,
            identity=identity,
            browser_id=browser_id,
        )
        session.cookie_returned = ctx.browser_id is not None
        self._bind(session, ctx)
        reply.update(
            version=VERSION,
            minimumVersion=VERSION,
            supportedConnectionTypes=list(self.settings.transports),
            clientId=session.client_id,
            successful=True,
            advice=dict(self._advice),
        )
        self._replayer.opt_in(message, reply, session)
        self.extensions.outgoing_reply(message, reply, session)
        log.info(
            "session_created",
            client_id=session.client_id,
            transport=ctx.transport,
            user=session.user,
            ack=session.connect_only,
        )
        return reply, session

    # /meta/connect  MUST: clientId, connectionType; MAY: advice (timeout, interval), ext, id.
    # The first connect after a handshake is answered at once (aiocometd waits for it in open()).
    def _connect(
        self, message: Message, session: Session, ctx: RequestContext, *, alone: bool
    ) -> tuple[Message, HeldConnect | None]:
        self._bind(session, ctx)
        if ctx.transport == CALLBACK_POLLING:
            session.deliver_in_connects_only()
        first = session.connect(ctx.transport)
        if first:
            log.info("session_connected", client_id=session.client_id, transport=ctx.transport)
        timeout_ms = self._hold_ms(message)
        pending = bool(session.queue) or self.extensions.has_pending(session)
        holdable = not first and timeout_ms > 0 and not pending and (alone or ctx.transport == WEBSOCKET)
        reply = self._connect_reply(message)
        if holdable and ctx.transport != WEBSOCKET and not self._browsers.may_hold(session):
            self._advise_multiple_clients(reply)
            holdable = False
        if not holdable:
            if session.held is not None:
                # A newer connect always wins; the older request is completed with an error status.
                session.held.wake(WakeReason.REPLACED)
            session.schedule_expiration(self._expiry())
            self.extensions.outgoing_reply(message, reply, session)
            return reply, None
        held = HeldConnect(
            message,
            timeout_s=timeout_ms / 1000,
            wake_on_message=ctx.transport != WEBSOCKET or session.connect_only,
            deadlines=self.hub.deadlines,
        )
        previous = session.hold(held)
        if previous is not None:
            previous.wake(WakeReason.REPLACED)
        if ctx.transport != WEBSOCKET:
            self._browsers.hold(held, session)
        return reply, held

    # publish  MUST: channel, data; MAY: clientId, id, ext. The reply never carries `data`
    # (clients tell events from replies by it); the event never carries clientId or id.
    async def _publish(self, message: Message, session: Session) -> Message:
        reply = reply_to(message)
        channel: str = message["channel"]
        if "data" not in message:
            return fail(reply, errors.DATA_MISSING)
        if not self.policy.can_publish(session.identity, channel):
            return fail(reply, errors.PUBLISH_DENIED)
        if is_service(channel):
            handler = self.server.service(channel)
            if handler is not None:
                result = await handler(session, message)
                if result is not None:
                    answer: Message = {"channel": channel, "data": result}
                    if "id" in message:
                        answer["id"] = message["id"]
                    session.enqueue(answer)
            reply["successful"] = True
            return reply
        # The publisher's ext travels with the event, as CometD does (an empty one is dropped as noise);
        # credentials a client sends with every message never do.
        await self.server.forward(without_credentials(message))
        reply["successful"] = True
        return reply

    # -- helpers --------------------------------------------------------------------------------------

    def _refused(self, refused: Refused) -> Message:
        # Nothing of the message is used but a plain channel and id: any other part may be what was refused.
        error = errors.NESTING_TOO_DEEP if refused.reason == DEPTH_EXCEEDED else errors.INTEGER_OUT_OF_RANGE
        advice = {"reconnect": Reconnect.NONE.value, "interval": 0} if refused.channel == HANDSHAKE else None
        log.info("message_refused", reason=refused.reason, channel=(refused.channel or "")[:200])
        return fail(refused.reply(), error, advice)

    def _unknown_session(self, message: Message) -> Message:
        reply = reply_to(message)
        advice = None
        if message["channel"] in (CONNECT, HANDSHAKE):
            advice = dict(self._rehandshake)
        return fail(reply, errors.SESSION_UNKNOWN, advice)

    def _bind(self, session: Session, ctx: RequestContext) -> None:
        if ctx.pusher is not None:
            session.bind(ctx.pusher)
            ctx.sessions.add(session)

    def _connect_reply(self, message: Message) -> Message:
        reply = reply_to(message)
        reply["successful"] = True
        reply["advice"] = dict(self._advice)
        return reply

    def _hold_ms(self, message: Message) -> int:
        advice = message.get("advice")
        timeout = advice.get("timeout") if isinstance(advice, dict) else None
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout >= 0:
            return int(min(timeout, self.settings.max_client_timeout_ms))
        return self.settings.timeout_ms

    def _expiry(self) -> float:
        return self.hub.clock() + (self.settings.interval_ms + self.settings.max_interval_ms) / 1000

    def _advise_multiple_clients(self, reply: Message) -> None:
        # Another session of this browser holds a connect: poll instead, or stop when polling is off.
        interval = self.settings.multi_session_interval_ms
        if interval > 0:
            reply["advice"] = {**self._advice, "multiple-clients": True, "interval": interval}
        else:
            fail(reply, errors.MULTIPLE_CLIENTS)
            reply["advice"] = {"reconnect": Reconnect.NONE.value, "multiple-clients": True}

    def _log_removed(self, session: Session, reason: str) -> None:
        log.info(
            "session_removed",
            client_id=session.client_id,
            transport=session.transport,
            reason=reason,
            dropped=session.dropped,
        )

    def shutdown(self) -> None:
        """Answer every held connect now: the gateway is stopping."""
        self.hub.shutdown()
