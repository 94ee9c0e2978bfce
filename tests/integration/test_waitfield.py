"""SNtial Wait: the whole life of a waiting contact, in seconds instead of minutes, and its bad input."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import AGENT_PASSWORD, CRM_TOKEN, IDENTITIES, Gateway, StartGateway
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.sntial_client import Sntial

TIMES = {"waitingFieldMultiplier": 1, "minimumWaitingTime": 1, "maximumWaitingTime": 2, "outboundNumber": "+4930999"}
WAITFIELD = {
    **IDENTITIES,
    "waitfield": {
        "queues": [
            {"name": "Support", "skills": ["english"], "settings": TIMES, "campaign": 2},
            {
                "name": "Slow",
                "skills": [],
                "settings": {**TIMES, "minimumWaitingTime": 60, "maximumWaitingTime": 120},
                "campaign": 2,
            },
        ]
    },
}
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00")


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp[:26] + stamp[27:])


@pytest.fixture
async def gw(start_gateway: StartGateway) -> Gateway:
    return await start_gateway(extra=WAITFIELD)


@pytest.fixture
async def api(gw: Gateway) -> AsyncIterator[Sntial]:
    async with aiohttp.ClientSession() as http:
        yield Sntial(http, gw.base, CRM_TOKEN)


async def until_state(api: Sntial, contact_id: str, state: str, timeout: float = 6.0) -> dict[str, Any]:
    end = asyncio.get_running_loop().time() + timeout
    while True:
        status, body = await api.call("GET", f"contact/{contact_id}")
        assert status == 200
        if body["item"]["state"] == state:
            return body["item"]  # type: ignore[no-any-return]
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"still {body['item']['state']}, wanted {state}")
        await asyncio.sleep(0.05)


async def test_create_estimate_and_envelope(api: Sntial) -> None:
    """CreateContact: the seed's envelope and fields; estimate = multiplier x ahead, clamped; timeline."""
    status, body = await api.create()
    assert status == 200 and body["statusText"] == "OK" and body["statusCode"] == 200
    item = body["item"]
    assert item["estimatedWaitingTime"] == 1 and item["estimatedWaitingTimeMinutes"] == 1  # clamped up to minimum
    assert STAMP.fullmatch(item["createdAt"]) and STAMP.fullmatch(item["willBeRoutedAt"])
    assert (at(item["willBeRoutedAt"]) - at(item["createdAt"])).total_seconds() == 1
    assert item["routedAt"] is None and item["routingObject"] is None and item["removedAt"] is None
    assert item["settings"] == TIMES and item["queue"] == "Support" and item["skills"] == ["english"]
    assert item["queueSkills"] == "Support,english" and len(item["queueId"]) == 40
    assert item["additional"] == {"Vorname": "Max", "Nachname": "Moritz", "KDNR": "111222"}
    for ahead in (1, 2):  # more waiting ahead: 1 s each, until the maximum of 2
        _, later = await api.create(externalId=f"e{ahead}")
        assert later["item"]["estimatedWaitingTime"] == min(2, ahead)


async def test_whole_life_routed_offered_taken_completed(gw: Gateway, api: Sntial) -> None:
    """Created -> routed when due -> pushed to a waiting agent with the skill over CometD -> connected -> handled."""
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as agent:
        await agent.connect()
        assert (await agent.campaign_op("StartPreviewSession", campaign="Callbacks", application=102)).status == 200
        await agent.next("PreviewSessionStarted")
        _, body = await api.create()
        contact_id = body["item"]["id"]
        offered = (await agent.next("PreviewRecord", timeout=5))["data"]["record"]
        user_data = offered["userData"]
        assert user_data["GSW_PHONE"] == "+491701234567" and user_data["GSW_CAMPAIGN_NAME"] == "Callbacks"
        item = await until_state(api, contact_id, "connected")
        routing = item["routingObject"]
        assert routing["type"] == "CCOBJECTIN" and routing["queue"] == "Support" and routing["state"] == 2
        assert routing["from"] == "+491701234567" and routing["to"] == "08001234"
        assert routing["properties"][0] == {"name": "Vorname", "value": "Max", "hidden": False, "url": None}
        assert routing["connectedAt"] is not None and routing["handledAt"] is None
        routed = at(item["routedAt"])
        assert 0 <= (routed - at(item["willBeRoutedAt"])).total_seconds() < 1.0
        assert (at(item["willElapseAt"]) - routed).total_seconds() == 2
        reply = await agent.post(
            f"/outbound-records/{offered['recordHandle']}",
            {
                "operationName": "CompleteRecord",
                "applicationId": 102,
                "campaignName": "Callbacks",
                "callingList": "cb",
                "devicePath": agent.device_path,
                "callResult": "Answer",
            },
        )
        assert reply.body == {"statusCode": 0}
        done = await until_state(api, contact_id, "handled")
        assert done["routingObject"]["handledAt"] is not None and done["routingObject"]["disconnectedAt"] is not None
        await asyncio.sleep(2.5)  # past willElapseAt: a taken contact does not elapse
        assert (await api.call("GET", f"contact/{contact_id}"))[1]["item"]["state"] == "handled"


