"""GWS outbound end to end: two agents, real REST calls, acknowledgements on their own CometD sessions."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiocometd_ng import ConnectionType

from tests.conftest import AGENT_PASSWORD, Gateway
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.jtel_client import Jtel

TRANSPORTS = [ConnectionType.LONG_POLLING, ConnectionType.WEBSOCKET]


async def load(jtel: Jtel, n: int, **fields: object) -> list[int]:
    """Import n contacts into the Retention campaign; return their IDs."""
    ids = []
    for i in range(n):
        reply = await jtel.import_contact(UserData=f"C{i}", **fields)
        ids.append(reply.body["records"][0]["ID"])
    return ids


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
async def test_reject_acknowledged_to_the_requester_only(gw: Gateway, jtel: Jtel, transport: ConnectionType) -> None:
    """Start session, get record, reject with referenceId: the agent gets RecordRejectAcknowledge with it
    (and its /me/internal twin); the other agent gets nothing."""
    await load(jtel, 3)
    async with (
        Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as a1,
        Agent(gw.base, "agent2", "agent2-test-password") as a2,
    ):
        await a1.connect(transport)
        await a2.connect(transport)
        handle = await a1.preview()
        reply = await a1.record_op(handle, "RejectRecord", reference="123456789")
        assert (reply.status, reply.body) == (200, {"statusCode": 0})
        ack = await a1.next("RecordRejectAcknowledge")
        assert ack == {
            "channel": "/v2/me/outbound",
            "data": {
                "messageType": "OutboundRecordMessage",
                "notificationType": "RecordRejectAcknowledge",
                "referenceId": "123456789",
                "record": {
                    "devicePath": f"/devices/{DEVICE1}",
                    "campaignName": "Retention",
                    "callingList": "ret",
                    "applicationId": 101,
                    "recordHandle": handle,
                },
            },
        }
        twin = await a1.internal("RecordRejectAcknowledge")
        assert twin["data"]["messageType"] == "DeviceUserEventMessage" and twin["data"]["deviceId"] == DEVICE1
        assert twin["data"]["userData"] | {} == {
            "GSW_APPLICATION_ID": 101,
            "GSW_RECORD_HANDLE": handle,
            "GSW_USER_EVENT": "RecordRejectAcknowledge",
            "GSW_CALLING_LIST": "ret",
            "GSW_CAMPAIGN_NAME": "Retention",
            "GSW_REFERENCE_ID": "123456789",
        }
        assert set(twin["data"]["metrics"]["eventProcessing"]) == {
            "serverGenerationTimestamp",
            "nodeProcessingTimeNanos",
            "serverProcessingTimeTotalMs",
        }
        with pytest.raises(asyncio.TimeoutError):
            await a2.next_any(timeout=0.5)
        # Rejected: back in the pool, so the other agent can get it.
        await a2.campaign_op("StartPreviewSession")
        await a2.campaign_op("GetPreviewRecord")
        offered = (await a2.next("PreviewRecord"))["data"]["record"]
        assert offered["recordHandle"] == handle


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
async def test_every_operation_once(gw: Gateway, jtel: Jtel, transport: ConnectionType) -> None:
    """Each operation gets {statusCode: 0} and its acknowledgement with the request's referenceId."""
    await load(jtel, 4, PhoneNumber2="+4930111", PhoneNumber3="+4930222")
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as agent:
        await agent.connect(transport)
        assert (await agent.campaign_op("StartPreviewSession", reference="s1")).body == {"statusCode": 0}
        started = (await agent.next("PreviewSessionStarted"))["data"]
        assert started["messageType"] == "OutboundCampaignMessage" and started["referenceId"] == "s1"
        assert started["campaign"]["name"] == "Retention" and started["campaign"]["dialingMode"] == "Preview"
        assert started["campaign"]["groupName"] == "Retention@g1" and started["campaign"]["state"] == "Started"

        await agent.campaign_op("GetPreviewRecord", reference="p1")
        preview = (await agent.next("PreviewRecord"))["data"]
        assert preview["referenceId"] == "p1"
        record = preview["record"]
        user_data = record["userData"]
        assert (
            user_data["GSW_RECORD_HANDLE"] == record["recordHandle"] and user_data["GSW_USER_EVENT"] == "PreviewRecord"
        )
        assert user_data["GSW_CAMPAIGN_NAME"] == "Retention" and user_data["Name"] == "Mustermann"
        assert user_data["GSW_PHONE"] == "+4989123456"
        h = record["recordHandle"]

        async def op(name: str, kind: str, handle: int = h, **fields: object) -> dict:  # type: ignore[type-arg]
            reply = await agent.record_op(handle, name, reference=f"ref-{name}", **fields)
            assert (reply.status, reply.body) == (200, {"statusCode": 0}), reply.body
            message = (await agent.next(kind))["data"]
            assert message["referenceId"] == f"ref-{name}"
            return message

        updated = await op(
            "UpdateRecord",
            "UpdateCallCompletionStatsAcknowledge",
            phoneNumber="+4940999",
            phoneType="Mobile",
            timeZone="CET",
            **{"from": 0, "until": 86000},
        )
        assert updated["record"]["recordHandle"] == h
        stored = (await jtel.call("GET", f"/contacts/{h}")).body["records"][0]
        assert stored["PhoneNumber1"] == "+4940999"
        chained = []
        await agent.record_op(h, "GetChainedRecord", reference="ref-chain", callingList=...)
        while True:
            message = (await agent.next())["data"]
            chained.append(message)
            if message["notificationType"] == "ChainedRecordsDataEnd":
                break
        phones = [m["record"]["userData"]["GSW_PHONE"] for m in chained if m["notificationType"] == "ChainedRecord"]
        assert phones == ["+4930111", "+4930222"]
        assert all(m["referenceId"] == "ref-chain" for m in chained)
        await op("CompleteRecord", "RecordProcessedAcknowledge", callResult="Answer")
        batch = (await jtel.call("POST", "/contacts", {"IDList": [h]})).body["records"][0]
        assert batch["DiallerCampaignsResultCodes"]["bDone"] is True
        assert batch["DiallerContactsHistory"][0]["CallResult"] == "Answer"
        assert batch["DiallerContactsHistory"][0]["UserName"] == "agent1"

        h2 = await _next_record(agent)
        when = int(time.time()) + 3600
        await op(
            "RescheduleRecord",
            "ScheduledRecordRescheduleAcknowledge",
            handle=h2,
            callbackType="Campaign",
            timestamp=when,
            callingList=...,
        )
        h3 = await _next_record(agent)
        await op("DoNotCallRecord", "DoNotCallAcknowledge", handle=h3, chainAttribute="RecordOnly")
        reply = await agent.post(
            "/outbound-records",
            {
                "operationName": "AddRecord",
                "applicationId": 101,
                "campaignName": "Retention",
                "callingList": "ret",
                "phoneNumber": "+4955512345",
                "timeZone": "GMT",
                "phoneType": "HomePhone",
                "from": 0,
                "until": 86339,
                "devicePath": agent.device_path,
                "referenceId": "ref-add",
                "otherFields": {"Name": "Added", "Company": "X"},
            },
        )
        assert reply.body == {"statusCode": 0}
        added = (await agent.next("AddRecordAcknowledge"))["data"]
        assert added["referenceId"] == "ref-add"
        new = (await jtel.call("GET", f"/contacts/{added['record']['recordHandle']}")).body["records"][0]
        assert new["PhoneNumber1"] == "+4955512345" and new["Name"] == "Added"
        reply = await agent.post(
            "/outbound-records",
            {
                "operationName": "DoNotCallRecord",
                "applicationId": 101,
                "campaignName": "Retention",
                "phoneNumber": "+4955512345",
                "devicePath": agent.device_path,
                "referenceId": "ref-dnc-num",
            },
        )
        assert reply.body == {"statusCode": 0}
        dnc = (await agent.next("DoNotCallAcknowledge"))["data"]
        assert dnc["record"]["phoneNumber"] == "+4955512345" and "recordHandle" not in dnc["record"]
        h4 = await _next_record(agent)  # the fourth imported contact: the only callable one left
        await agent.campaign_op("GetPreviewRecord")
        assert (await agent.next())["data"]["notificationType"] == "PreviewRecordEmpty"
        assert (await agent.campaign_op("EndPreviewSession", reference="e1")).body == {"statusCode": 0}
        ended = (await agent.next("PreviewSessionEnded"))["data"]
        assert ended["referenceId"] == "e1" and ended["campaign"]["state"] == "Stopped"
        # Ending the session released the record the agent still held.
        assert (await jtel.call("GET", f"/contacts/{h4}")).status == 200
        assert (await agent.record_op(h4, "RejectRecord")).body["statusCode"] == 2


async def _next_record(agent: Agent) -> int:
    await agent.campaign_op("GetPreviewRecord")
    message = (await agent.next())["data"]
    assert message["notificationType"] == "PreviewRecord", message
    handle: int = message["record"]["recordHandle"]
    return handle
