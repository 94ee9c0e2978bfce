"""Timeouts of held connects: one timer for all of them, in buckets of a few milliseconds."""

from __future__ import annotations

import asyncio
import heapq
import math
from typing import Final, Protocol

RESOLUTION_S: Final = 0.02


class Expiring(Protocol):
    """What a deadline wakes: a held connect (hub/session.py), or anything else with `expire`."""

    def expire(self) -> None:
        """The timeout passed."""


class Deadlines:
    """Wakes held connects whose timeout passed (never early, at most RESOLUTION_S late).

    A loop timer per held connect costs a timer handle created and cancelled for every long-polling
    request; most connects are answered long before their timeout, so one timer for all is cheaper.
    """

    __slots__ = ("_armed", "_buckets", "_handle", "_loop", "_ticks")

    def __init__(self) -> None:
        self._buckets: dict[int, set[Expiring]] = {}
        self._ticks: list[int] = []  # heap of bucket ticks, possibly with ones already emptied
        self._handle: asyncio.TimerHandle | None = None
        self._armed: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, held: Expiring, timeout_s: float) -> int:
        """Wake `held` with TIMEOUT after `timeout_s`; returns the ticket `remove` takes."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        tick = math.ceil((loop.time() + timeout_s) / RESOLUTION_S)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = set()
            heapq.heappush(self._ticks, tick)
            if self._armed is None or tick < self._armed:
                self._arm(loop, tick)
        bucket.add(held)
        return tick

    def remove(self, held: Expiring, tick: int) -> None:
        """Forget `held` (it was released before its timeout)."""
        bucket = self._buckets.get(tick)
        if bucket is not None:
            bucket.discard(held)
            if not bucket:
                del self._buckets[tick]

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def _arm(self, loop: asyncio.AbstractEventLoop, tick: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = tick
        self._handle = loop.call_at(tick * RESOLUTION_S, self._fire)

    def _fire(self) -> None:
        self._handle = self._armed = None
        loop = asyncio.get_running_loop()
        now = loop.time() / RESOLUTION_S
        while self._ticks and self._ticks[0] <= now:
            bucket = self._buckets.pop(heapq.heappop(self._ticks), None)
            for held in list(bucket or ()):
                held.expire()
        # Ticks whose buckets emptied early stay in the heap: skip them before arming.
        while self._ticks and self._ticks[0] not in self._buckets:
            heapq.heappop(self._ticks)
        if self._ticks:
            self._arm(loop, self._ticks[0])
