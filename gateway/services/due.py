"""Work that falls due at a wall-clock moment: one loop timer per key, never run early."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from datetime import datetime
from typing import Generic, TypeVar

import structlog

from gateway.clock import WallClock, utcnow

K = TypeVar("K", bound=Hashable)
Action = Callable[[], Coroutine[object, object, None]]

log = structlog.get_logger("gateway.services")


async def every(period: float, scan: Action, failed: str) -> None:
    """Run `scan()` every `period` seconds until cancelled; a failed scan is logged as `failed` and the next runs."""
    while True:
        await asyncio.sleep(period)
        try:
            await scan()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(failed)


class DueTimers(Generic[K]):
    """Runs an action (in its own task) when its moment comes; a key has at most one armed action.

    Armed from the store at start and re-armed after a restart, so nothing is polled. Moments in the past
    run at once.
    """

    def __init__(self, *, clock: WallClock = utcnow) -> None:
        self._clock = clock
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, key: K, when: datetime, action: Action) -> None:
        """Run `action()` at `when` (UTC, naive), replacing what `key` had armed."""
        self.cancel(key)
        delay = (when - self._clock()).total_seconds()
        self._timers[key] = asyncio.get_running_loop().call_later(max(delay, 0.0), self._fire, key, when, action)

    def cancel(self, key: K) -> None:
        """Disarm `key` (an action already running goes on)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        """Disarm everything and cancel running actions."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()

    def _fire(self, key: K, when: datetime, action: Action) -> None:
        self._timers.pop(key, None)
        if self._clock() < when:
            # Loop timers may fire a little early (libuv rounds to milliseconds): never before the moment.
            self._timers[key] = asyncio.get_running_loop().call_later(0.001, self._fire, key, when, action)
            return
        task = asyncio.create_task(action())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
