"""The Broker contract: carries publications to every node's hub."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.bayeux.message import Message


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message and its audience: a channel's subscribers, one identity, or one session."""

    message: Message
    user: str | None = None
    client_id: str | None = None


Sink = Callable[[Envelope], int]


class Broker(Protocol):
    """Carries envelopes to the hubs of all nodes (this one included)."""

    async def start(self, sink: Sink) -> None:
        """Begin passing envelopes to `sink` (the local hub's dispatch)."""

    async def publish(self, envelope: Envelope) -> None:
        """Send an envelope to every node."""

    async def close(self) -> None:
        """Stop; envelopes published afterwards are dropped."""
