"""One Bayeux session: its bounded outbound queue, subscriptions and the held /meta/connect."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from gateway.bayeux.message import Message
    from gateway.hub.deadlines import Deadlines

OverflowPolicy = Literal["drop_oldest", "drop_newest", "disconnect"]


class WakeReason(Enum):
    """Why a held /meta/connect was released."""

    MESSAGES = "messages"
    TIMEOUT = "timeout"
    REPLACED = "replaced"
    REMOVED = "removed"  # disconnected: the client stops
    EVICTED = "evicted"  # removed by the server (overflow): the client re-handshakes
    SHUTDOWN = "shutdown"


class DeliveryStats:
    """Counters shared by a hub and its sessions (read by logs now, metrics later)."""

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
        "batching",
        "browser_id",
        "client_id",
        "closed",
        "connect_only",
        "connected",
        "dropped",
        "expires_at",
        "ext",
        "held",
        "identity",
        "max_queue",
        "on_overflow",
        "overflow",
        "pusher",
        "queue",
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
        identity: Any,
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
        self.transport = transport
        self.max_queue = max_queue
        self.overflow = overflow
        self.expires_at = expires_at
        # A list, not a deque: an empty deque costs ~600 bytes and idle sessions are the common case.
        self.queue: list[Message] = []
        self.subscriptions: set[str] = set()
        self.connected = False
        self.closed = False
        # While the session's own request is processed, events ride on its response (Bayeux SHOULD).
        self.batching = False
        # Deliver only inside /meta/connect replies (ack extension, callback-polling): strict order.
        self.connect_only = False
        self.held: HeldConnect | None = None
        # Set by a WebSocket that can push frames for this session at any time.
        self.pusher: Callable[[], None] | None = None
        self.on_overflow: Callable[[Session], None] | None = None
        self.dropped = 0
        # Per-session extension state (e.g. "ack"), created only for sessions that opt in.
        self.ext: dict[str, Any] | None = None

    def enqueue(self, message: Message) -> bool:
        """Queue a message for the client; False if the overflow policy discarded it."""
        if self.closed:
            return False
        queue = self.queue
        if len(queue) >= self.max_queue:
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
        if not self.batching:
            self.notify()
        return True

    def notify(self) -> None:
        """Tell whoever can deliver now that messages are waiting."""
        if self.pusher is not None and not self.connect_only:
            self.pusher()
        elif self.held is not None and self.held.wake_on_message:
            self.held.wake()

    def drain(self) -> list[Message]:
        """Take every queued message."""
        items = self.queue
        if items:
            self.queue = []
        return items

    def hold(self, held: HeldConnect) -> HeldConnect | None:
        """Make `held` the session's connect; return the one it replaces, if any."""
        previous, self.held = self.held, held
        self.expires_at = math.inf
        return previous

    def release(self, held: HeldConnect, *, expires_at: float) -> None:
        """Forget `held` once answered and start the expiry clock (unless a newer connect is held)."""
        if self.held is held:
            self.held = None
            self.expires_at = expires_at
