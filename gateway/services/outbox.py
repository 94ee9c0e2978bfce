"""Helpers for the notifications a service hands to a store write (the outbox)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from gateway.wire.notification import Notification

T = TypeVar("T")
Payloads = list[dict[str, Any]]


class Rendered(Generic[T]):
    """A write's `notify` that keeps what it rendered, for the caller to return (GWS keeps its payloads)."""

    def __init__(self, render: Callable[[T], Sequence[Notification]]) -> None:
        self._render = render
        self.sent: list[Notification] = []

    def __call__(self, result: T) -> list[Notification]:
        """Render (on the store's writer, in the write's transaction)."""
        self.sent = list(self._render(result))
        return self.sent

    def payloads(self) -> Payloads:
        """What was sent, as `{channel, data}` payloads."""
        return payloads(self.sent)


def payloads(notes: Sequence[Notification]) -> Payloads:
    """Notifications as the `{channel, data}` payloads a GWS operation keeps: those to an identity. Broadcasts
    the operation caused (the agent-state event for supervisors) are not the requester's to keep or resend."""
    return [{"channel": n.channel, "data": n.data} for n in notes if n.user is not None]


def constant(notes: list[Notification]) -> Callable[[object], list[Notification]]:
    """A `notify` that sends notifications rendered beforehand, whatever the write's result."""
    return lambda _: notes
