"""websocket transport (bayeux.md checklist 45-51) and its limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import Gateway, StartGateway, wait_for
from tests.integration.raw import RawHttp, RawWs


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def open_ws(gw: Gateway, http: aiohttp.ClientSession, **kw: object) -> RawWs:
    return RawWs(await http.ws_connect(gw.ws_url, **kw))  # type: ignore[arg-type]


async def test_upgrade_without_subprotocol(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#45: upgrading on the endpoint path needs no subprotocol and none is echoed."""
    ws = await open_ws(gateway, http)
    assert ws.ws.protocol is None
    await ws.ws.close()


async def test_handshake_on_socket_binds_session(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#46, #47, #49: handshake on the socket; events are pushed as JSON-array frames without a connect."""
    ws = await open_ws(gateway, http)
    await ws.open("/chat/ws")
    session = gateway.hub.sessions[ws.client_id or ""]
    assert session.transport == "websocket"
    await ws.send(ws.connect_message())  # held; events still arrive in their own frames
    await wait_for(lambda: session.held is not None)
    await gateway.protocol.server.publish("/chat/ws", {"n": 1})
    frame = await ws.recv(timeout=1)
    assert frame == [{"channel": "/chat/ws", "data": {"n": 1}}]
    await ws.ws.close()


async def test_connect_on_new_socket_after_http_handshake(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#48: the aiocometd flow: handshake over HTTP, then /meta/connect as the first frame on a socket."""
    raw = RawHttp(gateway.url, http)
    await raw.handshake()
    ws = await open_ws(gateway, http)
    ws.client_id = raw.client_id
    await ws.send(ws.connect_message())
    frame = await ws.recv()
    assert frame[0]["channel"] == "/meta/connect" and frame[0]["successful"] is True
    assert frame[0]["id"] == "1"
    await ws.ws.close()


async def test_held_connect_answered_within_timeout_with_id(
    start_gateway: StartGateway, http: aiohttp.ClientSession
) -> None:
    """#50: the held connect over WebSocket is answered after timeout_ms with its id."""
    gw = await start_gateway(timeout_ms=500)
    ws = await open_ws(gw, http)
    await ws.open()
    message = ws.connect_message()
    started = time.monotonic()
    await ws.send(message)
    frame = await ws.recv(timeout=2)
    assert 0.45 <= time.monotonic() - started < 1.0
    assert frame == [
        {
            "channel": "/meta/connect",
            "id": message["id"],
            "successful": True,
            "advice": {"reconnect": "retry", "interval": 0, "timeout": 500},
        }
    ]
    await ws.ws.close()


async def test_batch_with_held_connect_answers_others_now(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """Over WebSocket a connect batched with a subscribe is held; the subscribe is answered at once."""
    ws = await open_ws(gateway, http)
    await ws.open()
    await ws.send(
        ws.connect_message(),
        {"channel": "/meta/subscribe", "clientId": ws.client_id, "subscription": "/chat/b", "id": "s"},
    )
    frame = await ws.recv(timeout=1)
    assert [m["channel"] for m in frame] == ["/meta/subscribe"]
    await ws.ws.close()


async def test_unparseable_frame_closes_1011_session_survives(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#51: a bad frame closes the socket with 1011; the session lives on until it expires (its browser, by
    its cookie on the next upgrade, may connect it again: sessions are bound, see test_session_binding)."""
    cookie = {"Cookie": "BAYEUX_BROWSER=b1"}
    ws = await open_ws(gateway, http, headers=cookie)
    await ws.open()
    await ws.ws.send_str("{not json")
    msg = await ws.ws.receive(timeout=2)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    assert msg.data == 1011
    assert ws.client_id in gateway.hub.sessions
    again = await open_ws(gateway, http, headers=cookie)
    again.client_id = ws.client_id
    await again.send(again.connect_message(advice={"timeout": 0}))
    assert (await again.recv())[0]["successful"] is True
    await again.ws.close()


async def test_oversized_frame_closes_1009(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """A frame over bayeux.max_body_bytes closes the socket with 1009 (message too big)."""
    gw = await start_gateway(max_body_bytes=1024)
    ws = await open_ws(gw, http)
    await ws.open()
    await ws.send({"channel": "/chat/x", "clientId": ws.client_id, "data": "x" * 4096})
    msg = await ws.ws.receive(timeout=2)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    assert msg.data == 1009


async def test_closed_socket_releases_held_connect(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """Closing the socket releases its held connect, so the session expires on schedule."""
    gw = await start_gateway(max_interval_ms=300, sweep_period_ms=50, timeout_ms=10000)
    ws = await open_ws(gw, http)
    await ws.open()
    session = gw.hub.sessions[ws.client_id or ""]
    await ws.send(ws.connect_message())
    await wait_for(lambda: session.held is not None)
    await ws.ws.close()
    await wait_for(lambda: session.held is None, timeout=2)
    await wait_for(lambda: ws.client_id not in gw.hub.sessions, timeout=2)


async def test_disallowed_origin_refused(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """#67: an upgrade (and a POST) from an Origin outside bayeux.allowed_origins is refused."""
    gw = await start_gateway(allowed_origins=["https://desk.example"])
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(gw.ws_url, headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    ok = await http.ws_connect(gw.ws_url, headers={"Origin": "https://desk.example"})
    await ok.close()
    async with http.post(
        gw.url, json=[{"channel": "/meta/handshake"}], headers={"Origin": "https://evil.example"}
    ) as resp:
        assert resp.status == 403
    async with http.options(gw.url, headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 403


async def test_ws_publish_between_two_sockets(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """Events published by one socket reach another socket's session, once."""
    a, b = await open_ws(gateway, http), await open_ws(gateway, http)
    await a.open("/chat/pair")
    await b.open()
    await b.send({"channel": "/chat/pair", "clientId": b.client_id, "data": "hi", "id": "p"})
    reply = await b.recv()
    assert reply == [{"channel": "/chat/pair", "id": "p", "successful": True}]
    got = await a.recv()
    assert got == [{"channel": "/chat/pair", "data": "hi"}]
    with pytest.raises(asyncio.TimeoutError):
        await a.ws.receive(timeout=0.3)
    await a.ws.close()
    await b.ws.close()
