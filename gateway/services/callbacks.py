"""Personal callbacks: when a rescheduled record falls due, it is pushed to its agent as ScheduledCall.

Timers are armed per record (asyncio call_at), not polled; after a restart every pending callback is
re-armed from the store, and overdue ones fire at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from gateway.services.outbound import OutboundService
from gateway.store.base import ContactRow, ContactStore

log = structlog.get_logger("gateway.callbacks")


class PersonalCallbacks:
    """Arms a timer per personal callback; offers it to its agent when due (if the agent is connected)."""

    def __init__(self, *, store: ContactStore, outbound: OutboundService, present: Callable[[str], bool]) -> None:
        self._store = store
        self._outbound = outbound
        self._present = present
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Re-arm every pending personal callback (after a start or restart)."""
        for row in await self._store.pending_personal():
            self.arm(row)

    def close(self) -> None:
        """Cancel the timers and running offers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()

    def arm(self, row: ContactRow) -> None:
        """Fire when `row.next_try_at` comes (at once if it has passed)."""
        if row.next_try_at is None or row.personal_agent is None:
            return
        loop = asyncio.get_running_loop()
        delay = (row.next_try_at - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
        old = self._timers.pop(row.id, None)
        if old is not None:
            old.cancel()
        self._timers[row.id] = loop.call_later(max(delay, 0.0), self._fire, row.id, row.personal_agent)

    def _fire(self, contact_id: int, agent: str) -> None:
        self._timers.pop(contact_id, None)
        task = asyncio.create_task(self._offer(contact_id, agent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _offer(self, contact_id: int, agent: str) -> None:
        if not self._present(agent):
            # Nobody to push to: it stays a personal callback the agent's next GetPreviewRecord returns first.
            return
        try:
            await self._outbound.offer_scheduled(contact_id, agent)
        except Exception:
            log.exception("scheduled_call_failed", contact_id=contact_id, agent=agent)
