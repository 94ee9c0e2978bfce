"""Agent-state events for supervisors: on /v2/agents/{agent}, one per change of what an agent does.

They are derived from what agents are told (a GWS notice about a record or a preview session becomes the
matching agent-state event, rendered in the same store write's transaction, so both are logged or neither)
and from the agent's CometD presence (first and last session of the identity on this node, across tabs).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from gateway.clock import utcnow
from gateway.events.types import RecordNotice

AGENTS_PREFIX: Final = "/v2/agents/"
AGENTS_PATTERN: Final = AGENTS_PREFIX + "**"

# GWS notice kinds (what the agent hears) -> the agent-state event supervisors hear.
EVENT_OF_NOTICE: Final[dict[str, str]] = {
    "PreviewSessionStarted": "PreviewSessionStarted",
    "PreviewSessionEnded": "PreviewSessionEnded",
    "PreviewRecord": "RecordTaken",
    "ScheduledCall": "RecordTaken",
    "RecordProcessedAcknowledge": "RecordCompleted",
    "RecordRejectAcknowledge": "RecordRejected",
    "ScheduledRecordRescheduleAcknowledge": "RecordRescheduled",
    "DoNotCallAcknowledge": "RecordDoNotCall",
    "RecordCancel": "RecordCancel",
}


def agent_channel(agent: str) -> str:
    """The channel of one agent's state events."""
    return AGENTS_PREFIX + agent


def iso_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and Z: `2026-11-22T06:33:50.347Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class AgentStates:
    """Renders agent-state payloads (pure: they run inside store writes)."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock

    def of_notice(self, notice: RecordNotice) -> dict[str, Any] | None:
        """The agent-state payload a GWS notice implies, or None (the notice changes no agent state)."""
        event = EVENT_OF_NOTICE.get(notice.kind)
        if event is None:
            return None
        handle = notice.record.id if notice.record is not None else notice.echo.get("recordHandle")
        if event.startswith("Record") and handle is None:
            return None  # DoNotCallRecord by phoneNumber: no record of the agent's is named
        return self.payload(
            event,
            notice.agent,
            campaign=notice.campaign.name,
            campaign_id=notice.campaign.id,
            record_handle=handle,
            reference_id=notice.reference_id,
        )

    def presence(self, agent: str, *, online: bool, sessions: int) -> dict[str, Any]:
        """AgentOnline (its first session) or AgentOffline (its last one ended)."""
        return {**self.payload("AgentOnline" if online else "AgentOffline", agent), "sessions": sessions}

    def payload(
        self,
        event: str,
        agent: str,
        *,
        campaign: str | None = None,
        campaign_id: int | None = None,
        record_handle: int | None = None,
        reference_id: str | None = None,
    ) -> dict[str, Any]:
        """Every agent-state event has these keys (null where they do not apply)."""
        return {
            "type": event,
            "agent": agent,
            "campaign": campaign,
            "campaignId": campaign_id,
            "recordHandle": record_handle,
            "referenceId": reference_id,
            "time": iso_time(self._clock()),
        }
