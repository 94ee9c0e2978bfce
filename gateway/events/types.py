"""Domain events and the sink services emit them to (services never see Bayeux)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gateway.store.base import ContactRow
from gateway.wire.notification import Notification

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
    """Where services turn what happened into notifications.

    The renderers are pure and cheap: a service hands them to a store write (`notify=`), which logs the
    notifications in the write's own transaction and delivers them after the commit. `emit` delivers
    notifications that no write carries (a read's, a session's), logged in a transaction of their own.
    """

    def contact_changed(self, event: ContactEvent) -> list[Notification]:
        """A contact was imported, updated, deleted, locked or unlocked."""

    def operation_done(self, ack: OperationAck) -> list[Notification]:
        """A correlated operation finished."""

    def record_cancelled(self, event: RecordCancelled) -> list[Notification]:
        """An agent's record was taken away from it."""

    def record_notice(self, notice: RecordNotice) -> list[Notification]:
        """Something an agent's sessions must hear about (GWS outbound notifications)."""

    def waitfield_changed(self, event: WaitfieldEvent) -> list[Notification]:
        """A waiting-field contact changed."""

    def agent_presence(self, agent: str, *, online: bool, sessions: int) -> list[Notification]:
        """An agent's first CometD session opened (online) or its last one ended (offline)."""

    async def emit(self, notifications: Sequence[Notification]) -> None:
        """Deliver notifications that no store write carried."""
