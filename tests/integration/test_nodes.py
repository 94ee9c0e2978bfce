"""Three gateway processes on one PostgreSQL and one Redis (the servers the tests start): any node serves any
agent, and a node killed with SIGKILL loses nothing: reservations, personal callbacks, web sessions, presence
and preview sessions are the cluster's, not a node's."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiocometd_ng import Client, ConnectionType

from tests.chaos.harness import GatewayProcess
from tests.conftest import FAST_BAYEUX, free_port
from tests.integration.gws_client import Agent
from tests.integration.jtel_client import Jtel
from tests.integration.sntial_client import Sntial
from tests.interop.cometd_auth import ExtAuth
from tests.servers.postgres import PostgresServer

CRM = "nodes-service-token-0123456789ab"
SUPERVISOR = "nodes-supervisor-token-012345678"
AGENTS = [f"agent{i}" for i in range(8)]
TTL_S = 1.5
# Routed 2 s after creation, elapsed 3 s after routing (nobody ahead counts: the multiplier is 0).
QUICK = {"waitingFieldMultiplier": 0, "minimumWaitingTime": 2, "maximumWaitingTime": 3}


def password(agent: str) -> str:
    return f"{agent}-nodes-password"


@dataclass
class Cluster:
    """Three gateway processes on one database and one Redis."""

    nodes: list[GatewayProcess]

    def base(self, n: int) -> str:
        """Node n's base URL."""
        return f"http://127.0.0.1:{self.nodes[n].port}"


@pytest.fixture
async def cluster(tmp_path: Path, postgres_server: PostgresServer, redis_url: str) -> AsyncIterator[Cluster]:
    """Three nodes (`python -m gateway`), each with the same configuration but its port."""
    database = postgres_server.create_database()
    users: list[dict[str, Any]] = [
        {"name": "crm", "role": "service", "token": CRM, "clients": [1]},
        {"name": "supervisor1", "role": "supervisor", "token": SUPERVISOR, "clients": [1]},
    ]
    users += [{"name": a, "role": "agent", "password": password(a), "clients": [1]} for a in AGENTS]
    nodes = []
    for n in range(3):
        port = free_port()
        config = {
            "server": {"host": "127.0.0.1", "port": port},
            "bayeux": FAST_BAYEUX,
            "logging": {"level": "info", "format": "json"},
            "storage": {"url": database},
            "broker": {"url": redis_url},
            "correlation": {"backend": "redis"},
            "cluster": {"presence_ttl_s": TTL_S, "rescan_s": 0.5},
            "users": users,
            "campaigns": [
                {
                    "id": 1,
                    "name": "Retention",
                    "calling_list": "ret",
                    "application_id": 101,
                    "agent_group": "g1",
                    "client": 1,
                },
                {"id": 2, "name": "Callbacks", "calling_list": "cb", "application_id": 102, "agent_group": "g2"},
            ],
            "waitfield": {"queues": [{"name": "Support", "skills": [], "settings": QUICK, "campaign": 2}]},
        }
        path = tmp_path / f"node{n}.yaml"
        path.write_text(yaml.safe_dump(config))
        nodes.append(GatewayProcess(path, port, tmp_path / f"node{n}.log"))
    try:
        # One after the other: the first runs the migrations (the others would wait on its lock anyway).
        for node in nodes:
            await node.start()
        yield Cluster(nodes)
    finally:
        for node in nodes:
            await node.stop()


async def import_records(base: str, count: int) -> list[int]:
    """Import `count` callable records into Retention through one node's jtel API."""
    ids = []
    async with aiohttp.ClientSession() as http:
        jtel = Jtel(http, base, CRM)
        for i in range(count):
            reply = await jtel.import_contact(UserData=f"N-{i}", PhoneNumber1=f"+49301234{i:02d}")
            assert reply.status == 200, reply.body
            ids.append(reply.body["records"][0]["ID"])
    return ids


def agent(cluster: Cluster, name: str, node: int) -> Agent:
    return Agent(cluster.base(node), name, password(name))


async def kinds(agent_: Agent, seconds: float) -> list[str]:
    """Every /v2/me/outbound notificationType the agent receives within `seconds`."""
    seen: list[str] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            seen.append((await agent_.next(timeout=left))["data"]["notificationType"])
        except TimeoutError:
            break
    return seen


