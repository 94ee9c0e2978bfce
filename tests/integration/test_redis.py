"""Several nodes on one Redis (our own redis-server, tests/servers/redis.py): the broker through connection
losses, an event crossing from one gateway to a client of another, and the shared referenceId registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiocometd_ng import Client, ConnectionType
from pydantic import ValidationError

from gateway.broker.base import Envelope, Kind
from gateway.broker.redis import RedisBroker, decode, encode
from gateway.events.correlation import Started
from gateway.events.redis_correlation import RedisCorrelationRegistry
from gateway.events.redis_presence import RedisPresence
from gateway.settings import Settings
from tests.conftest import (
    AGENT_PASSWORD,
    CRM_TOKEN,
    IDENTITIES,
    Gateway,
    StartGateway,
    free_port,
    run_cli,
    wait_for,
    write_config,
)
from tests.integration.jtel_client import Jtel
from tests.integration.raw import RawHttp
from tests.integration.test_metrics import promtool_check, scrape, scrape_text
from tests.interop.cometd_auth import ExtAuth
from tests.seams.clock import FakeClock
from tests.servers.redis import RedisServer


class Received:
    """A sink that records what it is handed."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.fills: list[str] = []  # origins of the FILL envelopes: a gap to read back from the log

    def __call__(self, envelope: Envelope) -> int:
        if envelope.kind is Kind.FILL:
            self.fills.append(envelope.origin)
            return 0
        self.envelopes.append(envelope)
        return 1

    def numbers(self) -> list[int]:
        return [e.message["data"]["n"] for e in self.envelopes]


@pytest.fixture
async def brokers(redis_url: str) -> AsyncIterator[Callable[..., RedisBroker]]:
    """Make Redis brokers (nodes) on the test's Redis; all closed at the end."""
    made: list[RedisBroker] = []

    def make(**kwargs: Any) -> RedisBroker:
        broker = RedisBroker(url=redis_url, **kwargs)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


def note(broker: RedisBroker, n: int) -> Envelope:
    return Envelope(Kind.BROADCAST, {"channel": "/chat/a", "data": {"n": n}}, broker.node)


