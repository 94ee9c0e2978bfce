"""MemoryBroker: one process, publish is local delivery."""

from __future__ import annotations

import secrets

from gateway.broker.base import Envelope, Sink


class MemoryBroker:
    """The default broker for a single gateway process."""

    def __init__(self, *, node: str | None = None) -> None:
        self._node = node or secrets.token_hex(6)
        self._sink: Sink | None = None

    @property
    def node(self) -> str:
        """This process's id."""
        return self._node

    async def start(self, sink: Sink) -> None:
        """Deliver to `sink` from now on."""
        self._sink = sink

    def publish(self, envelope: Envelope) -> None:
        """Deliver at once to the local hub."""
        if self._sink is not None:
            self._sink(envelope)

    async def close(self) -> None:
        """Stop delivering."""
        self._sink = None

    def healthy(self) -> bool:
        """One process: nothing to lose touch with."""
        return True
