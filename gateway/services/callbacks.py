"""Personal callbacks: when a rescheduled record falls due, it is pushed to its agent as ScheduledCall.

Timers are armed per record (DueTimers), not polled; after a restart every pending callback is
re-armed from the store, and overdue ones fire at once.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from gateway.clock import WallClock, utcnow
from gateway.services.due import DueTimers
from gateway.services.outbound import OutboundService
from gateway.store.base import ContactRow, ContactStore

log = structlog.get_logger("gateway.callbacks")


class PersonalCallbacks:
    """Arms a timer per personal callback; offers it to its agent when due (if the agent is connected)."""

    def __init__(
        self,
        *,
        store: ContactStore,
        outbound: OutboundService,
        present: Callable[[str], bool],
        clock: WallClock = utcnow,
    ) -> None:
        self._store = store
        self._outbound = outbound
        self._present = present
        self._due: DueTimers[int] = DueTimers(clock=clock)

    async def start(self) -> None:
        """Re-arm every pending personal callback (after a start or restart)."""
        for row in await self._store.pending_personal():
            self.arm(row)

    def close(self) -> None:
        """Cancel the timers and running offers."""
        self._due.close()

    async def record_reserved(self, row: ContactRow, agent: str) -> None:
        """Nothing to do: a reserved record is no callback waiting."""

    async def record_completed(self, row: ContactRow, agent: str) -> None:
        """Nothing to do."""

    def callback_scheduled(self, row: ContactRow) -> None:
        """A personal callback was set: arm its timer."""
        self.arm(row)

    def arm(self, row: ContactRow) -> None:
        """Offer the callback when `row.next_try_at` comes (at once if it has passed)."""
        if row.next_try_at is None or row.personal_agent is None:
            return
        contact_id, agent = row.id, row.personal_agent
        self._due.arm(contact_id, row.next_try_at, lambda: self._offer(contact_id, agent))

    async def _offer(self, contact_id: int, agent: str) -> None:
        if not self._present(agent):
            # Nobody to push to: it stays a personal callback the agent's next GetPreviewRecord returns first.
            return
        try:
            await self._outbound.offer_scheduled(contact_id, agent)
        except Exception:
            log.exception("scheduled_call_failed", contact_id=contact_id, agent=agent)
