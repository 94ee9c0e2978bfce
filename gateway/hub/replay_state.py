"""A session's replay state: it opted in (handshake ext.replay), and the logs being replayed right now.

While a log is replayed for a session, live events of that log are held back; when the replay has been
read they follow it, without the ones it already contained: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.wire.message import Message


class ReplayState:
    """Per-session: the logs gated while their replay is read, and the live events held back meanwhile."""

    __slots__ = ("gates", "lock")

    def __init__(self) -> None:
        self.gates: dict[str, list[tuple[int, Message]]] = {}
        # One replay at a time per session: two subscriptions of one log must not interleave their seams.
        self.lock = asyncio.Lock()

    def held_back(self, log: str, replay_id: int, message: Message) -> bool:
        """Hold a live event back if its log is being replayed; False if it should be delivered now."""
        gate = self.gates.get(log)
        if gate is None:
            return False
        gate.append((replay_id, message))
        return True
