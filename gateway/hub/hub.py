"""The Hub: sessions of this process, the pattern -> sessions index, local delivery and the sweeper."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

import structlog

from gateway.broker.base import Kind
from gateway.hub.deadlines import Deadlines
from gateway.hub.session import DeliveryStats, Session, WakeReason
from gateway.settings import OverflowPolicy
from gateway.wire.channel import expand
from gateway.wire.replay import with_replay_id

if TYPE_CHECKING:
    from gateway.broker.base import Envelope
    from gateway.identity import Identity
    from gateway.wire.message import Message

log = structlog.get_logger("gateway.hub")

RemovalListener = Callable[[Session, str], None]
CreationListener = Callable[[Session], None]
SubscriptionListener = Callable[[Session, str], None]


def new_client_id() -> str:
    """A fresh clientId: 160 random bits, URL-safe alphanumerics only (Bayeux ids are alphanumeric)."""
    return secrets.token_hex(20)


class Hub:
    """Owns this process's sessions; delivers messages to the ones subscribed."""

    def __init__(
        self,
        *,
        max_queue: int,
        overflow: OverflowPolicy,
        max_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions: dict[str, Session] = {}
        self._subscribers: dict[str, set[Session]] = {}
        self._by_user: dict[str, set[Session]] = {}
        self._max_queue = max_queue
        self._overflow = overflow
        self._max_interval_s = max_interval_s
        self.clock = clock
        self._listeners: list[RemovalListener] = []
        self._created: list[CreationListener] = []
        self._subscribed: list[SubscriptionListener] = []
        self.stats = DeliveryStats()
        self.deadlines = Deadlines()

    def on_removed(self, listener: RemovalListener) -> None:
        """Call `listener(session, reason)` whenever a session is removed."""
        self._listeners.append(listener)

    def on_created(self, listener: CreationListener) -> None:
        """Call `listener(session)` whenever a session is created (after it is registered)."""
        self._created.append(listener)

    def on_subscribed(self, listener: SubscriptionListener) -> None:
        """Call `listener(session, pattern)` whenever a session subscribes to a pattern it did not have."""
        self._subscribed.append(listener)

    # -- sessions ---------------------------------------------------------------------------------------

    def create_session(
        self, *, transport: str, user: str | None, identity: Identity | None, browser_id: str | None
    ) -> Session:
        """Create and register a session; it expires unless a connect follows within max_interval."""
        session = Session(
            client_id=new_client_id(),
            user=user,
            identity=identity,
            browser_id=browser_id,
            transport=transport,
            max_queue=self._max_queue,
            overflow=self._overflow,
            expires_at=self.clock() + self._max_interval_s,
            stats=self.stats,
        )
        session.on_overflow = self._overflowed
        self.sessions[session.client_id] = session
        if user is not None:
            self._by_user.setdefault(user, set()).add(session)
        for listener in self._created:
            try:
                listener(session)
            except Exception:  # a listener's bug must not fail a handshake
                log.exception("creation_listener_failed", client_id=session.client_id)
        return session

    def get(self, client_id: object) -> Session | None:
        """The live session with this clientId, if any."""
        if not isinstance(client_id, str):
            return None
        return self.sessions.get(client_id)

    def remove(self, session: Session, reason: str, *, wake: WakeReason = WakeReason.REMOVED) -> None:
        """Remove a session: drop its subscriptions, release its held connect, tell the listeners."""
        if self.sessions.pop(session.client_id, None) is None:
            return
        session.close()
        for pattern in session.subscriptions:
            subs = self._subscribers.get(pattern)
            if subs is not None:
                subs.discard(session)
                if not subs:
                    del self._subscribers[pattern]
        session.subscriptions.clear()
        if session.user is not None:
            owned = self._by_user.get(session.user)
            if owned is not None:
                owned.discard(session)
                if not owned:
                    del self._by_user[session.user]
        if session.held is not None:
            session.held.wake(wake)  # its reply carries what is queued
        if session.pusher is not None:
            session.pusher()
        elif session.held is None and session.queue:
            # Nothing will carry the events still queued (an expired session, or one removed between its
            # connects): they are lost with it, and counted as dropped like an overflow.
            discarded = sum(1 for m in session.queue if "data" in m)
            session.dropped += discarded
            self.stats.dropped += discarded
        for listener in self._listeners:
            try:
                listener(session, reason)
            except Exception:  # a listener's bug must not keep a session alive
                log.exception("removal_listener_failed", client_id=session.client_id)

    def has_user(self, user: str) -> bool:
        """True if the identity has at least one session on this node."""
        return bool(self._by_user.get(user))

    def user_sessions(self, user: str) -> int:
        """How many sessions the identity has on this node (its tabs)."""
        return len(self._by_user.get(user, ()))

    def touch(self, session: Session) -> None:
        """Extend a session that sent a non-connect message (CometD: by max_interval)."""
        session.extend_expiration(self.clock() + self._max_interval_s)

    def _overflowed(self, session: Session) -> None:
        log.warning("queue_overflow", client_id=session.client_id, transport=session.transport)
        self.remove(session, "queue_overflow", wake=WakeReason.EVICTED)

    # -- subscriptions ----------------------------------------------------------------------------------

    def subscribe(self, session: Session, pattern: str) -> None:
        """Subscribe a session to a channel or pattern (idempotent)."""
        if pattern in session.subscriptions:
            return
        session.subscriptions.add(pattern)
        self._subscribers.setdefault(pattern, set()).add(session)
        for listener in self._subscribed:
            try:
                listener(session, pattern)
            except Exception:  # a listener's bug must not fail a subscribe
                log.exception("subscription_listener_failed", client_id=session.client_id)

    def unsubscribe(self, session: Session, pattern: str) -> bool:
        """Unsubscribe; False if the session was not subscribed."""
        if pattern not in session.subscriptions:
            return False
        session.subscriptions.discard(pattern)
        subs = self._subscribers.get(pattern)
        if subs is not None:
            subs.discard(session)
            if not subs:
                del self._subscribers[pattern]
        return True

    def subscriber_count(self, channel: str) -> int:
        """Sessions that would receive a message on `channel`."""
        return len(self._recipients(channel))

    def _recipients(self, channel: str) -> Collection[Session]:
        found: set[Session] | None = None
        merged = False
        for pattern in expand(channel):
            subs = self._subscribers.get(pattern)
            if not subs:
                continue
            if found is None:
                found = subs
            else:
                # Overlapping patterns: one copy per session, so merge into a fresh set once.
                if not merged:
                    found = set(found)
                    merged = True
                found |= subs
        return () if found is None else found

    # -- delivery ---------------------------------------------------------------------------------------

    def deliver(self, message: Message) -> int:
        """Queue `message` for every session subscribed to its channel; return how many got it."""
        count = 0
        # A snapshot: enqueue may remove a session (overflow policy "disconnect") mid-loop.
        for session in list(self._recipients(message["channel"])):
            if session.enqueue(message):
                count += 1
        self.stats.delivered += count
        return count

    def deliver_to_user(self, user: str, message: Message) -> int:
        """Queue `message` for the sessions of one identity that subscribe to its channel."""
        owned = self._by_user.get(user)
        if not owned:
            return 0
        patterns = expand(message["channel"])
        count = 0
        for session in list(owned):
            if not session.subscriptions.isdisjoint(patterns) and session.enqueue(message):
                count += 1
        self.stats.delivered += count
        return count

    def deliver_to_session(self, client_id: str, message: Message) -> bool:
        """Queue `message` for one session, subscribed or not (CometD ServerSession.deliver)."""
        session = self.sessions.get(client_id)
        if session is None:
            return False
        ok = session.enqueue(message)
        self.stats.delivered += ok
        return ok

    # -- expiry -----------------------------------------------------------------------------------------

    def sweep(self) -> int:
        """Remove sessions whose expiry time has passed; return how many."""
        now = self.clock()
        expired = [s for s in self.sessions.values() if s.expired(now)]
        for session in expired:
            self.remove(session, "expired")
        return len(expired)

    async def run_sweeper(self, period_s: float) -> None:
        """Sweep forever; survives its own errors, lets cancellation through."""
        while True:
            await asyncio.sleep(period_s)
            try:
                self.sweep()
            except Exception:
                log.exception("sweep_failed")

    def shutdown(self) -> None:
        """Release every held connect (the gateway is stopping); sessions stay until the process ends."""
        for session in list(self.sessions.values()):
            if session.held is not None:
                session.held.wake(WakeReason.SHUTDOWN)
            if session.pusher is not None:
                session.pusher()

    def dispatch(self, envelope: Envelope) -> int:
        """Deliver a broker envelope to its audience on this node."""
        message, kind = envelope.message, envelope.kind
        if envelope.replay_id is not None and envelope.log is not None and kind in (Kind.BROADCAST, Kind.USER):
            return self._deliver_logged(envelope)
        if kind is Kind.BROADCAST:
            return self.deliver(message)
        if kind is Kind.USER and envelope.user is not None:
            return self.deliver_to_user(envelope.user, message)
        if kind is Kind.SESSION and envelope.client_id is not None:
            return int(self.deliver_to_session(envelope.client_id, message))
        if kind is Kind.DISCONNECT and envelope.client_id is not None:
            return int(self._server_disconnect(envelope.client_id, message))
        return 0

    def _deliver_logged(self, envelope: Envelope) -> int:
        # A logged event: sessions that opted in to replay get it with data.event.replayId (one copy of the
        # tagged message for all of them), and hold it back while its log is replayed to them.
        message = envelope.message
        log, replay_id = envelope.log, envelope.replay_id
        assert log is not None and replay_id is not None
        if envelope.kind is Kind.USER:
            owned = self._by_user.get(envelope.user or "")
            patterns = expand(message["channel"])
            recipients = [s for s in owned or () if not s.subscriptions.isdisjoint(patterns)]
        else:
            recipients = list(self._recipients(message["channel"]))
        tagged: Message | None = None
        count = 0
        for session in recipients:
            if session.replay is None:
                ok = session.enqueue(message)
            else:
                if tagged is None:
                    tagged = with_replay_id(message, replay_id, envelope.created)
                ok = session.offer(tagged, log, replay_id)
            count += ok
        self.stats.delivered += count
        return count

    def _server_disconnect(self, client_id: str, message: Message) -> bool:
        session = self.sessions.get(client_id)
        if session is None:
            return False
        # Queued without waking: the removal below releases the held connect with reconnect "none",
        # and the disconnect message travels in that same reply.
        session.queue.append(message)
        self.remove(session, "server_disconnect")
        return True
