"""EventPublisher: domain events become Bayeux messages on the gateway's channels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from gateway.bayeux.server import BayeuxServer
from gateway.events.outbound import OutboundNotifier
from gateway.events.types import CampaignRef, ContactEvent, OperationAck, RecordCancelled, RecordNotice, WaitfieldEvent

CONTACTS_CHANNEL: Final = "/v2/dialler/contacts"
WAITFIELD_CHANNEL: Final = "/v2/waitfield/contacts"
OPERATIONS_CHANNEL: Final = "/v2/me/operations"


class EventPublisher:
    """Publishes contact changes to supervisors and services, acknowledgements to their requester."""

    def __init__(
        self, *, server: BayeuxServer, outbound: OutboundNotifier, campaign_of: Callable[[int], CampaignRef]
    ) -> None:
        self._server = server
        self._outbound = outbound
        self._campaign_of = campaign_of

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
        """A service locked or deleted a record the agent held: RecordCancel to that agent."""
        # The record may be gone already (deleted): the notice names it by its handle only.
        handle = event.contact_id
        await self._outbound.notify_agent(
            RecordNotice(
                agent=event.agent,
                kind="RecordCancel",
                campaign=self._campaign_of(event.campaign_id),
                echo={"recordHandle": handle},
                extra={"GSW_RECORD_HANDLE": handle},
            )
        )

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