async def test_not_taken_elapses(gw: Gateway, api: Sntial) -> None:
    """Routed but nobody takes it by willElapseAt: elapsed, removedAt set, record withdrawn from the pool."""
    _, body = await api.create()
    contact_id = body["item"]["id"]
    item = await until_state(api, contact_id, "elapsed", timeout=8)
    assert item["removedAt"] is not None and item["routingObject"]["state"] == 4
    assert at(item["removedAt"]) >= at(item["willElapseAt"])
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as agent:
        await agent.connect()
        await agent.campaign_op("StartPreviewSession", campaign="Callbacks", application=102)
        await agent.campaign_op("GetPreviewRecord", campaign="Callbacks", application=102)
        assert (await agent.next("PreviewRecordEmpty"))["data"]["notificationType"] == "PreviewRecordEmpty"


async def test_removed_while_offered_cancels_at_the_agent(gw: Gateway, api: Sntial) -> None:
    """Removed while offered to an agent: the contact is removed and the agent gets RecordCancel at once."""
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as agent:
        await agent.connect()
        await agent.campaign_op("StartPreviewSession", campaign="Callbacks", application=102)
        await agent.next("PreviewSessionStarted")
        _, body = await api.create()
        offered = (await agent.next("PreviewRecord", timeout=5))["data"]["record"]
        status, removed = await api.call("POST", f"contact/remove/{body['item']['id']}")
        assert status == 200 and removed["item"]["state"] == "removed" and removed["item"]["removedAt"]
        cancel = (await agent.next("RecordCancel"))["data"]["record"]
        assert cancel["recordHandle"] == offered["recordHandle"]


async def test_removed_while_waiting(api: Sntial) -> None:
    """RemoveContact before routing: removed, never routed; DELETE and POST remove both work; twice is fine."""
    _, body = await api.create(queue="Slow")
    contact_id = body["item"]["id"]
    status, removed = await api.call("DELETE", f"contact/{contact_id}")
    assert status == 200 and removed["item"]["removedAt"] is not None and removed["item"]["routedAt"] is None
    again = await api.call("POST", f"contact/remove/{contact_id}")
    assert again == (200, removed)  # idempotent: the same item
    assert (await api.call("GET", f"contact/{contact_id}"))[1]["item"]["state"] == "removed"


async def test_unknown_id_is_the_vendors_404(api: Sntial) -> None:
    """Unknown id: 404 with exactly {statusText: NotFound, statusCode: 404, item: null}."""
    for method, path in (("GET", "contact/nope"), ("DELETE", "contact/nope"), ("POST", "contact/remove/nope")):
        assert await api.call(method, path) == (404, {"statusText": "NotFound", "statusCode": 404, "item": None})


async def test_list_filters(api: Sntial) -> None:
    """GET contacts filters by queue, state and externalId; item holds the list."""
    await api.create(externalId="A")
    await api.create(queue="Slow", externalId="B")
    status, body = await api.call("GET", "contacts", params={"queue": "Slow"})
    assert status == 200 and [i["externalId"] for i in body["item"]] == ["B"]
    assert [i["externalId"] for i in (await api.call("GET", "contacts", params={"externalId": "A"}))[1]["item"]] == [
        "A"
    ]
    assert len((await api.call("GET", "contacts", params={"state": "waiting"}))[1]["item"]) >= 1
    assert (await api.call("GET", "contacts", params={"state": "sleeping"}))[0] == 400


async def test_settings(api: Sntial) -> None:
    """GET/PUT queue settings; bad settings are refused and change nothing."""
    status, body = await api.call("GET", "queues/Support/settings")
    assert status == 200 and body["item"] == TIMES
    for bad, why in (
        ({"minimumWaitingTime": 5, "maximumWaitingTime": 3}, "minimumWaitingTime"),
        ({"waitingFieldMultiplier": -1}, "waitingFieldMultiplier"),
        ([1], "object"),
    ):
        status, body = await api.call("PUT", "queues/Support/settings", bad)
        assert status == 400 and why in body["message"]
    assert (await api.call("GET", "queues/Support/settings"))[1]["item"] == TIMES
    status, body = await api.call("PUT", "queues/Support/settings", {"waitingFieldMultiplier": 3})
    assert status == 200 and body["item"]["waitingFieldMultiplier"] == 3
    status, body = await api.call("GET", "queues/Nope/settings")
    assert status == 404 and body == {"statusText": "NotFound", "statusCode": 404, "item": None}
    assert (await api.call("PUT", "queues/Nope/settings", {"waitingFieldMultiplier": 3}))[0] == 404


