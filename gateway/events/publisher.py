"""EventPublisher: domain events become Bayeux messages on the gateway's channels."""

from __future__ import annotations

from typing import Final

from gateway.bayeux.server import BayeuxServer
from gateway.events.types import ContactEvent, OperationAck

CONTACTS_CHANNEL: Final = "/v2/dialler/contacts"
OPERATIONS_CHANNEL: Final = "/v2/me/operations"


class EventPublisher:
    """Publishes contact changes to supervisors and services, acknowledgements to their requester."""

    def __init__(self, *, server: BayeuxServer) -> None:
        self._server = server

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
