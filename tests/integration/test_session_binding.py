"""A clientId is not a bearer token: a session is bound to the identity that handshook it (README, Security).

Each hijack below (another agent's clientId on long-polling without the cookie, on a fresh WebSocket, and over
WebSocket with `require_browser_cookie`) was served on the main branch before the binding; the victim then stopped
receiving its own acknowledgements. Real sockets throughout.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import AGENT_PASSWORD, IDENTITIES, Gateway, StartGateway, wait_for
from tests.integration.raw import RawHttp, RawWs

AGENT_EXT = {"authentication": {"user": "agent1", "password": AGENT_PASSWORD}}
ACK: dict[str, Any] = {"messageType": "RecordRejectAcknowledge", "referenceId": 42}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:  # at 127.0.0.1: keeps no cookie
        yield session


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # keeps cookies
        yield session


async def victim_over_ws(gw: Gateway, http: aiohttp.ClientSession) -> RawWs:
    ws = RawWs(await http.ws_connect(gw.ws_url))
    await ws.open("/v2/me/**", ext=AGENT_EXT)
    await ws.send(ws.connect_message())  # held: events are pushed on this socket
    await wait_for(lambda: gw.hub.sessions[ws.client_id or ""].held is not None)
    return ws


async def victim_over_http(gw: Gateway, browser: aiohttp.ClientSession) -> RawHttp:
    raw = RawHttp(gw.url, browser)
    await raw.open("/v2/me/**", ext=AGENT_EXT)
    return raw


async def attempts_over_ws(gw: Gateway, http: aiohttp.ClientSession, client_id: str, **kw: Any) -> list[Any]:
    """connect, subscribe and publish with a stolen clientId on a fresh WebSocket: every reply."""
    thief = RawWs(await http.ws_connect(gw.ws_url, **kw))
    thief.client_id = client_id
    replies = []
    for message in (
        thief.connect_message(advice={"timeout": 0}),
        {"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/v2/me/outbound", "id": "s"},
        {"channel": "/chat/x", "clientId": client_id, "data": 1, "id": "p"},
    ):
        await thief.send(message)
        replies.extend(await thief.recv())
    await thief.ws.close()
    return replies


def assert_refused(replies: list[Any]) -> None:
    assert replies and all(r["successful"] is False for r in replies), replies
    assert all(r["error"] == "402::session_unknown" for r in replies), replies
    connect = [r for r in replies if r["channel"] == "/meta/connect"]
    handshake = {"reconnect": "handshake", "interval": 0}
    assert all({**r["advice"], "timeout": None} == {**handshake, "timeout": None} for r in connect), replies
    assert all(isinstance(r["advice"]["timeout"], int) and r["advice"]["timeout"] > 0 for r in connect), replies


async def test_long_polling_without_cookie_refused(
    gw: Gateway, http: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    """Another agent's clientId on long-polling without its cookie or credentials: 402; the victim keeps its acks."""
    victim = await victim_over_http(gw, browser)
    thief = RawHttp(gw.url, http)
    thief.client_id = victim.client_id
    replies = await thief.send({"channel": "/meta/connect", "connectionType": "long-polling", "advice": {"timeout": 0}})
    replies += await thief.send({"channel": "/meta/subscribe", "subscription": "/v2/me/outbound"})
    replies += await thief.send({"channel": "/chat/x", "data": 1})
    assert_refused(replies)
    # Credentials of another identity do not help either.
    connect = {"channel": "/meta/connect", "clientId": victim.client_id, "connectionType": "long-polling"}
    other = await thief.post([connect], headers=basic("agent2", "agent2-test-password"))
    assert other.body[0]["error"] == "402::session_unknown"
    held = asyncio.create_task(victim.connect())
    await wait_for(lambda: gw.hub.sessions[victim.client_id or ""].held is not None)
    await gw.server.deliver_to_user("agent1", "/v2/me/outbound", ACK)
    assert {"channel": "/v2/me/outbound", "data": ACK} in await asyncio.wait_for(held, 5)


@pytest.mark.parametrize("require_browser_cookie", [False, True], ids=["default", "require_browser_cookie"])
async def test_fresh_websocket_refused(
    start_gateway: StartGateway,
    http: aiohttp.ClientSession,
    browser: aiohttp.ClientSession,
    require_browser_cookie: bool,
) -> None:
    """A fresh WebSocket with a stolen clientId (of a WebSocket or a long-polling session) is refused, with or
    without require_browser_cookie; the victim's own socket keeps receiving its acknowledgements."""
    gw = await start_gateway(extra=IDENTITIES, require_browser_cookie=require_browser_cookie)
    victim = await victim_over_ws(gw, http)
    assert_refused(await attempts_over_ws(gw, http, victim.client_id or ""))
    polling = await victim_over_http(gw, browser)
    assert_refused(await attempts_over_ws(gw, http, polling.client_id or ""))
    await gw.server.deliver_to_user("agent1", "/v2/me/outbound", ACK)
    seen = await victim.recv_until(lambda m: m.get("channel") == "/v2/me/outbound")
    assert {"channel": "/v2/me/outbound", "data": ACK} in seen
    await victim.ws.close()


async def test_same_identity_may_continue_elsewhere(
    gw: Gateway, http: aiohttp.ClientSession, browser: aiohttp.ClientSession
) -> None:
    """The owner's credentials (upgrade Authorization, ext.authentication) or its cookie carry the session on."""
    victim = await victim_over_http(gw, browser)
    # A new socket whose upgrade carries agent1's Basic credentials.
    ws = RawWs(await http.ws_connect(gw.ws_url, headers=basic("agent1", AGENT_PASSWORD)))
    ws.client_id = victim.client_id
    await ws.send(ws.connect_message(advice={"timeout": 0}))
    assert (await ws.recv())[0]["successful"] is True
    await ws.ws.close()
    # Long-polling without the cookie, with ext.authentication in the message (aiohttp at an IP address).
    cookieless = RawHttp(gw.url, http)
    cookieless.client_id = victim.client_id
    reply = await cookieless.send(
        {"channel": "/meta/connect", "connectionType": "long-polling", "advice": {"timeout": 0}, "ext": AGENT_EXT}
    )
    assert reply[-1]["successful"] is True
    # The browser's own cookie still works.
    assert (await victim.connect(advice={"timeout": 0}))[-1]["successful"] is True


async def test_anonymous_websocket_session_bound_to_its_socket(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """Anonymous sessions (OpenPolicy) have no credentials: a WebSocket session belongs to its socket."""
    ws = RawWs(await http.ws_connect(gateway.ws_url))
    await ws.open("/chat/**")
    assert_refused(await attempts_over_ws(gateway, http, ws.client_id or ""))
    await gateway.server.publish("/chat/room", 1)
    assert await ws.recv() == [{"channel": "/chat/room", "data": 1}]
    await ws.ws.close()


async def test_credentials_are_never_relayed(gw: Gateway, http: aiohttp.ClientSession) -> None:
    """A client sending ext.authentication with every message (as it must without cookies) never leaks it."""
    ws = RawWs(await http.ws_connect(gw.ws_url))
    await ws.open("/chat/**", ext=AGENT_EXT)
    await ws.send({"channel": "/chat/room", "clientId": ws.client_id, "data": 1, "ext": {**AGENT_EXT, "k": 1}})
    seen = await ws.recv_until(lambda m: "data" in m)
    assert {"channel": "/chat/room", "data": 1, "ext": {"k": 1}} in seen
    await ws.ws.close()
