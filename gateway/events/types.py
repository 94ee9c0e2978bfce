"""Domain events and the sink services emit them to (services never see Bayeux)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gateway.store.base import ContactRow

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
class CampaignRef:
    """What an outbound notification says about a campaign."""

    id: int
    name: str
    application_id: int
    calling_list: str
    dialing_mode: str
    agent_group: str


@dataclass(frozen=True, slots=True)
class RecordNotice:
    """Something an agent must hear about one of its records (or a campaign it works).

    `kind` is the OCS user-event name (RecordRejectAcknowledge, PreviewRecord, RecordCancel, ...);
    `echo` the request fields echoed back (devicePath, ...); `record` the contact when the notice
    carries one; `extra` more GSW_* keys (GSW_CHAIN_ID, GSW_PHONE, ...).
    """

    agent: str
    kind: str
    campaign: CampaignRef
    reference_id: str | None = None
    record: ContactRow | None = None
    echo: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    campaign_message: bool = False  # OutboundCampaignMessage (preview session) instead of a record message
    campaign_state: str | None = None


@dataclass(frozen=True, slots=True)
class RecordCancelled:
    """A record held by an agent was taken away (locked or deleted by a service)."""

    agent: str
    contact_id: int
    campaign_id: int


@dataclass(frozen=True, slots=True)
class WaitfieldEvent:
    """A waiting-field contact changed (created, routed, connected, handled, elapsed, removed)."""

    type: str
    item: dict[str, Any]
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

    async def record_cancelled(self, event: RecordCancelled) -> None:
        """An agent's record was taken away from it."""

    async def notify_agent(self, notice: RecordNotice) -> list[dict[str, Any]]:
        """Tell an agent's sessions; return the notification payloads sent."""

    async def waitfield_changed(self, event: WaitfieldEvent) -> None:
        """A waiting-field contact changed."""
