"""The notification log seam: durable, per-log ordered notifications that a new session can replay.

Appending is not part of this protocol: a notification is appended by the store write whose change it
reports, in the same transaction (the outbox), so "the REST call got its 200" and "the notification is in
the log" never disagree after a crash. See SqlContactStore.write and store/sql_log.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.wire.notification import Notification


@dataclass(frozen=True, slots=True)
class LogBounds:
    """What a log holds: ids after `pruned_through` up to `last_id` (both 0 for a log never written)."""

    last_id: int
    pruned_through: int

    def valid(self, replay_id: int) -> bool:
        """True if everything after `replay_id` is still retained (a client may resume from it)."""
        return self.pruned_through <= replay_id <= self.last_id


class NotificationLog(Protocol):
    """Reads and prunes the durable logs; ids increase per log (not necessarily contiguous)."""

    async def read(self, log: str, after: int, limit: int) -> list[Notification]:
        """Notifications of `log` with replay ids above `after`, oldest first, at most `limit`."""

    async def bounds(self, log: str) -> LogBounds:
        """The ids `log` holds."""

    async def prune(self, *, before: datetime, keep: int) -> int:
        """Drop entries appended before `before`, and all but the newest `keep` of each log; how many."""