async def test_eight_agents_on_three_nodes_ask_for_five_records(cluster: Cluster) -> None:
    """8 agents, on 3 nodes (REST and CometD on the same node), ask for the next of 5 records at once: 5
    distinct records and 3 PreviewRecordEmpty."""
    await import_records(cluster.base(0), 5)
    agents = [agent(cluster, name, i % 3) for i, name in enumerate(AGENTS)]
    for a in agents:
        await a.__aenter__()
    try:
        await asyncio.gather(*(a.connect(ConnectionType.LONG_POLLING) for a in agents))
        for a in agents:
            assert (await a.campaign_op("StartPreviewSession")).status == 200
            await a.next("PreviewSessionStarted")
        replies = await asyncio.gather(*(a.campaign_op("GetPreviewRecord") for a in agents))
        assert [r.status for r in replies] == [200] * 8, [r.body for r in replies]

        async def outcome(a: Agent) -> tuple[str, int | None]:
            while True:
                data = (await a.next(timeout=10))["data"]
                if data["notificationType"] in ("PreviewRecord", "PreviewRecordEmpty"):
                    record = data.get("record") or {}
                    return data["notificationType"], record.get("recordHandle")

        got = await asyncio.gather(*(outcome(a) for a in agents))
        records = [handle for kind, handle in got if kind == "PreviewRecord"]
        assert len(records) == 5 and len(set(records)) == 5, got
        assert [kind for kind, _ in got].count("PreviewRecordEmpty") == 3, got
    finally:
        for a in agents:
            await a.__aexit__(None, None, None)


async def test_callback_armed_on_a_killed_node_reaches_the_agent_once(cluster: Cluster) -> None:
    """A personal callback rescheduled through node 0, which is then killed with SIGKILL before it falls due,
    reaches the agent connected on node 1 as ScheduledCall, once."""
    (contact,) = await import_records(cluster.base(0), 1)
    async with agent(cluster, "agent0", 0) as rest, agent(cluster, "agent0", 1) as desktop:
        await desktop.connect(ConnectionType.LONG_POLLING)
        assert (await rest.campaign_op("StartPreviewSession")).status == 200
        assert (await rest.campaign_op("GetPreviewRecord")).status == 200
        assert (await desktop.next("PreviewRecord", timeout=10))["data"]["record"]["recordHandle"] == contact
        due = int(time.time()) + 3
        reply = await rest.record_op(contact, "RescheduleRecord", callbackType="Personal", timestamp=due)
        assert reply.status == 200, reply.body
        await desktop.next("ScheduledRecordRescheduleAcknowledge", timeout=10)
        await cluster.nodes[0].kill9()
        seen = await kinds(desktop, due - time.time() + 6)
        assert seen.count("ScheduledCall") == 1, seen
    held = (await supervisor_agents(cluster.base(2)))["agent0"]["held"]
    assert [h["recordHandle"] for h in held] == [contact]


