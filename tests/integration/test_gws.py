"""GWS outbound rules and bad input: statusCodes, credentials, CSRF, reservations, correlation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import AGENT_PASSWORD, CRM_TOKEN, IDENTITIES, Gateway, StartGateway
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.jtel_client import Jtel


@pytest.fixture
async def agent(gw: Gateway) -> AsyncIterator[Agent]:
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as a:
        await a.connect()
        yield a


async def snapshot(jtel: Jtel) -> Any:
    """Everything stored, as jtel shows it (with history)."""
    ids = [r["ID"] for r in (await jtel.call("GET", "/contacts")).body["records"]]
    return (await jtel.call("POST", "/contacts", {"IDList": ids})).body if ids else []


async def test_me(agent: Agent) -> None:
    """GET /api/v2/me: the agent and its device; sets the session cookie."""
    reply = await agent.get()
    assert reply.status == 200 and reply.body["statusCode"] == 0
    user = reply.body["user"]
    assert user["userName"] == "agent1" and user["roles"] == ["ROLE_AGENT"]
    assert user["devices"] == [{"id": DEVICE1, "path": f"/devices/{DEVICE1}", "deviceState": "Active"}]
    assert "JSESSIONID" in reply.headers.get("Set-Cookie", "")
    again = await agent.get(auth=False)  # the session cookie alone
    assert again.status == 200 and again.body["user"]["userName"] == "agent1"


@pytest.mark.parametrize("header", [None, "Basic YWdlbnQxOndyb25n", "Basic bm9ib2R5OnB3", "Bearer x", "Basic !!!"])
async def test_wrong_credentials(gw: Gateway, header: str | None) -> None:
    """No or wrong credentials: 401 statusCode 20, the same message whatever was wrong."""
    headers = {"Authorization": header} if header else {}
    async with aiohttp.ClientSession() as http, http.get(gw.base + "/api/v2/me", headers=headers) as resp:
        assert resp.status == 401
        assert await resp.json() == {"statusCode": 20, "statusMessage": "User not authenticated"}
        assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_only_agents_work_records(gw: Gateway) -> None:
    """A supervisor may read /api/v2/me but not operate records (statusCode 5, 403)."""
    async with Agent(gw.base, "supervisor1", "sup-pass") as sup:
        assert (await sup.get()).status == 200
        reply = await sup.campaign_op("StartPreviewSession")
        assert reply.status == 403 and reply.body["statusCode"] == 5


ADD_RECORD: dict[str, Any] = {
    "operationName": "AddRecord",
    "applicationId": 101,
    "campaignName": "Retention",
    "callingList": "ret",
    "devicePath": "/devices/" + DEVICE1,
    "phoneNumber": "+4989123456",
    "timeZone": "UTC",
    "phoneType": "Mobile",
    "from": 0,
    "until": 86400,
}
BAD_BODIES: list[tuple[str, dict[str, Any] | bytes, int, int, str]] = [
    ("/outbound-records/1", b"{nope", 400, 2, "not valid JSON"),
    ("/outbound-records/1", b"[1]", 400, 2, "JSON object"),
    ("/outbound-records/1", {"applicationId": 101}, 400, 1, "operationName"),
    ("/outbound-records/1", {"operationName": "FlyAway"}, 400, 2, "Unknown operationName"),
    ("/outbound-records/1", {"operationName": 7}, 400, 2, "operationName must be a string"),
    (
        "/outbound-records/1",
        {
            "operationName": "RejectRecord",
            "applicationId": 101,
            "campaignName": "Retention",
            "devicePath": "/devices/" + DEVICE1,
        },
        400,
        1,
        "callingList",
    ),
    (
        "/outbound-records/1",
        {
            "operationName": "RejectRecord",
            "applicationId": "101",
            "campaignName": "Retention",
            "callingList": "ret",
            "devicePath": "/devices/" + DEVICE1,
        },
        400,
        2,
        "applicationId",
    ),
    (
        "/outbound-records/1",
        {
            "operationName": "RescheduleRecord",
            "applicationId": 101,
            "campaignName": "Retention",
            "callbackType": "Tomorrow",
            "timestamp": 1,
            "devicePath": "/devices/" + DEVICE1,
        },
        400,
        2,
        "callbackType",
    ),
    ("/outbound-records/abc", {"operationName": "RejectRecord"}, 404, 6, "a record handle is a number"),
    (
        "/outbound-records/424242",
        {
            "operationName": "RejectRecord",
            "applicationId": 101,
            "campaignName": "Retention",
            "callingList": "ret",
            "devicePath": "/devices/" + DEVICE1,
        },
        404,
        6,
        "not found",
    ),
    (
        "/outbound-records/1",
        {
            "operationName": "RejectRecord",
            "applicationId": 101,
            "campaignName": "Nope",
            "callingList": "ret",
            "devicePath": "/devices/" + DEVICE1,
        },
        404,
        6,
        "Campaign Nope",
    ),
    (
        "/outbound-records/1",
        {
            "operationName": "RejectRecord",
            "applicationId": 999,
            "campaignName": "Retention",
            "callingList": "ret",
            "devicePath": "/devices/" + DEVICE1,
        },
        400,
        2,
        "applicationId 999",
    ),
    (
        "/outbound-records/1",
        {
            "operationName": "RejectRecord",
            "applicationId": 101,
            "campaignName": "Retention",
            "callingList": "ret",
            "devicePath": "/devices/other",
        },
        400,
        2,
        "devicePath",
    ),
    (
        "/outbound-records/1",
        {
            "operationName": "CompleteRecord",
            "applicationId": 101,
            "campaignName": "Retention",
            "callingList": "ret",
            "devicePath": "/devices/" + DEVICE1,
            "callResult": "Exploded",
        },
        400,
        2,
        "callResult",
    ),
    (
        "/outbound-campaigns/Nope",
        {"operationName": "StartPreviewSession", "applicationId": 101, "devicePath": "/devices/" + DEVICE1},
        404,
        6,
        "Campaign Nope",
    ),
    (
        "/outbound-campaigns/Retention",
        {"operationName": "GetPreviewRecord", "applicationId": 101, "devicePath": "/devices/" + DEVICE1},
        400,
        2,
        "No preview session",
    ),
    (
        "/outbound-records",
        {
            "operationName": "AddRecord",
            "applicationId": 101,
            "campaignName": "Retention",
            "callingList": "ret",
            "devicePath": "/devices/" + DEVICE1,
        },
        400,
        1,
        "phoneNumber",
    ),
    # Found while checking what schemathesis could not reach: each of these was a 500.
    (
        "/outbound-records/²",  # str.isdigit() holds, int() refuses
        {"operationName": "RejectRecord"},
        404,
        6,
        "not found",
    ),
    (
        "/outbound-records/1",
        {
            "operationName": "CompleteRecord",
            "applicationId": 101,
            "campaignName": "Retention",
            "callingList": "ret",
            "devicePath": "/devices/" + DEVICE1,
            "callResult": "²",
        },
        400,
        2,
        "callResult",
    ),
    # beyond what the store can bind: refused where the body is read (gateway/wire/limits.py)
    ("/outbound-records", {**ADD_RECORD, "chainId": 2**63}, 400, 2, "outside the 64-bit range"),
    # jtel-named otherFields become the contact's fields: the jtel API then answered Name 5, against its schema.
    (
        "/outbound-records",
        {**ADD_RECORD, "otherFields": {"Name": 5, "Comment": "fine"}},
        400,
        2,
        "Name must be a string",
    ),
    ("/outbound-records", {**ADD_RECORD, "otherFields": {"Email": "x" * 257}}, 400, 2, "Email is longer than 256"),
    ("/outbound-records", {**ADD_RECORD, "phoneNumber": "1" * 33}, 400, 2, "phoneNumber is longer than 32"),
]


@pytest.mark.parametrize(("path", "body", "http", "code", "message"), BAD_BODIES)
async def test_bad_input(agent: Agent, jtel: Jtel, path: str, body: Any, http: int, code: int, message: str) -> None:
    """Each bad request gets its statusCode and message, never a 500, and stored data does not change."""
    await jtel.import_contact(UserData="X")
    before = await snapshot(jtel)
    reply = await agent.post(
        path, raw=body if isinstance(body, bytes) else None, body=None if isinstance(body, bytes) else body
    )
    assert reply.status == http, reply.body
    assert reply.body["statusCode"] == code and message in reply.body["statusMessage"]
    assert set(reply.body) == {"statusCode", "statusMessage"}
    assert await snapshot(jtel) == before


async def test_record_of_another_agent(gw: Gateway, jtel: Jtel, agent: Agent) -> None:
    """Operating a record another agent holds is statusCode 3 (403) and changes nothing."""
    await jtel.import_contact(UserData="A")
    handle = await agent.preview()
    async with Agent(gw.base, "agent2", "agent2-test-password") as other:
        await other.connect()
        before = await snapshot(jtel)
        for name in ("RejectRecord", "CompleteRecord", "DoNotCallRecord"):
            reply = await other.record_op(handle, name)
            assert (reply.status, reply.body["statusCode"]) == (403, 3), reply.body
        assert await snapshot(jtel) == before
        with pytest.raises(asyncio.TimeoutError):
            await agent.next(timeout=0.3)


async def test_two_agents_never_share_a_record(start_gateway: StartGateway) -> None:
    """Eight agents asking at the same moment for five records: five distinct records, three empties."""
    users = [{"name": f"a{i}", "role": "agent", "password": "pw"} for i in range(8)]
    gw = await start_gateway(extra={**IDENTITIES, "users": [*IDENTITIES["users"], *users]})
    async with aiohttp.ClientSession() as http:
        j = Jtel(http, gw.base, CRM_TOKEN)
        for i in range(5):
            await j.import_contact(UserData=f"R{i}")
    agents = [Agent(gw.base, f"a{i}", "pw") for i in range(8)]
    try:
        for a in agents:
            await a.__aenter__()
            await a.connect()
            await a.campaign_op("StartPreviewSession")
            await a.next("PreviewSessionStarted")
        await asyncio.gather(*(a.campaign_op("GetPreviewRecord") for a in agents))
        got = [(await a.next())["data"] for a in agents]
        handles = [m["record"]["recordHandle"] for m in got if m["notificationType"] == "PreviewRecord"]
        assert len(handles) == 5 and len(set(handles)) == 5
        assert sum(m["notificationType"] == "PreviewRecordEmpty" for m in got) == 3
    finally:
        for a in agents:
            await a.__aexit__()


async def test_lock_by_service_cancels_the_agents_record(jtel: Jtel, agent: Agent) -> None:
    """A jtel lock of a held record: RecordCancel at once; later operations on it get a clear error."""
    await jtel.import_contact(UserData="L")
    handle = await agent.preview()
    assert (await jtel.call("PATCH", f"/contacts/contact/{handle}/lock")).status == 200
    cancel = (await agent.next("RecordCancel"))["data"]
    assert cancel["record"]["recordHandle"] == handle and cancel["messageType"] == "OutboundRecordMessage"
    reply = await agent.record_op(handle, "CompleteRecord")
    assert (reply.status, reply.body) == (400, {"statusCode": 2, "statusMessage": f"Record {handle} is locked"})
    assert (await jtel.call("PATCH", f"/contacts/contact/{handle}/unlock")).status == 200
    await agent.campaign_op("GetPreviewRecord")
    assert (await agent.next())["data"]["record"]["recordHandle"] == handle  # offered again once unlocked


async def test_delete_by_service_cancels_the_agents_record(jtel: Jtel, agent: Agent) -> None:
    """A jtel delete of a held record: RecordCancel, then 'not found' for the agent."""
    await jtel.import_contact(UserData="D")
    handle = await agent.preview()
    assert (await jtel.call("DELETE", f"/contacts/contact/{handle}")).status == 200
    assert (await agent.next("RecordCancel"))["data"]["record"]["recordHandle"] == handle
    reply = await agent.record_op(handle, "RejectRecord")
    assert (reply.status, reply.body["statusCode"]) == (404, 6)


async def test_locked_and_finished_records_are_never_offered(jtel: Jtel, agent: Agent) -> None:
    """Locked, completed and do-not-call records stay out of GetPreviewRecord."""
    locked = (await jtel.import_contact(UserData="LK")).body["records"][0]["ID"]
    await jtel.call("PATCH", f"/contacts/contact/{locked}/lock")
    await jtel.import_contact(UserData="OK")
    handle = await agent.preview()
    assert handle != locked
    await agent.record_op(handle, "CompleteRecord", callResult=33)
    await agent.next("RecordProcessedAcknowledge")
    await agent.campaign_op("GetPreviewRecord")
    assert (await agent.next())["data"]["notificationType"] == "PreviewRecordEmpty"


async def test_call_results_by_name_and_code(jtel: Jtel, agent: Agent) -> None:
    """callResult takes OCS names in any spelling and their numeric codes."""
    for value in ("No Answer", "CallResultBusy", 9, "51"):
        await jtel.import_contact(UserData=f"CR{value}")
    results = []
    handle = await agent.preview()
    for value, _ in (("No Answer", 7), ("CallResultBusy", 6), (9, 9), ("51", 51)):
        assert (await agent.record_op(handle, "CompleteRecord", callResult=value)).body == {"statusCode": 0}
        await agent.next("RecordProcessedAcknowledge")
        results.append(handle)
        await agent.campaign_op("GetPreviewRecord")
        message = (await agent.next())["data"]
        if message["notificationType"] == "PreviewRecord":
            handle = message["record"]["recordHandle"]
    batch = (await jtel.call("POST", "/contacts", {"IDList": results})).body["records"]
    codes = [r["DiallerContactsHistory"][0]["CallResultCode"] for r in batch]
    assert codes == [7, 6, 9, 51]


async def test_retry_is_not_applied_twice_and_resends_ack(jtel: Jtel, agent: Agent) -> None:
    """Same referenceId and body: the same answer, the acknowledgement again, nothing applied twice."""
    await jtel.import_contact(UserData="R")
    handle = await agent.preview()
    first = await agent.record_op(handle, "RejectRecord", reference="again")
    assert (await agent.next("RecordRejectAcknowledge"))["data"]["referenceId"] == "again"
    retry = await agent.record_op(handle, "RejectRecord", reference="again")
    assert first.body == retry.body == {"statusCode": 0}  # not "record not reserved": not applied again
    assert (await agent.next("RecordRejectAcknowledge"))["data"]["referenceId"] == "again"
    clash = await agent.record_op(handle, "CompleteRecord", reference="again")
    assert (clash.status, clash.body["statusCode"]) == (409, 18)


async def test_operation_lookup(gw: Gateway, jtel: Jtel, agent: Agent) -> None:
    """GET /api/v2/me/operations/{referenceId}: state and notifications; another identity's is 404."""
    await jtel.import_contact(UserData="O")
    handle = await agent.preview()
    await agent.record_op(handle, "RejectRecord", reference="look")
    reply = await agent.get("/operations/look")
    assert reply.status == 200
    op = reply.body["operation"]
    assert op["state"] == "Done" and op["statusCode"] == 0 and op["operationName"] == "RejectRecord"
    kinds = [n["data"].get("notificationType") for n in op["notifications"]]
    assert kinds == ["RecordRejectAcknowledge", None]
    assert op["notifications"][1]["channel"] == "/me/internal"
    async with Agent(gw.base, "agent2", "agent2-test-password") as other:
        assert (await other.get("/operations/look")).status == 404
    assert (await agent.get("/operations/unknown")).body == {"statusCode": 6, "statusMessage": "Operation not found"}


