"""Domain events and the sink services emit them to (services never see Bayeux)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

ContactEventType = Literal["ContactImported", "ContactUpdated", "ContactDeleted", "ContactLocked", "ContactUnlocked"]


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """A dialler contact changed."""

    type: ContactEventType
    contact_id: int
    user_data: str | None
    campaign_id: int
    reference_id: str | None


@dataclass(frozen=True, slots=True)
class OperationAck:
    """The outcome of a correlated operation, for the identity that asked for it."""

    user: str
    reference_id: str
    operation: str
    status: int
    result: Any


class EventSink(Protocol):
    """Where services send what happened."""

    async def contact_changed(self, event: ContactEvent) -> None:
        """A contact was imported, updated, deleted, locked or unlocked."""

    async def operation_done(self, ack: OperationAck) -> None:
        """A correlated operation finished."""
