"""GWS outbound notifications: OutboundRecordMessage / OutboundCampaignMessage on /v2/me/outbound and the
DeviceUserEventMessage twin on /me/internal, delivered only to the agent concerned (all its sessions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from gateway.bayeux.server import BayeuxServer
from gateway.events.types import CampaignRef, RecordNotice
from gateway.wire.notification import Notification

OUTBOUND_CHANNEL: Final = "/v2/me/outbound"
INTERNAL_CHANNEL: Final = "/me/internal"
# Kinds whose record carries the whole contact as userData (the agent needs its fields).
_WITH_USER_DATA: Final = frozenset({"PreviewRecord", "ScheduledCall", "ChainedRecord"})


def group_name(campaign: CampaignRef) -> str:
    """OCS's campaign group name: `<campaign>@<agent group>`."""
    return f"{campaign.name}@{campaign.agent_group}"


def gsw_user_data(campaign: CampaignRef, kind: str, record: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """The GSW_* keys OCS attaches to a user event about a record (plus the contact's own fields)."""
    data: dict[str, Any] = {
        "GSW_APPLICATION_ID": campaign.application_id,
        "GSW_CAMPAIGN_NAME": campaign.name,
        "GSW_CALLING_LIST": campaign.calling_list,
        "GSW_USER_EVENT": kind,
    }
    if record is not None:
        data["GSW_RECORD_HANDLE"] = record.id
        if kind in _WITH_USER_DATA:
            phones = record.phones()
            data.update(
                GSW_CAMPAIGN_GROUP_NAME=group_name(campaign),
                GSW_CAMPAIGN_GROUP_DESCRIPTION="",
                GSW_CHAIN_ID=record.chain_id if record.chain_id is not None else record.id,
                GSW_ATTEMPTS=record.attempts,
                GSW_CALL_RESULT=28,  # Unknown Call Result, OCS's default for a fresh record
                GSW_PHONE=phones[0][1] if phones else None,
                GSW_TZ_NAME="UTC",
                GSW_TZ_OFFSET=0,
                GSW_FROM=0,
                GSW_UNTIL=86399,
                InteractionType="Outbound",
                InteractionSubtype="OutboundNew",
            )
            # Contact fields inline, as OCS puts custom calling-list fields (null ones left out).
            data.update({k: v for k, v in record.data.items() if v is not None and not k.startswith("_")})
    data.update(extra)
    return data


class OutboundNotifier:
    """Builds the GWS outbound messages for one agent (delivered by whoever carries them: a store write's
    outbox, or `emit`)."""

    def __init__(self, *, server: BayeuxServer, device_of: Callable[[str], str | None]) -> None:
        self._server = server
        self._device_of = device_of

    def render(self, notice: RecordNotice) -> list[Notification]:
        """The outbound message and its DeviceUserEventMessage twin, to the agent's sessions only."""
        started = time.perf_counter_ns()
        campaign = notice.campaign
        device = self._device_of(notice.agent)
        device_path = notice.echo.get("devicePath") or (f"/devices/{device}" if device else None)
        outbound: dict[str, Any]
        if notice.campaign_message:
            outbound = {
                "messageType": "OutboundCampaignMessage",
                "notificationType": notice.kind,
                "campaign": {
                    "name": campaign.name,
                    "description": "",
                    "groupName": group_name(campaign),
                    "groupDescription": "",
                    "dialingMode": campaign.dialing_mode,
                    "state": notice.campaign_state or "Started",
                    "devicePath": device_path,
                    "applicationId": campaign.application_id,
                },
            }
        else:
            record: dict[str, Any] = {
                "devicePath": device_path,
                "campaignName": campaign.name,
                "callingList": campaign.calling_list,
                "applicationId": campaign.application_id,
                **{k: v for k, v in notice.echo.items() if k not in ("devicePath",)},
            }
            if notice.record is not None:
                record["recordHandle"] = notice.record.id
                if notice.kind in _WITH_USER_DATA:
                    record["userData"] = gsw_user_data(campaign, notice.kind, notice.record, notice.extra)
            outbound = {"messageType": "OutboundRecordMessage", "notificationType": notice.kind, "record": record}
        if notice.reference_id is not None:
            outbound["referenceId"] = notice.reference_id
        user_data = gsw_user_data(campaign, notice.kind, notice.record, notice.extra)
        if notice.reference_id is not None:
            user_data["GSW_REFERENCE_ID"] = notice.reference_id
        elapsed = time.perf_counter_ns() - started
        internal = {
            "messageType": "DeviceUserEventMessage",
            "deviceId": device,
            "userData": user_data,
            "metrics": {
                "eventProcessing": {
                    "serverGenerationTimestamp": int(time.time() * 1000),
                    "nodeProcessingTimeNanos": elapsed,
                    "serverProcessingTimeTotalMs": elapsed // 1_000_000,
                }
            },
        }
        server = self._server
        return [
            server.notification(OUTBOUND_CHANNEL, outbound, user=notice.agent),
            server.notification(INTERNAL_CHANNEL, internal, user=notice.agent),
        ]

    async def resend(self, agent: str, payloads: list[dict[str, Any]]) -> None:
        """Deliver notifications sent before once more (a retried operation): logged again, as new."""
        await self._server.emit([self._server.notification(p["channel"], p["data"], user=agent) for p in payloads])
