"""The outbox relay: committed notifications become envelopes on the broker, in commit order."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.broker.base import Broker, Envelope, Kind
from gateway.wire.notification import Notification
from gateway.wire.replay import created_date


class Relay:
    """Hands notifications to the broker (this node's sessions at once, the other nodes queued)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def __call__(self, notifications: Iterable[Notification]) -> None:
        """Publish each notification to its audience."""
        broker = self._broker
        node = broker.node
        for note in notifications:
            kind = Kind.BROADCAST if note.user is None else Kind.USER
            created = created_date(note.created) if note.created is not None else None
            broker.publish(
                Envelope(
                    kind, note.message(), node, user=note.user, log=note.log, replay_id=note.replay_id, created=created
                )
            )
