"""A Faye Node client (npm faye 1.4) against the gateway.

Each test runs tests/interop/faye_client.js in Node over real loopback sockets. Faye handshakes over
HTTP long-polling and then uses websocket unless it is disabled, so "long-polling" disables websocket
and "websocket" checks the session really moved to it. Needs `npm ci --prefix tests`.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.hub.session import Session, WakeReason
from tests.conftest import Gateway, StartGateway, wait_for
from tests.interop.node_client import TRANSPORTS, messages, run_client

SCRIPT = "faye_client.js"
CHANNEL = "/chat/demo"

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)


def track_removals(gw: Gateway) -> list[dict[str, Any]]:
    """Record every session the hub removes: who, why and over which transport it last connected."""
    removed: list[dict[str, Any]] = []

    def listener(session: Session, reason: str) -> None:
        removed.append({"client_id": session.client_id, "reason": reason, "transport": session.transport})

    gw.hub.on_removed(listener)
    return removed


async def test_connect_subscribe_publish_receive(start_gateway: StartGateway, transport: str) -> None:
    gw = await start_gateway()
    removed = track_removals(gw)
    async with run_client(SCRIPT, gw.url, transport, "--wire") as client:
        code = await client.finish()

    assert code == 0, client.describe()
    [handshake] = client.of("handshake")
    assert handshake["successful"] is True
    assert transport in handshake["supportedConnectionTypes"]
    [subscribed] = client.of("subscribed")
    assert subscribed["clientId"] == handshake["clientId"]
    assert subscribed["connectionType"] == transport, client.describe()
    assert [p["successful"] for p in client.of("published")] == [True]
    # The same data came back, once.
    assert messages(client) == [{"channel": CHANNEL, "data": {"text": "hello"}}], client.describe()
    assert client.of("disconnected") == [{**client.of("disconnected")[0], "successful": True}]
    # Every /meta/connect on the wire used the transport under test.
    connection_types = {
        w["message"]["connectionType"]
        for w in client.of("wire")
        if w["dir"] == "out" and w["message"]["channel"] == "/meta/connect"
    }
    assert connection_types == {transport}, client.describe()
    # The server removed the session on /meta/disconnect; it had last connected over `transport`.
    assert removed == [{"client_id": handshake["clientId"], "reason": "disconnect", "transport": transport}]
    assert gw.hub.sessions == {}


async def test_two_clients_exchange_messages(start_gateway: StartGateway, transport: str) -> None:
    gw = await start_gateway()
    removed = track_removals(gw)
    async with (
        run_client(SCRIPT, gw.url, transport, "--scenario", "agent", "--name", "alice") as alice,
        run_client(SCRIPT, gw.url, transport, "--scenario", "agent", "--name", "bob") as bob,
    ):
        a_sub = await alice.wait_event("subscribed", successful=True)
        b_sub = await bob.wait_event("subscribed", successful=True)
        assert a_sub["clientId"] != b_sub["clientId"]
        assert a_sub["connectionType"] == transport and b_sub["connectionType"] == transport
        assert gw.hub.subscriber_count(CHANNEL) == 2

        await alice.send({"cmd": "publish", "data": {"text": "hi bob", "from": "alice"}})
        for client in (alice, bob):
            await client.wait_event("message", channel=CHANNEL, data={"text": "hi bob", "from": "alice"})
        await bob.send({"cmd": "publish", "data": {"text": "hi alice", "from": "bob"}})
        for client in (alice, bob):
            await client.wait_event("message", channel=CHANNEL, data={"text": "hi alice", "from": "bob"})

        for client in (alice, bob):
            await client.send({"cmd": "disconnect"})
        codes = [await alice.finish(), await bob.finish()]

    assert codes == [0, 0], alice.describe() + "\n" + bob.describe()
    expected = [
        {"channel": CHANNEL, "data": {"text": "hi bob", "from": "alice"}},
        {"channel": CHANNEL, "data": {"text": "hi alice", "from": "bob"}},
    ]
    assert messages(alice) == expected, alice.describe()
    assert messages(bob) == expected, bob.describe()
    assert gw.hub.sessions == {}
    assert sorted(r["reason"] for r in removed) == ["disconnect", "disconnect"]
    assert {r["transport"] for r in removed} == {transport}


async def test_rehandshake_after_server_drops_session(start_gateway: StartGateway, transport: str) -> None:
    gw = await start_gateway()
    async with run_client(SCRIPT, gw.url, transport, "--scenario", "agent") as client:
        first = await client.wait_event("subscribed", successful=True)
        old_id = first["clientId"]
        session = gw.hub.sessions[old_id]
        await wait_for(lambda: session.held is not None)
        # The server forgets the session: the held connect gets 402 + advice reconnect=handshake.
        gw.hub.remove(session, "test", wake=WakeReason.EVICTED)

        # Faye re-handshakes and re-subscribes on its own.
        resubscribed = await client.wait_for(
            lambda e: (
                e.get("event") == "subscribe_reply"
                and e.get("successful") is True
                and e.get("clientId") not in (None, old_id)
            )
        )
        new_id = resubscribed["clientId"]
        assert CHANNEL in gw.hub.sessions[new_id].subscriptions
        await gw.protocol.server.publish(CHANNEL, {"text": "after rehandshake"})
        await client.wait_event("message", channel=CHANNEL, data={"text": "after rehandshake"})
        await client.send({"cmd": "disconnect"})
        code = await client.finish()

    assert code == 0, client.describe()
    [failed] = client.of("unsuccessful")
    assert failed["error"].startswith("402") and failed["advice"]["reconnect"] == "handshake"
    assert [(h["successful"], h["clientId"]) for h in client.of("handshake")] == [(True, old_id), (True, new_id)]
    assert messages(client) == [{"channel": CHANNEL, "data": {"text": "after rehandshake"}}]
    assert gw.hub.sessions == {}