async def test_huge_settings_are_refused(api: Sntial) -> None:
    """Settings beyond a week were stored, and every CreateContact of the queue then failed with 500: 400 now."""
    huge = {"minimumWaitingTime": 10**18, "maximumWaitingTime": 10**18}
    status, body = await api.call("PUT", "queues/Support/settings", huge)
    assert status == 400 and body["message"] == "minimumWaitingTime must be an integer from 0 to 604800"
    assert (await api.call("GET", "queues/Support/settings"))[1]["item"] == TIMES
    status, body = await api.call("PUT", "queues/Support/settings", {"maximumWaitingTime": 604801})
    assert status == 400 and "maximumWaitingTime" in body["message"]
    assert (await api.create())[0] == 200


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"callingNumber": ...}, "callingNumber is mandatory"),
        ({"callingNumber": "12"}, "3 to 20 digits"),
        ({"callingNumber": "+49 170 123"}, "3 to 20 digits"),
        ({"calledNumber": "1" * 21}, "3 to 20 digits"),
        ({"calledNumber": 12345}, "3 to 20 digits"),
        ({"queue": "Nope"}, "unknown queue"),
        ({"queue": ...}, "queue is mandatory"),
        ({"externalId": ...}, "externalId is mandatory"),
        ({"additional": {f"k{i}": "v" for i in range(51)}}, "more than 50 entries"),
        ({"additional": {"big": "x" * 20000}}, "larger than"),
        ({"additional": {"nested": {"a": 1}}}, "must be a string"),
        ({"priority": "high"}, "priority"),
    ],
)
async def test_bad_input(api: Sntial, fields: dict[str, Any], message: str) -> None:
    """Each bad CreateContact: 400 envelope with a message; nothing stored."""
    status, body = await api.create(**fields)
    assert status == 400 and body["statusText"] == "BadRequest" and body["item"] is None
    assert message in body["message"]
    assert (await api.call("GET", "contacts"))[1]["item"] == []


async def test_not_json_and_no_token(gw: Gateway, api: Sntial) -> None:
    """A body that is not JSON is 400; no or an agent's token is 401."""
    assert (await api.call("POST", "contact", raw=b"{oops"))[0] == 400
    async with aiohttp.ClientSession() as http:
        assert (await Sntial(http, gw.base, None).call("GET", "contacts"))[0] == 401
        assert (await Sntial(http, gw.base, "agent1-token-0123456789abcdef").call("GET", "contacts"))[0] == 401


async def test_restart_resumes_routing_and_elapse(start_gateway: StartGateway, tmp_path: Path) -> None:
    """Timers are in memory, state in the store: after a restart, pending routings and elapses happen."""
    db = tmp_path / "wf.db"
    first = await start_gateway(extra=WAITFIELD, db=db)
    async with aiohttp.ClientSession() as http:
        api = Sntial(http, first.base, CRM_TOKEN)
        _, a = await api.create(externalId="before-restart")
        assert first.app is not None
    await first.app.shutdown()
    await first.app.cleanup()
    await asyncio.sleep(1.2)  # it became due while the gateway was down
    second = await start_gateway(extra=WAITFIELD, db=db)
    async with aiohttp.ClientSession() as http:
        api = Sntial(http, second.base, CRM_TOKEN)
        item = await until_state(api, a["item"]["id"], "routed", timeout=3)
        assert item["routingObject"] is not None
        await until_state(api, a["item"]["id"], "elapsed", timeout=5)


async def test_events_for_every_step(gw: Gateway, api: Sntial) -> None:
    """ContactCreated (with the referenceId), ContactRouted, ContactElapsed on /v2/waitfield/contacts; and
    ContactRemoved for a removal."""
    from aiocometd_ng import Client, ConnectionType

    from tests.conftest import SUPERVISOR_TOKEN
    from tests.interop.cometd_auth import ExtAuth

    async with Client(gw.url, ConnectionType.WEBSOCKET, ssl=True, auth=ExtAuth(token=SUPERVISOR_TOKEN)) as sup:
        await sup.subscribe("/v2/waitfield/contacts")
        status, body = await api.call(
            "POST",
            "contact",
            {"externalId": "ev", "callingNumber": "12345", "calledNumber": "54321", "queue": "Support"},
            params={"referenceId": "wf-1"},
        )
        assert status == 200
        seen = []
        while len(seen) < 3:
            message = await asyncio.wait_for(sup.receive(), 8)
            assert message["channel"] == "/v2/waitfield/contacts"
            seen.append(message["data"])
        assert [m["type"] for m in seen] == ["ContactCreated", "ContactRouted", "ContactElapsed"]
        assert seen[0]["referenceId"] == "wf-1" and all(m["id"] == body["item"]["id"] for m in seen)
        assert seen[2]["item"]["state"] == "elapsed"
        _, other = await api.create(queue="Slow", externalId="gone")
        await api.call("DELETE", f"contact/{other['item']['id']}", params={"referenceId": "wf-2"})
        created = await asyncio.wait_for(sup.receive(), 5)
        removed = await asyncio.wait_for(sup.receive(), 5)
        assert (created["data"]["type"], removed["data"]["type"]) == ("ContactCreated", "ContactRemoved")
        assert removed["data"]["referenceId"] == "wf-2"
