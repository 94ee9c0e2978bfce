"""EventPublisher: domain events become Bayeux messages on the gateway's channels."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from gateway.bayeux.server import BayeuxServer
from gateway.events.outbound import OutboundNotifier
from gateway.events.types import ContactEvent, OperationAck, RecordCancelled, RecordNotice, WaitfieldEvent

CONTACTS_CHANNEL: Final = "/v2/dialler/contacts"
WAITFIELD_CHANNEL: Final = "/v2/waitfield/contacts"
OPERATIONS_CHANNEL: Final = "/v2/me/operations"


class EventPublisher:
    """Publishes contact changes to supervisors and services, acknowledgements to their requester."""

    def __init__(self, *, server: BayeuxServer, outbound: OutboundNotifier) -> None:
        self._server = server
        self._outbound = outbound
        # Set by the wiring to the outbound service, which knows how to tell the agent (RecordCancel).
        self.on_record_cancelled: Callable[[RecordCancelled], Awaitable[None]] | None = None

    async def contact_changed(self, event: ContactEvent) -> None:
        """Broadcast on /v2/dialler/contacts."""
        await self._server.publish(
            CONTACTS_CHANNEL,
            {
                "type": event.type,
                "ID": event.contact_id,
                "UserData": event.user_data,
                "DiallerCampaignsID": event.campaign_id,
                "referenceId": event.reference_id,
            },
        )

    async def operation_done(self, ack: OperationAck) -> None:
        """Deliver to the requesting identity's own sessions on /v2/me/operations."""
        await self._server.deliver_to_user(
            ack.user,
            OPERATIONS_CHANNEL,
            {"referenceId": ack.reference_id, "operation": ack.operation, "status": ack.status, "result": ack.result},
        )

    async def record_cancelled(self, event: RecordCancelled) -> None:
        """Hand a taken-away record to whoever tells the agent."""
        if self.on_record_cancelled is not None:
            await self.on_record_cancelled(event)

    async def notify_agent(self, notice: RecordNotice) -> list[dict[str, Any]]:
        """GWS outbound notifications for one agent."""
        return await self._outbound.notify_agent(notice)

    async def waitfield_changed(self, event: WaitfieldEvent) -> None:
        """Broadcast on /v2/waitfield/contacts (supervisors and services)."""
        item = event.item
        await self._server.publish(
            WAITFIELD_CHANNEL,
            {
                "type": event.type,
                "id": item["id"],
                "queue": item["queue"],
                "externalId": item["externalId"],
                "state": item["state"],
                "referenceId": event.reference_id,
                "item": item,
            },
        )
