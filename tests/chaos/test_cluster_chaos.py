"""Three nodes behind nginx: nothing lost, nothing twice, through kill -9 of a node, CLIENT KILL TYPE pubsub
and a Redis restart.

60 agents (30 aiocometd-ng, 30 CometD JavaScript; half WebSocket, half long-polling, all resuming from their
replayIds) spread over three gateway processes by docs/nginx.conf; a backend posts GWS operations and jtel
locks at about 100/s through nginx, each agent's REST calls going to the node its credentials hash to (for
most agents not the node holding its session). Every operation answered 200 must reach its agent, and only
that agent, exactly once and in order. Counts per scenario: artifacts/chaos/cluster-<scenario>.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiocometd_ng import ConnectionType

from tests.chaos.cluster import Cluster, ClusterWorkload, JsAgent, node_of, start_cluster
from tests.chaos.harness import TOKEN, Agent, tally
from tests.conftest import ROOT, wait_for
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer, running

AGENTS = 60
SECONDS = 15.0
PAUSE = 0.6  # per agent between operations: about 100 operations/s for 60 agents
CONTACTS = 1200

pytestmark = pytest.mark.timeout(150)


# Each scenario with the log in PostgreSQL (replay.backend sql) and in Redis Streams (redis; its Redis keeps an
# append-only file, as Redis must for a log in it: without one a restart would empty every stream).
LOGS = pytest.mark.parametrize("log", ["sql", "redis"])


@pytest.fixture
def redis(request: pytest.FixtureRequest, log: str) -> RedisServer:
    """The Redis of the scenario: the session's one (no persistence) for the SQL log, one with AOF for Redis's."""
    if log == "redis":
        server: RedisServer = request.getfixturevalue("persistent_redis")
        return server
    request.getfixturevalue("redis_url")  # the session's server, flushed
    return running()


@pytest.fixture
async def cluster(
    request: pytest.FixtureRequest, postgres_server: PostgresServer, redis: RedisServer, log: str
) -> AsyncIterator[Cluster]:
    # Configs, node logs and nginx's logs stay in artifacts/chaos/<test>/ for a look after a failure.
    workdir = ROOT / "artifacts" / "chaos" / request.node.name.replace("[", "-").rstrip("]")
    storage = postgres_server.create_database()
    started = await start_cluster(workdir, AGENTS, storage=storage, redis=redis.url, log=log)
    try:
        yield started
    finally:
        await started.stop()


def make_agents() -> list[Agent]:
    """agent00..59: aiocometd-ng and CometD JS alternating in pairs, WebSocket and long-polling alternating."""
    transports = (ConnectionType.WEBSOCKET, ConnectionType.LONG_POLLING)
    return [(Agent if i % 4 < 2 else JsAgent)(f"agent{i:02d}", f"pw-{i:02d}", transports[i % 2]) for i in range(AGENTS)]


async def import_contacts(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    """The records the agents work, imported through nginx."""
    url = cluster.base + "/rest/v1.0/1/dialler/contacts/import"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    semaphore = asyncio.Semaphore(20)

    async def one(n: int) -> None:
        body = {"DiallerCampaignsID": 1, "Name": f"C{n}", "PhoneNumber1": f"+49{n:08d}"}
        async with semaphore, http.post(url, json=body, headers=headers) as resp:
            assert resp.status == 200

    await asyncio.gather(*(one(n) for n in range(CONTACTS)))


def rest_nodes(cluster: Cluster) -> dict[str, Counter[str]]:
    """Per agent, how many of its REST calls each node served (nginx's log: Basic user, last upstream)."""
    names = {f"127.0.0.1:{node.port}": f"gw{n}" for n, node in enumerate(cluster.nodes, start=1)}
    out: dict[str, Counter[str]] = {}
    for line in cluster.nginx.access_log.read_text().splitlines():
        found = re.match(r"\S+ (agent\d+) .*\"(?:POST|PATCH) /api/v2/me\S* [^\"]*\" \d{3} (.*) [\d.]+$", line)
        if found:
            last = found.group(2).split(",")[-1].strip()
            out.setdefault(found.group(1), Counter())[names.get(last, last)] += 1
    return out


async def gap_fills(cluster: Cluster, http: aiohttp.ClientSession) -> dict[str, dict[str, float]]:
    """Per running node, the logged messages its gap fills delivered (gateway_broker_gap_filled_total) and, with
    the log in Redis Streams, the outbox entries its sweeps appended and its relays' failures."""
    out = {}
    names = {
        "gap_filled": "gateway_broker_gap_filled_total",
        "swept": "gateway_stream_relay_swept_total",
        "relay_failures": "gateway_stream_relay_failures_total",
    }
    for n, node in enumerate(cluster.nodes, start=1):
        if node.proc is None or node.proc.returncode is not None:
            continue
        async with http.get(f"http://127.0.0.1:{node.port}/metrics") as resp:
            text = await resp.text()
        figures = {}
        for key, metric in names.items():
            found = re.search(rf"^{metric} (\S+)$", text, re.M)
            if found:
                figures[key] = float(found.group(1))
        out[f"gw{n}"] = figures
    return out


async def run(cluster: Cluster, name: str, chaos: Callable[[], Awaitable[dict[str, Any]]], log: str) -> dict[str, Any]:
    """Connect the agents through nginx, run the workload for SECONDS beside `chaos`, settle, count, report."""
    agents = make_agents()
    async with aiohttp.ClientSession() as http:
        await import_contacts(cluster, http)
        # aiocometd-ng keeps cookies at a host name only: through `localhost` it keeps nginx's GW_NODE.
        bayeux = cluster.base.replace("127.0.0.1", "localhost") + "/api/v2/notifications"
        await asyncio.gather(*(agent.listen(bayeux) for agent in agents))
        homes = {agent.name: node_of(agent) for agent in agents if not isinstance(agent, JsAgent)}
        workload = ClusterWorkload(cluster.base, agents, http, seed=len(name))
        try:
            _, extra = await asyncio.gather(workload.run(SECONDS, PAUSE), chaos())
            with contextlib.suppress(TimeoutError):  # the figures below say what is missing
                await wait_for(lambda: tally(agents)["lost"] == 0, timeout=30)
            await asyncio.sleep(1.0)  # a late duplicate would show now
            counts = tally(agents)
            fills = await gap_fills(cluster, http)
        finally:
            await asyncio.gather(*(agent.close() for agent in agents))
    served = rest_nodes(cluster)
    ops = {a.name: sum(op.outcome == "ok" for op in a.ops) for a in agents}
    crossed = sum(ops[n] for n, home in homes.items() if home and served.get(n) and home not in served[n])
    figures = {
        **{k: v for k, v in counts.items() if k != "problems"},
        "agents": AGENTS,
        "agents_per_node_aiocometd": dict(Counter(h or "?" for h in homes.values())),
        "ok_posted_to_another_node_aiocometd": crossed,
        "fills": fills,
        **extra,
    }
    out = ROOT / "artifacts" / "chaos"
    out.mkdir(parents=True, exist_ok=True)
    figures["log"] = log
    (out / f"cluster-{name}-{log}.json").write_text(json.dumps({**figures, "problems": counts["problems"]}, indent=2))
    print(f"\ncluster chaos {name}, log in {log}: {figures}")
    return {**figures, "problems": counts["problems"]}


def verify(counts: dict[str, Any]) -> None:
    """The workload really ran across nodes, and nothing was lost, doubled or sent to the wrong agent."""
    assert int(counts["ok"]) > 600  # about 100/s for 15 s, less the moments of chaos
    assert int(counts["ok_posted_to_another_node_aiocometd"]) > 0
    assert counts["lost"] == counts["duplicated"] == counts["spurious"] == 0, counts["problems"][:10]
    assert counts["problems"] == [], counts["problems"][:10]


@LOGS
async def test_kill9_one_node(cluster: Cluster, log: str) -> None:
    """gw3 is killed with SIGKILL mid-flow (and not restarted): its agents reconnect through nginx to gw1 and
    gw2 (402::session_unknown there, a new handshake) and resume from their replayIds."""

    async def chaos() -> dict[str, Any]:
        await asyncio.sleep(5.0)
        await cluster.nodes[2].kill9()
        return {"killed": "gw3"}

    counts = await run(cluster, "kill9", chaos, log)
    verify(counts)
    assert int(counts["replayed"]) > 0  # the killed node's agents got what they missed from the log


@LOGS
async def test_client_kill_pubsub(cluster: Cluster, redis: RedisServer, log: str) -> None:
    """Every node's pub/sub connection is killed twice mid-flow: each reconnects and fills the gap."""

    async def chaos() -> dict[str, Any]:
        kills = 0
        for moment in (4.0, 6.0):
            await asyncio.sleep(moment if kills == 0 else moment - 4.0)
            with redis.client() as admin:
                kills += admin.client_kill_filter(_type="pubsub")
        return {"pubsub_connections_killed": kills}

    counts = await run(cluster, "pubsub-kill", chaos, log)
    assert counts["pubsub_connections_killed"] == 6
    verify(counts)


@LOGS
async def test_redis_restart(cluster: Cluster, redis: RedisServer, log: str) -> None:
    """Redis is stopped and started again mid-flow: every node reconnects both connections and fills the gap."""

    async def chaos() -> dict[str, Any]:
        await asyncio.sleep(5.0)
        await asyncio.to_thread(redis.restart)
        return {"redis_restarts": 1}

    counts = await run(cluster, "redis-restart", chaos, log)
    verify(counts)


@pytest.mark.parametrize("log", ["redis"])
async def test_redis_kill9(cluster: Cluster, redis: RedisServer, log: str) -> None:
    """The log's Redis is killed with SIGKILL mid-flow and started again: its append-only file (synced every
    second) may lack the last writes; the outbox still holds them and the sweep appends them again."""

    async def chaos() -> dict[str, Any]:
        await asyncio.sleep(5.0)
        await asyncio.to_thread(redis.kill9)
        await asyncio.to_thread(redis.start)
        return {"redis_kill9": 1}

    counts = await run(cluster, "redis-kill9", chaos, log)
    verify(counts)
