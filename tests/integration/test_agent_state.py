"""Agent-state events on /v2/agents/** and the supervisor's views (/api/v2/supervisor/...).

Supervisors and services follow agents: online/offline (first and last session, across tabs), preview
sessions, records taken, completed, rejected, rescheduled and cancelled; agents may not subscribe there.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiocometd_ng import Client, ConnectionType
from aiocometd_ng.exceptions import ServerError

from tests.conftest import AGENT_PASSWORD, CRM_TOKEN, IDENTITIES, SUPERVISOR_TOKEN, Gateway, StartGateway
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.jtel_client import Jtel
from tests.integration.sntial_client import Sntial
from tests.interop.cometd_auth import BasicAuth, ExtAuth

SLOW = {"waitingFieldMultiplier": 10, "minimumWaitingTime": 60, "maximumWaitingTime": 120}
CONFIG = {**IDENTITIES, "waitfield": {"queues": [{"name": "Support", "skills": [], "settings": SLOW, "campaign": 2}]}}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SUPERVISOR = {"Authorization": "Basic " + base64.b64encode(b"supervisor1:sup-pass").decode()}
KEYS = {"type", "agent", "campaign", "campaignId", "recordHandle", "referenceId", "time"}


@pytest.fixture
async def gw(start_gateway: StartGateway) -> Gateway:
    return await start_gateway(extra=CONFIG)


@pytest.fixture
async def watcher(gw: Gateway) -> AsyncIterator[Client]:
    """A supervisor's CometD session subscribed to every agent's state."""
    async with Client(gw.url, ConnectionType.WEBSOCKET, ssl=True, auth=ExtAuth(token=SUPERVISOR_TOKEN)) as client:
        await client.subscribe("/v2/agents/**")
        yield client


async def next_state(client: Client, timeout: float = 5.0) -> dict[str, Any]:
    """The next agent-state event's data (checked for its channel and common keys)."""
    message: dict[str, Any] = await asyncio.wait_for(client.receive(), timeout)
    data: dict[str, Any] = message["data"]
    assert message["channel"] == f"/v2/agents/{data['agent']}", message
    assert set(data) >= KEYS and TIME.fullmatch(data["time"]), data
    return data


async def supervisor_get(gw: Gateway, view: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gw.base}/api/v2/supervisor/{view}", headers=SUPERVISOR if headers is None else headers) as resp,
    ):
        return resp.status, await resp.json()


async def test_agent_life_is_followed(gw: Gateway, watcher: Client) -> None:
    """Online with the first tab only, preview session, taken/completed/rejected/rescheduled/cancelled with the
    campaign, the handle and the referenceId, offline after the last tab; the views agree at each step."""
    async with aiohttp.ClientSession() as http, Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as agent:
        jtel = Jtel(http, gw.base, CRM_TOKEN)
        for n in range(3):
            assert (await jtel.import_contact(UserData=f"AS{n}", PhoneNumber1=f"+49891000{n}")).status == 200

        await agent.connect()
        online = await next_state(watcher)
        assert online == {**online, "type": "AgentOnline", "agent": "agent1", "sessions": 1, "campaign": None}
        async with Client(gw.url, ConnectionType.LONG_POLLING, ssl=True, auth=BasicAuth("agent1", AGENT_PASSWORD)):
            # A second tab: no event; the view counts both sessions.
            status, body = await supervisor_get(gw, "agents")
            assert status == 200 and body["statusCode"] == 0
            mine = next(a for a in body["agents"] if a["agent"] == "agent1")
            assert mine == {"agent": "agent1", "online": True, "sessions": 2, "preview": [], "held": []}
            assert next(a for a in body["agents"] if a["agent"] == "agent2")["online"] is False

        assert (await agent.campaign_op("StartPreviewSession", reference="s1")).status == 200
        started = await next_state(watcher)
        assert (started["type"], started["campaign"], started["campaignId"]) == (
            "PreviewSessionStarted",
            "Retention",
            1,
        )
        assert started["referenceId"] == "s1" and started["recordHandle"] is None

        assert (await agent.campaign_op("GetPreviewRecord", reference="g1")).status == 200
        taken = await next_state(watcher)
        assert (taken["type"], taken["campaign"], taken["referenceId"]) == ("RecordTaken", "Retention", "g1")
        handle = taken["recordHandle"]
        status, body = await supervisor_get(gw, "agents")
        mine = next(a for a in body["agents"] if a["agent"] == "agent1")
        assert mine["online"] and mine["sessions"] == 1 and mine["preview"] == ["Retention"]
        assert [(h["recordHandle"], h["campaign"]) for h in mine["held"]] == [(handle, "Retention")]
        campaigns = {c["name"]: c for c in (await supervisor_get(gw, "campaigns"))[1]["campaigns"]}
        assert campaigns["Retention"] == {"id": 1, "name": "Retention", "total": 3, "callable": 2, "held": 1, "done": 0}

        assert (await agent.record_op(handle, "CompleteRecord", reference="c1", callResult="Answer")).status == 200
        done = await next_state(watcher)
        assert (done["type"], done["recordHandle"], done["referenceId"]) == ("RecordCompleted", handle, "c1")
        # The operation keeps the agent's own notifications only, not the supervisors' event.
        kept = (await agent.get("/operations/c1")).body["operation"]["notifications"]
        assert {n["channel"] for n in kept} == {"/v2/me/outbound", "/me/internal"}

        for operation, fields, event in (
            ("RejectRecord", {}, "RecordRejected"),
            (
                "RescheduleRecord",
                {"callbackType": "Campaign", "timestamp": int(time.time()) + 3600},
                "RecordRescheduled",
            ),
        ):
            assert (await agent.campaign_op("GetPreviewRecord")).status == 200
            second = (await next_state(watcher))["recordHandle"]
            assert (await agent.record_op(second, operation, **fields)).status == 200
            assert (await next_state(watcher))["type"] == event

        assert (await agent.campaign_op("GetPreviewRecord")).status == 200
        held = (await next_state(watcher))["recordHandle"]
        assert (await jtel.call("PATCH", f"/contacts/contact/{held}/lock")).status == 200
        cancel = await next_state(watcher)
        assert (cancel["type"], cancel["recordHandle"], cancel["campaign"]) == ("RecordCancel", held, "Retention")
        campaigns = {c["name"]: c for c in (await supervisor_get(gw, "campaigns"))[1]["campaigns"]}
        assert campaigns["Retention"] == {"id": 1, "name": "Retention", "total": 3, "callable": 0, "held": 0, "done": 1}

        assert (await agent.campaign_op("EndPreviewSession")).status == 200
        assert (await next_state(watcher))["type"] == "PreviewSessionEnded"
    offline = await next_state(watcher)
    assert (offline["type"], offline["agent"], offline["sessions"]) == ("AgentOffline", "agent1", 0)
    mine = next(a for a in (await supervisor_get(gw, "agents"))[1]["agents"] if a["agent"] == "agent1")
    assert mine == {"agent": "agent1", "online": False, "sessions": 0, "preview": [], "held": []}