async def test_personal_callback_pushed_when_due(jtel: Jtel, agent: Agent) -> None:
    """RescheduleRecord Personal: pushed back to the same agent as ScheduledCall when due."""
    await jtel.import_contact(UserData="P")
    handle = await agent.preview()
    due = int(time.time()) + 1
    reply = await agent.record_op(handle, "RescheduleRecord", callbackType="Personal", timestamp=due, callingList=...)
    assert reply.body == {"statusCode": 0}
    scheduled = (await agent.next("ScheduledCall", timeout=5))["data"]
    assert scheduled["record"]["recordHandle"] == handle
    assert scheduled["record"]["userData"]["GSW_USER_EVENT"] == "ScheduledCall"
    assert (await agent.record_op(handle, "CompleteRecord")).body == {"statusCode": 0}  # it is the agent's again


async def test_campaign_callback_returns_to_pool_when_due(jtel: Jtel, agent: Agent) -> None:
    """RescheduleRecord Campaign: not offered before the time, offered to anyone after it."""
    await jtel.import_contact(UserData="C")
    handle = await agent.preview()
    await agent.record_op(
        handle, "RescheduleRecord", callbackType="Campaign", timestamp=int(time.time()) + 2, callingList=...
    )
    await agent.next("ScheduledRecordRescheduleAcknowledge")
    await agent.campaign_op("GetPreviewRecord")
    assert (await agent.next())["data"]["notificationType"] == "PreviewRecordEmpty"
    await asyncio.sleep(2.2)
    await agent.campaign_op("GetPreviewRecord")
    assert (await agent.next())["data"]["record"]["recordHandle"] == handle


