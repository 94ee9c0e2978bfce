"""EventPublisher: domain events become notifications on the gateway's channels.

The renderers are pure (they run inside a store write's transaction, on the writer thread, so that a
change and its notifications commit together); `emit` delivers what no write carries.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Final

from gateway.bayeux.server import BayeuxServer
from gateway.events.agents import AgentStates, agent_channel
from gateway.events.outbound import OutboundNotifier
from gateway.events.types import CampaignRef, ContactEvent, OperationAck, RecordCancelled, RecordNotice, WaitfieldEvent
from gateway.wire.notification import Notification

CONTACTS_CHANNEL: Final = "/v2/dialler/contacts"
WAITFIELD_CHANNEL: Final = "/v2/waitfield/contacts"
OPERATIONS_CHANNEL: Final = "/v2/me/operations"


class EventPublisher:
    """Contact and waiting-field changes and agent states for supervisors and services, acknowledgements for
    their requester, GWS notifications for agents."""

    def __init__(
        self,
        *,
        server: BayeuxServer,
        outbound: OutboundNotifier,
        campaign_of: Callable[[int], CampaignRef],
        agents: AgentStates | None = None,
    ) -> None:
        self._server = server
        self._outbound = outbound
        self._campaign_of = campaign_of
        self._agents = agents or AgentStates()

    def contact_changed(self, event: ContactEvent) -> list[Notification]:
        """On /v2/dialler/contacts, to every subscriber."""
        data = {
            "type": event.type,
            "ID": event.contact_id,
            "UserData": event.user_data,
            "DiallerCampaignsID": event.campaign_id,
            "referenceId": event.reference_id,
        }
        return [self._server.notification(CONTACTS_CHANNEL, data)]

    def operation_done(self, ack: OperationAck) -> list[Notification]:
        """On the requesting identity's own /v2/me/operations."""
        data = {"referenceId": ack.reference_id, "operation": ack.operation, "status": ack.status, "result": ack.result}
        return [self._server.notification(OPERATIONS_CHANNEL, data, user=ack.user)]

    def record_cancelled(self, event: RecordCancelled) -> list[Notification]:
        """A service locked or deleted a record the agent held: RecordCancel to that agent."""
        # The record may be gone already (deleted): the notice names it by its handle only.
        handle = event.contact_id
        notice = RecordNotice(
            agent=event.agent,
            kind="RecordCancel",
            campaign=self._campaign_of(event.campaign_id),
            echo={"recordHandle": handle},
            extra={"GSW_RECORD_HANDLE": handle},
        )
        return self.record_notice(notice)

    def record_notice(self, notice: RecordNotice) -> list[Notification]:
        """GWS outbound notifications for one agent, and the agent-state event they imply (for supervisors)."""
        notes = self._outbound.render(notice)
        state = self._agents.of_notice(notice)
        if state is not None:
            notes.append(self._server.notification(agent_channel(notice.agent), state))
        return notes

    def agent_presence(self, agent: str, *, online: bool, sessions: int) -> list[Notification]:
        """AgentOnline / AgentOffline on /v2/agents/{agent}."""
        data = self._agents.presence(agent, online=online, sessions=sessions)
        return [self._server.notification(agent_channel(agent), data)]

    def waitfield_changed(self, event: WaitfieldEvent) -> list[Notification]:
        """On /v2/waitfield/contacts (supervisors and services)."""
        # A copy: the waiting field goes on changing its item after this moment.
        item = copy.deepcopy(event.item)
        data = {
            "type": event.type,
            "id": item["id"],
            "queue": item["queue"],
            "externalId": item["externalId"],
            "state": item["state"],
            "referenceId": event.reference_id,
            "item": item,
        }
        return [self._server.notification(WAITFIELD_CHANNEL, data)]

    async def emit(self, notifications: Sequence[Notification]) -> None:
        """Log (in a transaction of their own) and deliver notifications no store write carried."""
        await self._server.emit(notifications)
