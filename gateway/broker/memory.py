"""MemoryBroker: one process, publish is local delivery."""

from __future__ import annotations

from gateway.broker.base import Envelope, Sink


class MemoryBroker:
    """The default broker for a single gateway process."""

    def __init__(self) -> None:
        self._sink: Sink | None = None

    async def start(self, sink: Sink) -> None:
        """Deliver to `sink` from now on."""
        self._sink = sink

    async def publish(self, envelope: Envelope) -> None:
        """Deliver at once to the local hub."""
        if self._sink is not None:
            self._sink(envelope)

    async def close(self) -> None:
        """Stop delivering."""
        self._sink = None
