"""The official CometD JavaScript client (npm cometd 9 + cometd-nodejs-client 2) against the gateway.

Each test runs tests/interop/cometd_client.mjs in Node over real loopback sockets, forcing one transport
(the other transports are unregistered in the client), and checks what the client observed and what the
server did. Needs `npm ci --prefix tests`.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.hub.session import Session, WakeReason
from tests.conftest import Gateway, StartGateway, wait_for
from tests.interop.node_client import TRANSPORTS, NodeClient, messages, run_client

SCRIPT = "cometd_client.mjs"
CHANNEL = "/chat/demo"

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)


def track_removals(gw: Gateway) -> list[dict[str, Any]]:
    """Record every session the hub removes: who, why, over which transport, with which extensions."""
    removed: list[dict[str, Any]] = []

    def listener(session: Session, reason: str) -> None:
        removed.append(
            {
                "client_id": session.client_id,
                "reason": reason,
                "transport": session.transport,
                "ext": sorted(session.ext or {}),
                "connect_only": session.connect_only,
            }
        )

    gw.hub.on_removed(listener)
    return removed


def assert_clean_run(client: NodeClient, code: int, transport: str) -> dict[str, Any]:
    """The basic scenario completed: handshake over `transport`, subscribed, published, disconnected."""
    assert code == 0, client.describe()
    assert client.of("unsuccessful") == [], client.describe()
    [handshake] = client.of("handshake")
    assert handshake["successful"] is True, client.describe()
    assert handshake["transport"] == transport
    assert transport in handshake["supportedConnectionTypes"]
    [subscribed] = client.of("subscribed")
    assert subscribed["successful"] is True
    assert subscribed["subscription"] == CHANNEL
    assert subscribed["clientId"] == handshake["clientId"]
    assert all(p["successful"] is True and p["channel"] == CHANNEL for p in client.of("published"))
    [disconnected] = client.of("disconnected")
    assert disconnected["successful"] is True
    assert disconnected["status"] == "disconnected"
    return handshake


async def test_handshake_subscribe_publish_receive_disconnect(start_gateway: StartGateway, transport: str) -> None:
    gw = await start_gateway()
    removed = track_removals(gw)
    async with run_client(SCRIPT, gw.url, transport) as client:
        code = await client.finish()
    handshake = assert_clean_run(client, code, transport)
    # Exactly the message published, once, with the same channel and data.
    assert messages(client) == [{"channel": CHANNEL, "data": {"text": "hello"}}], client.describe()
    assert client.of("published")[0]["data"] == {"text": "hello"}
    # The disconnect removed the session on the server; the session had really used `transport`.
    client_id = handshake["clientId"]
    assert client_id not in gw.hub.sessions
    assert [r for r in removed if r["client_id"] == client_id] == [
        {"client_id": client_id, "reason": "disconnect", "transport": transport, "ext": [], "connect_only": False}
    ]
    assert gw.hub.sessions == {}


async def test_two_clients_exchange_messages(start_gateway: StartGateway, transport: str) -> None:
    # Two Node processes: two independent cookie jars, like two browsers.
    gw = await start_gateway()
    removed = track_removals(gw)
    async with (
        run_client(SCRIPT, gw.url, transport, "--scenario", "agent", "--name", "alice") as alice,
        run_client(SCRIPT, gw.url, transport, "--scenario", "agent", "--name", "bob") as bob,
    ):
        a_sub = await alice.wait_event("subscribed")
        b_sub = await bob.wait_event("subscribed")
        assert a_sub["successful"] is True and b_sub["successful"] is True
        assert a_sub["transport"] == transport and b_sub["transport"] == transport
        assert a_sub["clientId"] != b_sub["clientId"]
        assert {a_sub["clientId"], b_sub["clientId"]} <= set(gw.hub.sessions)
        assert gw.hub.subscriber_count(CHANNEL) == 2

        await alice.send({"cmd": "publish", "data": {"text": "hi bob", "from": "alice"}})
        for client in (alice, bob):
            got = await client.wait_event("message", data={"text": "hi bob", "from": "alice"})
            assert got["channel"] == CHANNEL
        await bob.send({"cmd": "publish", "data": {"text": "hi alice", "from": "bob"}})
        for client in (alice, bob):
            got = await client.wait_event("message", data={"text": "hi alice", "from": "bob"})
            assert got["channel"] == CHANNEL

        for client in (alice, bob):
            await client.send({"cmd": "disconnect"})
        codes = [await alice.finish(), await bob.finish()]

    assert codes == [0, 0], alice.describe() + "\n" + bob.describe()
    expected = [
        {"channel": CHANNEL, "data": {"text": "hi bob", "from": "alice"}},
        {"channel": CHANNEL, "data": {"text": "hi alice", "from": "bob"}},
    ]
    # Each client got each message exactly once, in publish order.
    assert messages(alice) == expected, alice.describe()
    assert messages(bob) == expected, bob.describe()
    for client in (alice, bob):
        assert client.of("disconnected")[0]["successful"] is True
        assert client.of("unsuccessful") == [], client.describe()
    assert gw.hub.sessions == {}
    assert sorted(r["reason"] for r in removed) == ["disconnect", "disconnect"]
    assert {r["transport"] for r in removed} == {transport}


async def test_rehandshake_after_server_drops_session(start_gateway: StartGateway, transport: str) -> None:
    gw = await start_gateway()
    removed = track_removals(gw)
    async with run_client(SCRIPT, gw.url, transport, "--scenario", "agent", "--wire") as client:
        first = await client.wait_event("subscribed", successful=True)
        old_id = first["clientId"]
        await client.wait_event("connected")
        session = gw.hub.sessions[old_id]
        # Let the client's /meta/connect be held, then the server forgets the session: the held connect
        # is answered 402::session_unknown with advice reconnect=handshake.
        await wait_for(lambda: session.held is not None)
        gw.hub.remove(session, "test", wake=WakeReason.EVICTED)

        second = await client.wait_for(
            lambda e: e.get("event") == "subscribed" and e.get("clientId") not in (None, old_id)
        )
        assert second["successful"] is True
        assert second["transport"] == transport
        new_id = second["clientId"]
        assert old_id not in gw.hub.sessions
        assert CHANNEL in gw.hub.sessions[new_id].subscriptions

        # A message published by the server after the re-handshake reaches the new session.
        await gw.protocol.server.publish(CHANNEL, {"text": "after rehandshake"})
        got = await client.wait_event("message", data={"text": "after rehandshake"})
        assert got["channel"] == CHANNEL

        await client.send({"cmd": "disconnect"})
        code = await client.finish()

    assert code == 0, client.describe()
    # What the client saw: the failed connect with the server's advice, then a re-established handshake.
    [failed] = [u for u in client.of("unsuccessful") if u["channel"] == "/meta/connect"]
    assert failed["error"].startswith("402"), client.describe()
    assert failed["advice"]["reconnect"] == "handshake"
    handshakes = client.of("handshake")
    assert [h["successful"] for h in handshakes] == [True, True], client.describe()
    assert [h["reestablish"] for h in handshakes] == [False, True]
    assert handshakes[1]["clientId"] == new_id
    # The wire: the connect request carried the old clientId and its reply was the 402.
    connect_out = [
        w["message"] for w in client.of("wire") if w["dir"] == "out" and w["message"]["channel"] == "/meta/connect"
    ]
    assert any(m["clientId"] == old_id for m in connect_out)
    assert messages(client) == [{"channel": CHANNEL, "data": {"text": "after rehandshake"}}]
    assert [(r["client_id"], r["reason"]) for r in removed] == [(old_id, "test"), (new_id, "disconnect")]
    assert gw.hub.sessions == {}


async def test_server_side_disconnect_stops_client(start_gateway: StartGateway, transport: str) -> None:
    gw = await start_gateway()
    async with run_client(SCRIPT, gw.url, transport, "--scenario", "agent", "--wire") as client:
        sub = await client.wait_event("subscribed", successful=True)
        client_id = sub["clientId"]
        await client.wait_event("connected")
        session = gw.hub.sessions[client_id]
        await wait_for(lambda: session.held is not None)
        # The server-side API: the client is told /meta/disconnect and must not reconnect.
        await gw.protocol.server.disconnect_session(client_id)
        await client.wait_event("server_disconnect")
        await client.send({"cmd": "status"})
        status = await client.wait_event("status")
        code = await client.finish()

    assert code == 0, client.describe()
    assert status["status"] == "disconnected", client.describe()
    assert client_id not in gw.hub.sessions
    # No re-handshake: one handshake only, and no session left on the server.
    assert len(client.of("handshake")) == 1, client.describe()
    assert gw.hub.sessions == {}
    incoming = [w["message"] for w in client.of("wire") if w["dir"] == "in"]
    assert {"channel": "/meta/disconnect", "successful": True} in incoming


async def test_ack_extension_delivers_in_order(start_gateway: StartGateway, transport: str) -> None:
    gw = await start_gateway()
    removed = track_removals(gw)
    async with run_client(SCRIPT, gw.url, transport, "--ack", "--count", "5") as client:
        code = await client.finish()
    handshake = assert_clean_run(client, code, transport)
    # The server agreed to acknowledgements and numbered its connect replies.
    assert handshake["ext"]["ack"] is True, client.describe()
    [connected] = client.of("connected")
    assert isinstance(connected["ext"]["ack"], int)
    # Every message, once, in publish order.
    got = [(m["channel"], m["data"]) for m in messages(client)]
    assert got == [(CHANNEL, {"text": "hello", "seq": i}) for i in range(5)], client.describe()
    # Server side: the session was an ack session (events only inside numbered connect replies).
    [record] = [r for r in removed if r["client_id"] == handshake["clientId"]]
    assert record["reason"] == "disconnect"
    assert record["ext"] == ["ack"]
    assert record["connect_only"] is True
    assert record["transport"] == transport


async def test_timesync_extension(start_gateway: StartGateway, transport: str) -> None:
    gw = await start_gateway()
    async with run_client(SCRIPT, gw.url, transport, "--timesync") as client:
        code = await client.finish()
    handshake = assert_clean_run(client, code, transport)
    sync = handshake["ext"]["timesync"]
    assert set(sync) >= {"tc", "ts", "p"}, client.describe()
    assert all(isinstance(sync[k], int) for k in ("tc", "ts", "p"))
    # Same machine, same clock: the server's receive time is within a second of the client's send time.
    assert abs(sync["ts"] - sync["tc"]) < 1000
    assert 0 <= sync["p"] < 1000
    # The connect replies answer the client's lag/offset estimate with `a`.
    [connected] = client.of("connected")
    assert {"tc", "ts", "p", "a"} <= set(connected["ext"]["timesync"])
    [estimate] = client.of("timesync")
    assert abs(estimate["offset"]) < 1000 and 0 <= estimate["lag"] < 1000, estimate
    assert messages(client) == [{"channel": CHANNEL, "data": {"text": "hello"}}]
    assert gw.hub.sessions == {}


async def test_two_tabs_of_one_browser(start_gateway: StartGateway, transport: str) -> None:
    # Two CometD clients in one Node process share its cookie jar, like two tabs of one browser. Over
    # long-polling only one may hold a /meta/connect per browser (max_sessions_per_browser=1): the other
    # is advised multiple-clients and polls every multi_session_interval_ms, yet still gets every message.
    gw = await start_gateway(max_sessions_per_browser=1, multi_session_interval_ms=1000)
    async with run_client(SCRIPT, gw.url, transport, "--scenario", "agent", "--tabs", "2", "--wire") as client:
        tab0 = await client.wait_event("subscribed", tab=0, successful=True)
        tab1 = await client.wait_event("subscribed", tab=1, successful=True)
        sessions = [gw.hub.sessions[tab0["clientId"]], gw.hub.sessions[tab1["clientId"]]]
        if transport == "long-polling":
            # Same browser cookie on both sessions, and one of them is told it shares the browser.
            assert sessions[0].browser_id is not None
            assert sessions[0].browser_id == sessions[1].browser_id
            advised = await client.wait_event("multiple_clients")
            assert advised["advice"]["multiple-clients"] is True
            assert advised["advice"]["interval"] == 1000
            assert advised["advice"]["reconnect"] == "retry"

        # One at a time: the other tab gets each message from its own (held or polling) connect.
        for sender in (0, 1):
            text = f"from tab {sender}"
            await client.send({"cmd": "publish", "tab": sender, "data": {"text": text}})
            for tab in (0, 1):
                await client.wait_event("message", tab=tab, channel=CHANNEL, data={"text": text})
        await client.send({"cmd": "disconnect"})
        code = await client.finish()

    assert code == 0, client.describe()
    for tab in (0, 1):
        got = sorted(e["data"]["text"] for e in client.of("message") if e["tab"] == tab)
        assert got == ["from tab 0", "from tab 1"], client.describe()
        assert [e["successful"] for e in client.of("disconnected") if e["tab"] == tab] == [True]
    assert client.of("unsuccessful") == [], client.describe()
    if transport == "websocket":
        # The rule is for HTTP long-polling only: each WebSocket holds its own connect.
        assert client.of("multiple_clients") == [], client.describe()
    assert gw.hub.sessions == {}