@pytest.mark.parametrize("pattern", ["/v2/agents/**", "/v2/agents/agent1", "/v2/agents/*"])
async def test_agents_may_not_watch_agents(gw: Gateway, pattern: str) -> None:
    """The security policy refuses agents on /v2/agents/**, even their own channel."""
    async with Client(gw.url, ConnectionType.WEBSOCKET, ssl=True, auth=BasicAuth("agent1", AGENT_PASSWORD)) as client:
        with pytest.raises(ServerError) as refused:
            await client.subscribe(pattern)
        assert refused.value.response["error"] == "403:denied_by_security_policy:subscribe_denied"


@pytest.mark.parametrize("auth", [BasicAuth("supervisor1", "sup-pass"), ExtAuth(token=CRM_TOKEN)], ids=["sup", "svc"])
async def test_supervisors_and_services_may_watch(gw: Gateway, auth: Any) -> None:
    async with Client(gw.url, ConnectionType.LONG_POLLING, ssl=True, auth=auth) as client:
        await client.subscribe("/v2/agents/**")
        await client.subscribe("/v2/agents/agent1")


async def test_supervisor_views_refuse_others(gw: Gateway) -> None:
    """No credentials: 401 statusCode 20 (no Basic challenge); an agent's: 403 statusCode 5."""
    agent = {"Authorization": "Basic " + base64.b64encode(f"agent1:{AGENT_PASSWORD}".encode()).decode()}
    for view in ("agents", "campaigns", "queues"):
        assert (await supervisor_get(gw, view, {}))[1]["statusCode"] == 20
        status, body = await supervisor_get(gw, view, agent)
        assert status == 403 and body["statusCode"] == 5
        assert (await supervisor_get(gw, view, {"Authorization": f"Bearer {CRM_TOKEN}"}))[0] == 200


async def test_queue_view(gw: Gateway) -> None:
    """Callers waiting, the longest wait and the estimate of the next caller per queue."""
    async with aiohttp.ClientSession() as http:
        sntial = Sntial(http, gw.base, CRM_TOKEN)
        status, body = await supervisor_get(gw, "queues")
        assert status == 200
        assert body["queues"] == [
            {"queue": "Support", "waiting": 0, "longestWaitSince": None, "longestWait": 0, "estimate": 60,
             "routedToday": 0, "elapsedToday": 0}
        ]  # fmt: skip
        for n in range(7):
            assert (await sntial.create(externalId=f"q{n}"))[0] == 200
        (queue,) = (await supervisor_get(gw, "queues"))[1]["queues"]
        assert queue["waiting"] == 7 and queue["estimate"] == 70 and TIME.fullmatch(queue["longestWaitSince"])