async def test_a_web_session_cookie_from_one_node_is_accepted_by_another(cluster: Cluster) -> None:
    """JSESSIONID and its CSRF token obtained with Basic on node 0 authenticate on nodes 1 and 2 alone (a
    client without a cookie jar sends them by hand, as a load balancer would pass them to any node)."""
    async with aiohttp.ClientSession() as http:
        basic = agent(cluster, "agent1", 0).auth()
        async with http.get(cluster.base(0) + "/api/v2/me", headers=basic) as resp:
            assert resp.status == 200
            session_id = resp.cookies["JSESSIONID"].value
            csrf = resp.headers["X-CSRF-TOKEN"]
        cookie = {"Cookie": f"JSESSIONID={session_id}"}
        async with http.get(cluster.base(1) + "/api/v2/me", headers=cookie) as resp:
            assert resp.status == 200
            assert (await resp.json())["user"]["userName"] == "agent1"
        body = {"operationName": "StartPreviewSession", "applicationId": 101, "devicePath": "/devices/none"}
        url = cluster.base(2) + "/api/v2/me/outbound-campaigns/Retention"
        async with http.post(url, json=body, headers={**cookie, "X-CSRF-TOKEN": csrf}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.post(url, json=body, headers={**cookie, "X-CSRF-TOKEN": "wrong"}) as resp:
            assert resp.status == 403, await resp.text()
        async with http.get(url.rsplit("/", 2)[0], headers={"Cookie": "JSESSIONID=unknown"}) as resp:
            assert resp.status == 401


async def supervisor_view(base: str, view: str) -> list[dict[str, Any]]:
    """GET /api/v2/supervisor/<view> on one node."""
    headers = {"Authorization": "Bearer " + SUPERVISOR}
    async with aiohttp.ClientSession() as http, http.get(f"{base}/api/v2/supervisor/{view}", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
    return list(body[view])


async def supervisor_agents(base: str) -> dict[str, Any]:
    """GET /api/v2/supervisor/agents on one node, by agent."""
    return {a["agent"]: a for a in await supervisor_view(base, "agents")}


async def states(client: Client, seconds: float) -> list[tuple[str, str, int]]:
    """(type, agent, sessions) of the agent-state events within `seconds`."""
    seen: list[tuple[str, str, int]] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            data = (await asyncio.wait_for(client.receive(), left))["data"]
        except TimeoutError:
            break
        seen.append((data["type"], data["agent"], data.get("sessions", -1)))
    return seen


async def test_presence_is_counted_over_every_node(cluster: Cluster) -> None:
    """agent2's sessions on nodes 0 and 1 count as 2 on node 2's view, with one AgentOnline; node 0 killed:
    after the TTL its session no longer counts, and no AgentOffline (node 1's is left); that one closed: one
    AgentOffline."""
    url = cluster.base(2) + "/api/v2/notifications"
    async with Client(url, ConnectionType.LONG_POLLING, auth=ExtAuth(token=SUPERVISOR)) as watcher:
        await watcher.subscribe("/v2/agents/**")
        async with agent(cluster, "agent2", 0) as on0, agent(cluster, "agent2", 1) as on1:
            await on0.connect(ConnectionType.LONG_POLLING)
            await on1.connect(ConnectionType.LONG_POLLING)
            assert [s for s in await states(watcher, 1.5) if s[1] == "agent2"] == [("AgentOnline", "agent2", 1)]
            view = await supervisor_agents(cluster.base(2))
            assert view["agent2"]["online"] and view["agent2"]["sessions"] == 2
            await cluster.nodes[0].kill9()
            assert await states(watcher, TTL_S * 2 + 1) == []
            assert (await supervisor_agents(cluster.base(2)))["agent2"]["sessions"] == 1
            assert on1.cometd is not None
            await on1.cometd.close()
            on1.cometd = None
            offline = [s for s in await states(watcher, 2) if s[1] == "agent2"]
            assert offline == [("AgentOffline", "agent2", 0)]
            assert not (await supervisor_agents(cluster.base(1)))["agent2"]["online"]
            assert on0.cometd is not None
            with contextlib.suppress(Exception):  # its node is gone: the disconnect cannot be answered
                await asyncio.wait_for(on0.cometd.close(), 5)
            on0.cometd = None


async def test_a_preview_session_outlives_the_node_that_started_it(cluster: Cluster) -> None:
    """StartPreviewSession on node 0, node 0 killed: GetPreviewRecord on node 1 gets the record (the session
    is known there), and node 2's supervisor view lists it."""
    (contact,) = await import_records(cluster.base(0), 1)
    async with agent(cluster, "agent3", 0) as on0:
        assert (await on0.campaign_op("StartPreviewSession")).status == 200
    await cluster.nodes[0].kill9()
    assert (await supervisor_agents(cluster.base(2)))["agent3"]["preview"] == ["Retention"]
    async with agent(cluster, "agent3", 1) as on1:
        await on1.connect(ConnectionType.LONG_POLLING)
        reply = await on1.campaign_op("GetPreviewRecord")
        assert reply.status == 200, reply.body
        assert (await on1.next("PreviewRecord", timeout=10))["data"]["record"]["recordHandle"] == contact


async def test_waiting_contacts_of_a_killed_node_are_routed_and_elapsed_once(cluster: Cluster) -> None:
    """Two callers created through node 0, which is killed before they are due: the other nodes route each
    once (one callback record each); the first is offered to the agent waiting on node 1 and connected, the
    second, with nobody free, elapses once."""
    url = cluster.base(2) + "/api/v2/notifications"
    async with (
        Client(url, ConnectionType.LONG_POLLING, auth=ExtAuth(token=SUPERVISOR)) as watcher,
        agent(cluster, "agent4", 1) as desktop,
        aiohttp.ClientSession() as http,
    ):
        await watcher.subscribe("/v2/waitfield/contacts")
        await desktop.connect(ConnectionType.LONG_POLLING)
        assert (await desktop.campaign_op("StartPreviewSession", campaign="Callbacks", application=102)).status == 200
        api = Sntial(http, cluster.base(0), CRM)
        ids = []
        for n in range(2):
            status, body = await api.create(externalId=f"caller{n}")
            assert status == 200, body
            ids.append(body["item"]["id"])
            await asyncio.sleep(0.3)  # the first is ahead: it is routed (and offered) first
        await cluster.nodes[0].kill9()
        seen: list[tuple[str, str]] = []
        end = time.monotonic() + 14
        while time.monotonic() < end and len(seen) < 8:
            try:
                data = (await asyncio.wait_for(watcher.receive(), end - time.monotonic()))["data"]
            except TimeoutError:
                break
            seen.append((data["type"], data["id"]))
        await asyncio.sleep(1.5)  # nothing more comes (no step twice)
        first, second = ids
        expected = [("ContactCreated", first), ("ContactCreated", second), ("ContactRouted", first),
                    ("ContactRouted", second), ("ContactConnected", first), ("ContactElapsed", second)]  # fmt: skip
        assert sorted(seen) == sorted(expected), seen
        offered = await kinds(desktop, 0.5)
        assert offered.count("PreviewRecord") <= 1
        status, item = await Sntial(http, cluster.base(1), CRM).call("GET", f"contact/{second}")
        assert status == 200 and item["item"]["state"] == "elapsed", item
    campaigns = {c["name"]: c for c in await supervisor_view(cluster.base(2), "campaigns")}
    assert campaigns["Callbacks"]["total"] == 2  # one callback record per caller, whichever node routed it