async def test_max_records_per_agent(start_gateway: StartGateway) -> None:
    """outbound.max_records_per_agent bounds what one agent holds (unlimited by default)."""
    gw = await start_gateway(extra={**IDENTITIES, "outbound": {"max_records_per_agent": 2}})
    async with aiohttp.ClientSession() as http:
        j = Jtel(http, gw.base, CRM_TOKEN)
        for i in range(3):
            await j.import_contact(UserData=f"M{i}")
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as a:
        await a.connect()
        await a.preview()
        await a.campaign_op("GetPreviewRecord")
        await a.next("PreviewRecord")
        third = await a.campaign_op("GetPreviewRecord")
        assert (third.status, third.body["statusCode"]) == (400, 2) and "2 records" in third.body["statusMessage"]


@pytest.mark.parametrize("csrf", [False, True])
async def test_csrf(start_gateway: StartGateway, csrf: bool) -> None:
    """gws.csrf: off, posts need no token; on, GET hands out the token and posts without it get 403."""
    gw = await start_gateway(extra={**IDENTITIES, "gws": {"csrf": csrf}})
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as a:
        me = await a.get()
        if not csrf:
            assert "X-CSRF-TOKEN" not in me.headers
            assert (await a.campaign_op("StartPreviewSession")).body == {"statusCode": 0}
            return
        assert me.headers["X-CSRF-HEADER"] == "X-CSRF-TOKEN"
        token = me.headers["X-CSRF-TOKEN"]
        refused = await a.campaign_op("StartPreviewSession")
        assert (refused.status, refused.body) == (
            403,
            {"statusCode": 3, "statusMessage": "Missing or invalid Csrf token"},
        )
        a.csrf = "forged"
        assert (await a.campaign_op("StartPreviewSession")).status == 403
        a.csrf = token
        assert (await a.campaign_op("StartPreviewSession")).body == {"statusCode": 0}