async def flowing(a: RedisBroker, got_b: Received, n: int) -> None:
    """Publish on `a` until one arrives at b (the first ones after a reconnect may fall into the gap)."""
    for attempt in range(100):
        a.publish(note(a, n * 1000 + attempt))
        try:
            await wait_for(lambda: any(x // 1000 == n for x in got_b.numbers()), timeout=0.1)
            return
        except TimeoutError:
            continue
    raise AssertionError("envelopes do not flow again")


def test_wire_format_round_trips_every_field() -> None:
    """An envelope survives encode/decode whole: kind, origin, audience and the log fields."""
    sent = Envelope(
        Kind.USER, {"channel": "/v2/me/x", "data": {"k": [1, "é"]}}, "n1", user="agent1", log="user:agent1", replay_id=9
    )
    assert decode(encode(sent)) == sent
    session = Envelope(Kind.SESSION, {"channel": "/a"}, "n2", client_id="c1", created="2025-01-01T00:00:00.000Z")
    assert decode(encode(session)) == session


async def test_two_nodes_each_envelope_once_in_order(brokers: Callable[..., RedisBroker]) -> None:
    """Three nodes: what A publishes reaches B and C once each, in order, and A only locally."""
    a, b, c = brokers(), brokers(), brokers()
    got = [Received(), Received(), Received()]
    for broker, sink in zip((a, b, c), got, strict=True):
        await broker.start(sink)
    for n in range(200):
        a.publish(note(a, n))
    await wait_for(lambda: len(got[1].envelopes) == 200 and len(got[2].envelopes) == 200)
    await asyncio.sleep(0.2)
    assert got[0].numbers() == got[1].numbers() == got[2].numbers() == list(range(200))
    assert {e.origin for e in got[1].envelopes} == {a.node}
    assert a.sent == 200 and b.received == 200 and a.received == 0


async def test_close_sends_what_is_queued_first(brokers: Callable[..., RedisBroker]) -> None:
    """A node stopping gracefully sends the envelopes it queued before closing its connection."""
    a, b = brokers(), brokers()
    got_b = Received()
    await a.start(Received())
    await b.start(got_b)
    for n in range(100):
        a.publish(note(a, n))
    await a.close()
    assert not a.healthy()
    await wait_for(lambda: got_b.numbers() == list(range(100)))


async def test_reconnects_after_client_kill_pubsub(
    brokers: Callable[..., RedisBroker], redis_server: RedisServer
) -> None:
    """CLIENT KILL TYPE pubsub: both subscribers drop; healthy() goes False, then True again after the
    backoff, and envelopes flow between the nodes again."""
    a, b = brokers(reconnect_min_s=0.5), brokers(reconnect_min_s=0.5)
    got_a, got_b = Received(), Received()
    await a.start(got_a)
    await b.start(got_b)
    await flowing(a, got_b, 1)
    with redis_server.client() as admin:
        assert admin.client_kill_filter(_type="pubsub") == 2
    await wait_for(lambda: not a.healthy() and not b.healthy(), timeout=2)
    await wait_for(lambda: a.healthy() and b.healthy(), timeout=5)
    # Each subscription back (confirmed by Redis) asks its own node to fill the gap; the publishers never
    # lost their connections, so no node asks the others.
    assert got_a.fills == [a.node] and got_b.fills == [b.node]
    await flowing(a, got_b, 2)
    await flowing(b, got_a, 3)


async def test_reconnects_after_redis_restarts(brokers: Callable[..., RedisBroker], redis_server: RedisServer) -> None:
    """Redis stops: healthy() False (local delivery goes on); it starts again: True, envelopes flow again."""
    a, b = brokers(reconnect_max_s=0.2), brokers(reconnect_max_s=0.2)
    got_a, got_b = Received(), Received()
    await a.start(got_a)
    await b.start(got_b)
    await flowing(a, got_b, 1)
    redis_server.stop()
    await wait_for(lambda: not a.healthy() and not b.healthy(), timeout=5)
    a.publish(note(a, 5000))  # during the gap: delivered here, not carried to b
    assert got_a.numbers()[-1] == 5000
    await asyncio.sleep(0.5)
    redis_server.start()
    await wait_for(lambda: a.healthy() and b.healthy(), timeout=10)
    await flowing(a, got_b, 2)
    await flowing(b, got_a, 3)
    assert 5000 not in got_b.numbers()  # not carried: the log (gap fill) has what b's sessions need
    assert a.node in got_a.fills and b.node in got_b.fills  # each subscription back asked for a fill


async def test_start_without_redis_says_so(redis_server: RedisServer, tmp_path: Path) -> None:
    """A broker whose Redis cannot be reached at start raises, naming the URL without its password; the
    gateway command then exits 1 with that message (no half-started node)."""
    dead = f"redis://:secret@127.0.0.1:{free_port()}/0"
    broker = RedisBroker(url=dead)
    with pytest.raises(ConnectionError, match="cannot reach Redis"):
        await broker.start(Received())
    await broker.close()
    config = write_config(tmp_path / "gw.yaml", free_port(), extra={"broker": {"url": dead}})
    done = await asyncio.to_thread(run_cli, "--config", str(config))
    assert done.returncode == 1
    assert "cannot start: broker.url redis://:***@127.0.0.1" in done.stderr and "secret" not in done.stderr


async def test_registry_and_presence_check_their_redis_at_start(redis_url: str) -> None:
    """The registry's open and the presence's start raise ConnectionError naming the URL (password masked) when
    their Redis does not answer, so a node does not start without them; and start on a Redis that answers."""
    dead = f"redis://:secret@127.0.0.1:{free_port()}/0"
    registry = RedisCorrelationRegistry(url=dead, max_entries=10, ttl_s=60)
    presence = RedisPresence(url=dead)
    with pytest.raises(ConnectionError, match=r"correlation registry at redis://:\*\*\*@127\.0\.0\.1:\d+/0: cannot"):
        await registry.open()
    with pytest.raises(ConnectionError, match=r"presence at redis://:\*\*\*@127\.0\.0\.1:\d+/0: cannot reach"):
        await presence.start(lambda agents, online: None)
    assert not await registry.ping() and not await presence.ping()
    await registry.close()
    await presence.close()
    live = RedisCorrelationRegistry(url=redis_url, max_entries=10, ttl_s=60)
    await live.open()
    assert await live.ping()
    await live.close()


def test_settings_refuse_a_registry_without_redis_and_a_url_that_is_not_redis() -> None:
    """correlation.backend redis needs a Redis URL (its own or broker.url); broker.url must be a Redis one."""
    with pytest.raises(ValidationError, match=r"correlation\.backend redis needs"):
        Settings.model_validate({"correlation": {"backend": "redis"}})
    with pytest.raises(ValidationError, match=r"broker\.url: a redis://"):
        Settings.model_validate({"broker": {"url": "http://127.0.0.1:6379"}})
    ok = Settings.model_validate({"broker": {"url": "redis://h/0"}, "correlation": {"backend": "redis"}})
    assert ok.correlation.url is None and ok.broker.url == "redis://h/0"


def test_check_config_names_the_engines(tmp_path: Path) -> None:
    """check-config says which broker, registry, presence, web sessions and log a node uses, without the Redis
    password, and how long it waits for them at start."""
    url = "redis://gw:secret@redis.internal:6379/0"
    config = write_config(
        tmp_path / "gw.yaml", 8080, extra={"broker": {"url": url}, "correlation": {"backend": "redis"}}
    )
    done = run_cli("check-config", str(config))
    assert done.returncode == 0, done.stderr
    masked = "redis (redis://gw:***@redis.internal:6379/0)"
    assert f"broker={masked}; correlation={masked}; presence={masked}; web_sessions={masked}" in done.stdout
    assert "secret" not in done.stdout and "waits" not in done.stdout
    plain = run_cli("check-config", str(write_config(tmp_path / "one.yaml", 8080)))
    assert "broker=memory; correlation=memory; presence=memory; web_sessions=memory" in plain.stdout
    assert "; log=sqlite (sqlite+pysqlite:///" in plain.stdout
    streams = write_config(
        tmp_path / "streams.yaml", 8080, extra={"broker": {"url": url}, "replay": {"backend": "redis"}}
    )
    assert (
        "; log=redis streams (redis://gw:***@redis.internal:6379/0), outbox in sqlite ("
        in run_cli("check-config", str(streams)).stdout
    )
    waiting = write_config(tmp_path / "wait.yaml", 8080, extra={"cluster": {"wait_for_engines_s": 30}})
    assert "; waits up to 30 s for them at start" in run_cli("check-config", str(waiting)).stdout


def on_redis(redis_url: str, **sections: Any) -> dict[str, Any]:
    return {**IDENTITIES, "broker": {"url": redis_url, "reconnect_max_s": 0.2}, **sections}


async def test_event_published_on_node_a_reaches_a_client_of_node_b(
    start_gateway: StartGateway, redis_url: str
) -> None:
    """Two gateways on one Redis (each its own SQLite file): a publish through A's BayeuxServer reaches a
    long-polling client of B once; A's /readyz and /metrics show the broker connected."""
    a = await start_gateway(extra=on_redis(redis_url))
    b = await start_gateway(extra=on_redis(redis_url))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = RawHttp(b.url, http)
        await client.handshake(ext={"authentication": {"user": "supervisor1", "password": "sup-pass"}})
        await client.connect()
        reply = await client.send({"channel": "/meta/subscribe", "subscription": "/chat/**"})
        assert reply[0]["successful"] is True
        held = asyncio.create_task(client.connect())
        await asyncio.sleep(0.1)
        await a.server.publish("/chat/room", {"text": "from node A"})
        messages = await asyncio.wait_for(held, 5)
        assert [m["data"] for m in messages if m["channel"] == "/chat/room"] == [{"text": "from node A"}]
        again = await client.connect()  # nothing more: delivered once
        assert not [m for m in again if m["channel"] == "/chat/room"]
        async with http.get(a.base + "/readyz") as resp:
            assert resp.status == 200 and (await resp.json())["broker"] is True
    assert (await scrape(a))[("gateway_broker_connected", ())] == 1


async def test_readyz_and_metrics_show_a_redis_gap(
    start_gateway: StartGateway, redis_url: str, redis_server: RedisServer
) -> None:
    """Redis gone: /readyz 503 naming the broker, the registry, presence and web sessions,
    gateway_broker_connected 0 (promtool-clean); Redis back: 200 and 1."""
    gw = await start_gateway(extra=on_redis(redis_url, correlation={"backend": "redis"}))
    assert gw.app is not None
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(gw.base + "/readyz") as resp:
            assert resp.status == 200
            assert await resp.json() == {
                "status": "ready",
                "store": True,
                "broker": True,
                "correlation": True,
                "presence": True,
                "web_sessions": True,
            }
        redis_server.stop()
        body: dict[str, Any] = {}
        for _ in range(100):
            async with http.get(gw.base + "/readyz") as resp:
                body = await resp.json()
                if resp.status == 503 and body["broker"] is False:
                    break
            await asyncio.sleep(0.05)
        # Every Redis client is probed on its own: each one's PING fails within its timeout.
        assert body == {
            "status": "not ready",
            "store": True,
            "broker": False,
            "correlation": False,
            "presence": False,
            "web_sessions": False,
        }
        refused = await Jtel(http, gw.base, CRM_TOKEN).import_contact(reference="during-gap")
        assert refused.status == 500  # a referenceId cannot be checked: refused, not applied unchecked
        text = await scrape_text(gw)
        assert "gateway_broker_connected 0.0" in text
        code, out = await promtool_check(text)
        assert code == 0 and not out.strip(), out
        redis_server.start()
        for _ in range(200):
            async with http.get(gw.base + "/readyz") as resp:
                body = await resp.json()
                if resp.status == 200:
                    break
            await asyncio.sleep(0.05)
        assert resp.status == 200 and all(body.values()) and len(body) == 6, body
    assert (await scrape(gw))[("gateway_broker_connected", ())] == 1


async def test_registry_two_nodes_claim_once_and_share_the_answer(redis_url: str) -> None:
    """Two registries (two nodes) on one Redis: of simultaneous begins one is NEW; the other node's retry
    waits and gets the first answer; a different request under the referenceId is a conflict there."""
    nodes = [RedisCorrelationRegistry(url=redis_url, max_entries=100, ttl_s=60) for _ in range(2)]
    try:
        results = await asyncio.gather(*(nodes[i % 2].begin("crm", "r1", "import", "fp") for i in range(20)))
        assert [s for s, _ in results].count(Started.NEW) == 1
        first = next(e for s, e in results if s is Started.NEW)
        waiting = asyncio.create_task(nodes[1].wait(first, 5.0))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        done = await nodes[0].complete(first, 200, {"ID": 1})
        assert await asyncio.wait_for(waiting, 1) == done
        assert (await nodes[1].begin("crm", "r1", "import", "other"))[0] is Started.CONFLICT
        assert await nodes[1].count() == 1
    finally:
        for node in nodes:
            await node.close()


async def test_registry_byte_total_follows_every_change(redis_url: str) -> None:
    """The shared byte total is the sum of the kept entries' sizes after claims, completions, abandons,
    expiry and drops (so max_bytes bounds what is really kept)."""
    clock = FakeClock()
    registry = RedisCorrelationRegistry(url=redis_url, max_entries=3, ttl_s=60, clock=clock)
    try:
        entries = {}
        for n in range(3):
            _, entries[n] = await registry.begin("crm", f"r{n}", "import", "fp")
            clock.advance(1)
        entries[0] = await registry.complete(entries[0], 200, {"body": "x" * 500})
        await registry.abandon(entries[1])
        assert await registry.bytes_used() == entries[0].size() + entries[2].size()
        clock.advance(58.5)  # r0 (created at 1000) expires, r2 (1002) stays
        assert await registry.count() == 1
        assert await registry.bytes_used() == entries[2].size()
        for n in range(3, 7):  # past max_entries: the oldest dropped
            _, entries[n] = await registry.begin("crm", f"r{n}", "import", "fp")
        assert await registry.count() == 3
        assert await registry.bytes_used() == sum(entries[n].size() for n in (4, 5, 6))
    finally:
        await registry.close()


async def test_registry_claim_of_a_dead_node_lapses(redis_url: str) -> None:
    """A node that claimed a referenceId and died never completes it: after the pending lease the referenceId
    is free (a retry on another node runs it) instead of 409 for ttl_s; a completed entry keeps ttl_s."""
    dead = RedisCorrelationRegistry(url=redis_url, max_entries=100, ttl_s=60, pending_lease_s=0.2)
    alive = RedisCorrelationRegistry(url=redis_url, max_entries=100, ttl_s=60, pending_lease_s=0.2)
    try:
        started, claimed = await dead.begin("crm", "r1", "import", "fp")
        assert started is Started.NEW
        assert await alive.wait(claimed, 1.0) is None  # released when the lease lapses, well before 1 s
        started, mine = await alive.begin("crm", "r1", "import", "fp")
        assert started is Started.NEW
        done = await alive.complete(mine, 200, {"ID": 2})
        await asyncio.sleep(0.3)
        assert await dead.begin("crm", "r1", "import", "fp") == (Started.DUPLICATE, done)
    finally:
        await dead.close()
        await alive.close()


async def test_same_reference_posted_to_two_gateways_is_applied_once(
    start_gateway: StartGateway, redis_url: str
) -> None:
    """The same import with the same referenceId posted to two gateways at the same moment: one node
    imports it, both answer with that contact; only one of the two (separate) stores holds a contact."""
    extra = on_redis(redis_url, correlation={"backend": "redis"})
    a = await start_gateway(extra=extra)
    b = await start_gateway(extra=extra)

    async def contacts(gw: Gateway, http: aiohttp.ClientSession) -> int:
        reply = await Jtel(http, gw.base, CRM_TOKEN).call("GET", "/contacts")
        assert reply.status == 200
        return len(reply.body["records"])

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        ja, jb = Jtel(http, a.base, CRM_TOKEN), Jtel(http, b.base, CRM_TOKEN)
        for n in range(5):
            ref = f"ref-{n}"
            first, second = await asyncio.gather(
                ja.import_contact(reference=ref, UserData=f"U{n}"), jb.import_contact(reference=ref, UserData=f"U{n}")
            )
            assert first.status == second.status == 200
            assert first.body == second.body
            retry = await (ja if n % 2 else jb).import_contact(reference=ref, UserData=f"U{n}")
            assert retry.body == first.body
        assert await contacts(a, http) + await contacts(b, http) == 5
        conflict = await jb.import_contact(reference="ref-0", UserData="changed")
        assert conflict.status == 409


@pytest.mark.parametrize("transport", [ConnectionType.WEBSOCKET, ConnectionType.LONG_POLLING], ids=lambda t: t.value)
async def test_aiocometd_clients_on_two_nodes(
    start_gateway: StartGateway, redis_url: str, transport: ConnectionType
) -> None:
    """aiocometd-ng clients: agent1 on node B gets its personal notification sent on node A (and agent2 on A
    does not), and a chat message a client publishes on A; each once."""
    a = await start_gateway(extra=on_redis(redis_url))
    b = await start_gateway(extra=on_redis(redis_url))
    agent1 = Client(b.url, transport, ssl=True, auth=ExtAuth(user="agent1", password=AGENT_PASSWORD))
    agent2 = Client(a.url, transport, ssl=True, auth=ExtAuth(user="agent2", password="agent2-test-password"))
    async with agent1, agent2:
        for client in (agent1, agent2):
            await client.subscribe("/v2/me/outbound")
        await agent1.subscribe("/chat/**")
        await wait_for(lambda: any(s.user == "agent1" for s in b.hub.sessions.values()))
        await a.server.deliver_to_user("agent1", "/v2/me/outbound", {"notificationType": "Ping", "n": 1})
        await agent2.publish("/chat/room", {"from": "agent2 on A"})
        got = [await asyncio.wait_for(agent1.receive(), 5) for _ in range(2)]
        assert sorted(got, key=lambda m: str(m["channel"])) == [
            {"channel": "/chat/room", "data": {"from": "agent2 on A"}},
            {"channel": "/v2/me/outbound", "data": {"notificationType": "Ping", "n": 1}},
        ]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(agent1.receive(), 0.5)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(agent2.receive(), 0.2)
