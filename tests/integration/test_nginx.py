"""docs/nginx.conf in front of three gateways (one PostgreSQL, one Redis), run by a real nginx.

A long-poll that reaches a node without its session gets 402::session_unknown with advice.reconnect
handshake; through nginx a client stays on the node of its first answer (the GW_NODE cookie), and one sent
elsewhere handshakes there; WebSocket through nginx; a notification sent on one node reaches a client that
nginx put on another.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiocometd_ng import Client, ConnectionType
from yarl import URL

from tests.conftest import AGENT_PASSWORD, IDENTITIES, Gateway, StartGateway, wait_for
from tests.integration.raw import RawHttp
from tests.interop.cometd_auth import ExtAuth
from tests.servers.nginx import NginxServer, find_nginx
from tests.servers.postgres import PostgresServer

SUPERVISOR = {"authentication": {"user": "supervisor1", "password": "sup-pass"}}


@dataclass
class Cluster:
    """Three gateways and the nginx in front of them."""

    nodes: list[Gateway]
    nginx: NginxServer

    @property
    def url(self) -> str:
        """The Bayeux endpoint through nginx."""
        return self.nginx.base + self.nodes[0].path

    def holding(self, client_id: str) -> list[int]:
        """Which nodes (0, 1, 2) hold a session."""
        return [i for i, node in enumerate(self.nodes) if client_id in node.hub.sessions]


@pytest.fixture
async def cluster(
    start_gateway: StartGateway, postgres_server: PostgresServer, redis_url: str, tmp_path: Path
) -> AsyncIterator[Cluster]:
    """Three in-process gateways on one database and one Redis, behind docs/nginx.conf."""
    binary = find_nginx()
    extra = {
        **IDENTITIES,
        "storage": {"url": postgres_server.create_database()},
        "broker": {"url": redis_url, "reconnect_max_s": 0.2},
    }
    nodes = [await start_gateway(extra=extra) for _ in range(3)]
    nginx = NginxServer(tmp_path / "nginx", [int(node.base.rsplit(":", 1)[1]) for node in nodes], binary)
    await asyncio.to_thread(nginx.start)
    try:
        yield Cluster(nodes, nginx)
    finally:
        await asyncio.to_thread(nginx.stop)


async def test_long_poll_on_a_node_without_the_session_is_told_to_handshake(cluster: Cluster) -> None:
    """A session handshaken on node 0, its connect sent to node 1: 402::session_unknown, reconnect handshake;
    node 0 still holds the session, untouched."""
    a, b = cluster.nodes[0], cluster.nodes[1]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = RawHttp(a.url, http)
        await client.handshake(ext=SUPERVISOR)
        assert client.client_id is not None
        (reply,) = await RawHttp(b.url, http, client_id=client.client_id).connect()
        assert reply["successful"] is False
        assert reply["error"] == "402::session_unknown"
        assert reply["advice"]["reconnect"] == "handshake"
        assert cluster.holding(client.client_id) == [0]
        (first,) = await client.connect()
        assert first["successful"] is True


def node_cookie(http: aiohttp.ClientSession) -> str | None:
    """The GW_NODE cookie nginx gave the client (gw1, gw2, gw3), if any."""
    found = http.cookie_jar.filter_cookies(URL("http://127.0.0.1/")).get("GW_NODE")
    return found.value if found is not None else None


async def test_through_nginx_each_client_stays_on_the_node_of_its_first_answer(cluster: Cluster) -> None:
    """Twelve long-polling clients that keep cookies, through nginx: the first answer names its node in
    GW_NODE and every later request reaches that node (no 402 on the way); the clients spread."""
    placed: list[int] = []
    for _ in range(12):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            client = RawHttp(cluster.url, http)
            assert (await client.handshake(ext=SUPERVISOR))["successful"] is True
            assert client.client_id is not None
            (node,) = cluster.holding(client.client_id)
            assert node_cookie(http) == f"gw{node + 1}"
            (reply,) = await client.connect()
            assert reply["successful"] is True, reply
            for _ in range(3):
                (sub,) = await client.send({"channel": "/meta/subscribe", "subscription": "/chat/demo"})
                assert sub["successful"] is True
                await client.send({"channel": "/meta/unsubscribe", "subscription": "/chat/demo"})
            placed.append(node)
    assert len(Counter(placed)) >= 2, placed  # chance all on one node: 3 * (1/3)**12
    lines = cluster.nginx.upstreams()
    assert lines and all(status == "200" for _, status, _ in lines), lines[-5:]


async def test_a_client_sent_to_another_node_handshakes_there_and_stays(cluster: Cluster) -> None:
    """A client whose GW_NODE names another node than its session's (its node left, or the cookie changed):
    402::session_unknown with reconnect handshake through nginx, a new handshake on that node, and on."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = RawHttp(cluster.url, http)
        await client.handshake(ext=SUPERVISOR)
        assert client.client_id is not None
        (home,) = cluster.holding(client.client_id)
        other = (home + 1) % 3
        http.cookie_jar.update_cookies({"GW_NODE": f"gw{other + 1}"}, URL(cluster.nginx.base))
        (reply,) = await client.connect()
        assert reply["successful"] is False and reply["error"] == "402::session_unknown"
        assert reply["advice"]["reconnect"] == "handshake"
        assert (await client.handshake(ext=SUPERVISOR))["successful"] is True
        assert cluster.holding(client.client_id) == [other]
        (reply,) = await client.connect()
        assert reply["successful"] is True


@pytest.mark.parametrize("transport", [ConnectionType.WEBSOCKET, ConnectionType.LONG_POLLING], ids=lambda t: t.value)
async def test_agent_through_nginx_gets_what_another_node_sends(cluster: Cluster, transport: ConnectionType) -> None:
    """aiocometd-ng through nginx (WebSocket proxied with its Upgrade): agent1's notification sent on every
    node, the ones that do not hold its session included, arrives once each."""
    url = cluster.url.replace("127.0.0.1", "localhost")  # aiohttp keeps the cookie at a host name
    async with Client(url, transport, ssl=True, auth=ExtAuth(user="agent1", password=AGENT_PASSWORD)) as agent:
        await agent.subscribe("/v2/me/outbound")
        await wait_for(lambda: sum(node.hub.has_user("agent1") for node in cluster.nodes) == 1)
        for n, node in enumerate(cluster.nodes):
            await node.server.deliver_to_user("agent1", "/v2/me/outbound", {"notificationType": "Ping", "n": n})
        got = [await asyncio.wait_for(agent.receive(), 5) for _ in range(3)]
        assert sorted(m["data"]["n"] for m in got) == [0, 1, 2]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(agent.receive(), 0.5)
    if transport is ConnectionType.WEBSOCKET:
        assert any(line.startswith("GET ") and status == "101" for line, status, _ in cluster.nginx.upstreams())
