"""A notification: a message the gateway sends on a channel, to one identity or to every subscriber.

Notifications on replayable channels belong to a durable log (`log`) and get their `replay_id` when they
are appended, in the transaction of the change they report (the outbox).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Notification:
    """What to deliver, to whom, and where it is logged."""

    channel: str
    data: Any
    user: str | None = None  # that identity's subscribed sessions only (every tab, every node); None: everyone
    log: str | None = None  # the durable log it belongs to; None: live only
    replay_id: int | None = None  # its id in `log`, once appended
    created: datetime | None = None  # when it was appended
    ext: dict[str, Any] | None = None  # the publisher's ext (client publishes), delivered with the event

    def logged(self, replay_id: int, created: datetime) -> Notification:
        """This notification as appended to its log."""
        return replace(self, replay_id=replay_id, created=created)

    def message(self) -> dict[str, Any]:
        """The Bayeux event (channel, data and the publisher's ext)."""
        event: dict[str, Any] = {"channel": self.channel, "data": self.data}
        if self.ext:
            event["ext"] = self.ext
        return event
