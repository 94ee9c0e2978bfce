"""The Broker contract: carries envelopes to every node's hub, this node's first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.wire.message import Message


class Kind(Enum):
    """What an envelope asks the receiving hubs to do."""

    BROADCAST = "broadcast"  # deliver to the sessions subscribed to the message's channel
    USER = "user"  # deliver to one identity's subscribed sessions (every tab, every node)
    SESSION = "session"  # deliver to one session, subscribed or not
    DISCONNECT = "disconnect"  # remove one session, telling its client (reconnect: none)
    FILL = "fill"  # logged envelopes may have been lost on the way: read the gap back from the durable log


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message, its audience and the node it comes from."""

    kind: Kind
    message: Message
    origin: str  # the publishing node's id: a node never takes its own envelopes back from the wire
    user: str | None = None  # Kind.USER
    client_id: str | None = None  # Kind.SESSION and Kind.DISCONNECT
    # A logged notification: its durable log, its id there and when it was appended (ISO 8601, UTC).
    log: str | None = None
    replay_id: int | None = None
    created: str | None = None


Sink = Callable[[Envelope], int]


class Broker(Protocol):
    """Carries envelopes to the hubs of all nodes (this one included).

    Local delivery is synchronous: `publish` hands the envelope to this node's sink before it returns,
    and never blocks; the other nodes get it asynchronously (queued by the broker), each once per envelope
    while connected. Logged envelopes a node missed (a lost connection) are in the durable log.
    """

    @property
    def node(self) -> str:
        """This node's id (the `origin` of the envelopes it publishes)."""

    async def start(self, sink: Sink) -> None:
        """Begin passing envelopes to `sink` (the local hub's dispatch)."""

    def publish(self, envelope: Envelope) -> None:
        """Deliver an envelope locally at once, and queue it for every other node."""

    async def close(self) -> None:
        """Stop; envelopes published afterwards reach no one."""

    def healthy(self) -> bool:
        """True while the broker can reach the other nodes (always, for one process)."""
