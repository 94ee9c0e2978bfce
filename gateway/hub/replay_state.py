"""A session's replay state: it opted in (handshake ext.replay), and the logs being replayed right now.

While a log is replayed for a session, live events of that log are held back; when the replay has been
read they follow it, without the ones it already contained: no gap, no duplicate. After the replay, a live
event of a replayed subscription with an id the replay covered is a late copy (another node's envelope still
on its way, or a gap fill) and is dropped.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from gateway.wire.channel import matches

if TYPE_CHECKING:
    from gateway.wire.message import Message


class ReplayState:
    """Per-session: the logs gated while their replay is read, and the live events held back meanwhile."""

    __slots__ = ("covered", "gates", "lock")

    def __init__(self) -> None:
        self.gates: dict[str, list[tuple[int, Message]]] = {}
        # Per log, per replayed subscription: the id up to which the replay delivered every event it matches.
        self.covered: dict[str, dict[str, int]] = {}
        # One replay at a time per session: two subscriptions of one log must not interleave their seams.
        self.lock = asyncio.Lock()

    def held_back(self, log: str, replay_id: int, message: Message) -> bool:
        """Hold a live event back if its log is being replayed; False if it should be delivered now."""
        gate = self.gates.get(log)
        if gate is None:
            return False
        gate.append((replay_id, message))
        return True

    def cover(self, log: str, pattern: str, through: int) -> None:
        """The replay of `pattern` delivered every event of `log` it matches up to `through`."""
        mine = self.covered.setdefault(log, {})
        if through > mine.get(pattern, -1):
            mine[pattern] = through

    def replayed_already(self, log: str, replay_id: int, channel: str) -> bool:
        """True if a replay delivered this event already (a late live copy of it)."""
        mine = self.covered.get(log)
        return mine is not None and any(replay_id <= upto and matches(p, channel) for p, upto in mine.items())
