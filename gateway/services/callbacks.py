"""Personal callbacks: when a rescheduled record falls due, it is pushed to its agent as ScheduledCall.

Timers are armed per record (DueTimers), not polled; after a restart every pending callback is
re-armed from the store, and overdue ones fire at once.

Several nodes on one store: every node arms every pending callback (at start, and from a re-scan of the
store every `rescan_s`, so one armed on a node that died is armed by the others). A node remembers what it
fired, so a re-scan does not fire it again. Firing is reserving the record for its agent, one conditional
UPDATE whose ScheduledCall is logged in the same transaction: of the nodes firing one callback, one
reserves it and pushes it (through the broker, to whichever node holds the agent's session); the others'
UPDATE changes nothing and they send nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from gateway.clock import WallClock, utcnow
from gateway.services.due import DueTimers, every
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
        present: Callable[[str], Awaitable[bool]],
        clock: WallClock = utcnow,
        rescan_s: float | None = None,
    ) -> None:
        self._store = store
        self._outbound = outbound
        self._present = present
        self._due: DueTimers[int] = DueTimers(clock=clock)
        self._rescan_s = rescan_s
        self._armed: dict[int, datetime] = {}  # contact -> the moment its timer is armed for
        self._fired: set[tuple[int, datetime]] = set()  # (contact, moment) this node fired already
        self._scanner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Re-arm every pending personal callback (after a start or restart); re-scan if several nodes."""
        await self.scan()
        if self._rescan_s is not None:
            self._scanner = asyncio.create_task(
                every(self._rescan_s, self.scan, "callbacks_rescan_failed"), name="callbacks-rescan"
            )

    async def scan(self) -> None:
        """Arm every pending callback not armed or fired here yet (another node's, or one whose node died)."""
        rows = await self._store.pending_personal()
        pending = {(row.id, row.next_try_at) for row in rows if row.next_try_at is not None}
        # Forget what was fired once it is no longer pending (reserved, rescheduled, done): bounded memory.
        self._fired &= pending
        for row in rows:
            if row.next_try_at is None or (row.id, row.next_try_at) in self._fired:
                continue
            if self._armed.get(row.id) != row.next_try_at:
                self.arm(row)

    def close(self) -> None:
        """Cancel the timers, the re-scan and running offers."""
        if self._scanner is not None:
            self._scanner.cancel()
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
        contact_id, agent, when = row.id, row.personal_agent, row.next_try_at
        self._armed[contact_id] = when
        self._due.arm(contact_id, when, lambda: self._offer(contact_id, agent, when))

    async def _offer(self, contact_id: int, agent: str, when: datetime) -> None:
        if self._armed.get(contact_id) == when:
            del self._armed[contact_id]
        if self._rescan_s is not None:
            # Only a re-scan could arm it again (and only a re-scan prunes this set).
            self._fired.add((contact_id, when))
        try:
            if not await self._present(agent):
                # Nobody to push to: it stays a personal callback the agent's next GetPreviewRecord returns first.
                return
            await self._outbound.offer_scheduled(contact_id, agent)
        except Exception:
            log.exception("scheduled_call_failed", contact_id=contact_id, agent=agent)
