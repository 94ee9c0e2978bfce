"""One Bayeux session: its state, bounded outbound queue, subscriptions and the held /meta/connect.

The session owns its state (as CometD's ServerSessionImpl does): the protocol and the hub ask it to change
through the methods below, never by setting its fields.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING

from gateway.hub.deadlines import Deadlines

if TYPE_CHECKING:
    from gateway.hub.replay_state import ReplayState
    from gateway.identity import Identity
    from gateway.settings import OverflowPolicy
    from gateway.wire.message import Message

Pusher = Callable[[], None]


class SessionState(Enum):
    """Where a session is in its life."""

    NEW = "new"  # handshaken; no /meta/connect yet
    IDLE = "idle"  # connected, between connects: the expiry clock runs
    HELD = "held"  # a /meta/connect is held: it cannot expire
    CLOSED = "closed"  # removed: it queues nothing more


class WakeReason(Enum):
    """Why a held /meta/connect was released."""

    MESSAGES = "messages"
    TIMEOUT = "timeout"
    REPLACED = "replaced"
    REMOVED = "removed"  # disconnected: the client stops
    EVICTED = "evicted"  # removed by the server (overflow): the client re-handshakes
    SHUTDOWN = "shutdown"


class DeliveryStats:
    """Counters shared by a hub and its sessions (read by the logs and by /metrics)."""

    __slots__ = ("delivered", "dropped")

    def __init__(self) -> None:
        self.delivered = 0
        self.dropped = 0


class HeldConnect:
    """A /meta/connect waiting for messages, its timeout, a newer connect or the session's end.

    A deadline and a callback, not a task: an idle WebSocket session must cost as little memory as possible.
    """

    __slots__ = ("_callback", "_deadlines", "_future", "_tick", "reason", "request", "wake_on_message")

    def __init__(self, request: Message, *, timeout_s: float, wake_on_message: bool, deadlines: Deadlines) -> None:
        self.request = request
        self.wake_on_message = wake_on_message
        self.reason: WakeReason | None = None
        self._future: asyncio.Future[None] | None = None
        self._callback: Callable[[HeldConnect], None] | None = None
        self._deadlines = deadlines
        self._tick = deadlines.add(self, timeout_s)

    def wake(self, reason: WakeReason = WakeReason.MESSAGES) -> None:
        """Release the connect; the first reason given wins."""
        if self.reason is not None:
            return
        self.reason = reason
        if reason is not WakeReason.TIMEOUT:
            self._deadlines.remove(self, self._tick)
        if self._future is not None and not self._future.done():
            self._future.set_result(None)
        callback, self._callback = self._callback, None
        if callback is not None:
            callback(self)

    def expire(self) -> None:
        """Release the connect: its timeout passed (called by Deadlines)."""
        self.wake(WakeReason.TIMEOUT)

    def on_release(self, callback: Callable[[HeldConnect], None]) -> None:
        """Call `callback(self)` once the connect is released (at once if it already is)."""
        if self.reason is not None:
            callback(self)
        else:
            self._callback = callback

    async def wait(self) -> WakeReason:
        """Wait until released; return why. A cancelled waiter releases the connect (as replaced)."""
        if self.reason is None:
            self._future = asyncio.get_running_loop().create_future()
            try:
                await self._future
            finally:
                if self.reason is None:
                    self.wake(WakeReason.REPLACED)
        assert self.reason is not None
        return self.reason


class Session:
    """A client session: created by a handshake, removed by disconnect, expiry or overflow."""

    __slots__ = (
        "__weakref__",
        "_allowance",
        "_batching",
        "_connect_only",
        "_expires_at",
        "browser_id",
        "client_id",
        "cookie_returned",
        "dropped",
        "ext",
        "held",
        "identity",
        "max_queue",
        "on_overflow",
        "overflow",
        "pusher",
        "queue",
        "replay",
        "socket_bound",
        "state",
        "stats",
        "subscriptions",
        "transport",
        "user",
    )

    def __init__(
        self,
        *,
        client_id: str,
        user: str | None,
        identity: Identity | None,
        browser_id: str | None,
        transport: str,
        max_queue: int,
        overflow: OverflowPolicy,
        expires_at: float,
        stats: DeliveryStats,
    ) -> None:
        self.client_id = client_id
        self.stats = stats
        self.user = user
        self.identity = identity
        self.browser_id = browser_id
        # What the client has shown beyond its clientId (bayeux/binding.py): its cookie returned; a WebSocket.
        self.cookie_returned = False
        self.socket_bound = False
        self.transport = transport
        self.max_queue = max_queue
        self.overflow = overflow
        self.state = SessionState.NEW
        self._expires_at = expires_at
        # A list, not a deque: an empty deque costs ~600 bytes and idle sessions are the common case.
        self.queue: list[Message] = []
        self.subscriptions: set[str] = set()
        # While the session's own request is processed, events ride on its response (Bayeux SHOULD).
        self._batching = False
        # Deliver only inside /meta/connect replies (ack extension, callback-polling): strict order.
        self._connect_only = False
        self.held: HeldConnect | None = None
        # Set by a WebSocket that can push frames for this session at any time.
        self.pusher: Pusher | None = None
        self.on_overflow: Callable[[Session], None] | None = None
        self.dropped = 0
        # Per-session extension state (e.g. "ack"), created only for sessions that opt in.
        self.ext: dict[str, object] | None = None
        # Set when the client opted in to replay at its handshake.
        self.replay: ReplayState | None = None
        # Replayed events queued beyond max_queue (a log's backlog is bounded by its own length).
        self._allowance = 0

    # -- state -----------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the session was removed."""
        return self.state is SessionState.CLOSED

    @property
    def connected(self) -> bool:
        """True once the session's first /meta/connect arrived."""
        return self.state is not SessionState.NEW

    @property
    def connect_only(self) -> bool:
        """True when events travel only inside /meta/connect replies."""
        return self._connect_only

    @property
    def expires_at(self) -> float:
        """When the session expires unless a connect comes (ignored while a connect is held)."""
        return self._expires_at

    def connect(self, transport: str) -> bool:
        """A /meta/connect arrived over `transport`; True if it is the session's first."""
        self.transport = transport
        if self.state is SessionState.NEW:
            self.state = SessionState.IDLE
            return True
        return False

    def deliver_in_connects_only(self) -> None:
        """From now on events travel only inside connect replies (strict order, for ack and JSONP)."""
        self._connect_only = True

    def schedule_expiration(self, at: float) -> None:
        """Expire at `at` (a clock reading) unless a connect comes first."""
        self._expires_at = at

    def extend_expiration(self, at: float) -> None:
        """Expire no earlier than `at` (a message other than connect keeps the session alive)."""
        if self.state is not SessionState.HELD and at > self._expires_at:
            self._expires_at = at

    def expired(self, now: float) -> bool:
        """True if the expiry time passed and no connect is held."""
        return self.state in (SessionState.NEW, SessionState.IDLE) and self._expires_at < now

    def close(self) -> None:
        """Mark the session removed; it queues nothing more."""
        self.state = SessionState.CLOSED

    def bind(self, pusher: Pusher) -> None:
        """A WebSocket now carries the session: it pushes the session's events."""
        self.pusher = pusher
        self.socket_bound = True

    def unbind(self, pusher: Pusher) -> None:
        """The WebSocket `pusher` closed; another may have taken the session over already."""
        if self.pusher is pusher:
            self.pusher = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Queue without waking anyone while the session's own request is processed; wake after."""
        if self._batching:
            yield
            return
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            if self.queue and not self.closed:
                self.notify()

    # -- queue -----------------------------------------------------------------------------------------

    def enqueue(self, message: Message) -> bool:
        """Queue a message for the client; False if the overflow policy discarded it."""
        if self.state is SessionState.CLOSED:
            return False
        queue = self.queue
        if len(queue) >= self.max_queue + self._allowance:
            self.dropped += 1
            self.stats.dropped += 1
            if self.overflow == "drop_newest":
                return False
            if self.overflow == "disconnect":
                if self.on_overflow is not None:
                    self.on_overflow(self)
                return False
            del queue[0]
        queue.append(message)
        if not self._batching:
            self.notify()
        return True

    def notify(self) -> None:
        """Tell whoever can deliver now that messages are waiting."""
        if self.pusher is not None and not self._connect_only:
            self.pusher()
        elif self.held is not None and self.held.wake_on_message:
            self.held.wake()

    def drain(self) -> list[Message]:
        """Take every queued message."""
        items = self.queue
        if items:
            self.queue = []
            self._allowance = 0
        return items

    # -- replay ----------------------------------------------------------------------------------------

    def offer(self, message: Message, log: str, replay_id: int) -> bool:
        """Queue a live logged event, or hold it back while its log is replayed to this session."""
        if self.replay is not None:
            if self.replay.held_back(log, replay_id, message):
                return True
            if self.replay.replayed_already(log, replay_id, message["channel"]):
                return False
        return self.enqueue(message)

    def open_gate(self, log: str) -> None:
        """A replay of `log` starts: its live events are held back until `close_gate`."""
        if self.replay is not None:
            self.replay.gates.setdefault(log, [])

    def close_gate(self, log: str, replayed: list[tuple[int, Message]], after: int) -> int:
        """Queue the replayed events, then the live ones held back that the replay did not contain;
        how many were queued. The replay may exceed max_queue: the log's own length bounds it."""
        held = self.replay.gates.pop(log, []) if self.replay is not None else []
        seen = {replay_id for replay_id, _ in replayed}
        backlog = [m for _, m in replayed]
        backlog += [m for replay_id, m in held if replay_id > after and replay_id not in seen]
        if not backlog or self.closed:
            return 0
        room = self.max_queue + self._allowance - len(self.queue)
        if len(backlog) > room:
            self._allowance += len(backlog) - room
        self.queue.extend(backlog)
        if not self._batching:
            self.notify()
        return len(backlog)

    # -- the held connect ------------------------------------------------------------------------------

    def hold(self, held: HeldConnect) -> HeldConnect | None:
        """Make `held` the session's connect; return the one it replaces, if any."""
        previous, self.held = self.held, held
        if self.state is not SessionState.CLOSED:
            self.state = SessionState.HELD
        return previous

    def release(self, held: HeldConnect, *, expires_at: float) -> None:
        """Forget `held` once answered and start the expiry clock (unless a newer connect is held)."""
        if self.held is held:
            self.held = None
            self._expires_at = expires_at
            if self.state is SessionState.HELD:
                self.state = SessionState.IDLE
