"""/meta/connect over long-polling: holding, waking, duplicates, expiry, multiple clients
(bayeux.md checklist 16-28, 35, 52-55)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import FAST_BAYEUX, Gateway, StartGateway, wait_for
from tests.integration.raw import RawHttp


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_first_connect_answers_at_once(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#16: the first connect after a handshake is never held, even without advice.timeout 0."""
    raw = RawHttp(gateway.url, http)
    await raw.handshake()
    started = time.monotonic()
    replies = await raw.connect()
    assert time.monotonic() - started < 0.5
    assert replies == [
        {
            "channel": "/meta/connect",
            "id": "2",
            "successful": True,
            "advice": {"reconnect": "retry", "interval": 0, "timeout": 2000},
        }
    ]


async def test_timeout_zero_answers_at_once(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#17: advice.timeout 0 on a later connect gets an immediate reply carrying the server advice."""
    raw = RawHttp(gateway.url, http)
    await raw.open()
    started = time.monotonic()
    replies = await raw.connect(advice={"timeout": 0})
    assert time.monotonic() - started < 0.5
    assert replies[-1]["advice"]["reconnect"] == "retry"


async def test_later_connect_is_held_until_timeout(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """#18, #19: a lone connect with nothing queued is held for timeout_ms, and not longer."""
    gw = await start_gateway(timeout_ms=600)
    raw = RawHttp(gw.url, http)
    await raw.open()
    started = time.monotonic()
    replies = await raw.connect()
    held = time.monotonic() - started
    assert 0.55 <= held < 1.0
    assert replies[-1]["successful"] is True


async def test_client_timeout_advice_overrides_hold(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#20: a client advice.timeout sets the hold of that connect."""
    raw = RawHttp(gateway.url, http)
    await raw.open()
    started = time.monotonic()
    await raw.connect(advice={"timeout": 300})
    assert 0.25 <= time.monotonic() - started < 1.0


async def test_publish_wakes_held_connect(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#21, #38: a publish wakes the held connect; the response has the event then the connect reply."""
    sub = RawHttp(gateway.url, http)
    await sub.open("/chat/room")
    held = asyncio.create_task(sub.connect())
    await wait_for(lambda: next(iter(gateway.hub.sessions.values())).held is not None)
    pub = RawHttp(gateway.url, http)
    await pub.open()
    started = time.monotonic()
    await pub.send({"channel": "/chat/room", "data": {"text": "hi"}})
    replies = await held
    assert time.monotonic() - started < 0.5
    assert replies[0] == {"channel": "/chat/room", "data": {"text": "hi"}}
    assert replies[1]["channel"] == "/meta/connect" and replies[1]["successful"] is True


async def test_response_order_handshake_events_replies(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#22, #44: queued events come before the other replies; own events ride on the same response."""
    raw = RawHttp(gateway.url, http)
    await raw.open("/chat/a")
    replies = await raw.send(
        {"channel": "/chat/a", "data": 1},
        {"channel": "/meta/subscribe", "subscription": "/chat/b"},
    )
    assert [m["channel"] for m in replies] == ["/chat/a", "/chat/a", "/meta/subscribe"]
    assert "data" in replies[0] and "data" not in replies[1]  # event first, then the publish reply


async def test_batched_connect_is_not_held(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#23: [connect, subscribe] in one request (aiocometd after a re-handshake) is answered at once."""
    raw = RawHttp(gateway.url, http)
    await raw.open()
    started = time.monotonic()
    replies = await raw.send(
        {"channel": "/meta/connect", "connectionType": "long-polling"},
        {"channel": "/meta/subscribe", "subscription": "/chat/x"},
    )
    assert time.monotonic() - started < 0.5
    assert [m["channel"] for m in replies] == ["/meta/connect", "/meta/subscribe"]
    assert all(m["successful"] for m in replies)


async def test_second_connect_releases_first_with_error_status(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#24: a newer connect completes the held one with HTTP 500 (not 408) and is served itself."""
    raw = RawHttp(gateway.url, http)
    await raw.open()
    first = asyncio.create_task(
        raw.post(
            [
                {
                    "channel": "/meta/connect",
                    "clientId": raw.client_id,
                    "connectionType": "long-polling",
                    "id": "a",
                }
            ]
        )
    )
    await wait_for(lambda: gateway.hub.sessions[raw.client_id].held is not None)
    second = asyncio.create_task(raw.connect(advice={"timeout": 200}))
    old = await first
    assert old.status == 500
    new = await second
    assert new[-1]["successful"] is True


@pytest.mark.parametrize(
    "channel", ["/meta/connect", "/meta/subscribe", "/meta/unsubscribe", "/meta/disconnect", "/chat/x"]
)
async def test_unknown_client_id_is_402(gateway: Gateway, http: aiohttp.ClientSession, channel: str) -> None:
    """#25, #26: unknown clientId -> 402::session_unknown; connect also advises a new handshake."""
    raw = RawHttp(gateway.url, http)
    raw.client_id = "nosuchclient"
    replies = await raw.send(
        {"channel": channel, "subscription": "/chat/x", "data": 1, "connectionType": "long-polling"}
    )
    assert replies[0]["successful"] is False
    assert replies[0]["error"] == "402::session_unknown"
    if channel == "/meta/connect":
        assert replies[0]["advice"] == {"reconnect": "handshake", "interval": 0, "timeout": FAST_BAYEUX["timeout_ms"]}
    else:
        # Faye re-handshakes on handshake advice anywhere: only connect replies carry it.
        assert "advice" not in replies[0]


async def test_cookie_enforcement(start_gateway: StartGateway) -> None:
    """#27, #28: with require_browser_cookie another browser's (or no) cookie gets 402; off, no cookie is fine."""
    strict = await start_gateway(require_browser_cookie=True)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser, aiohttp.ClientSession() as thief:
        owner = RawHttp(strict.url, browser)
        await owner.open()
        stolen = RawHttp(strict.url, thief)  # no cookie sent (IP host, default jar)
        stolen.client_id = owner.client_id
        replies = await stolen.send({"channel": "/meta/connect", "connectionType": "long-polling"})
        assert replies[0]["error"] == "402::session_unknown"
        ok = await owner.connect(advice={"timeout": 0})
        assert ok[-1]["successful"] is True

    relaxed = await start_gateway()
    async with aiohttp.ClientSession() as cookieless:
        raw = RawHttp(relaxed.url, cookieless)
        await raw.open()
        assert (await raw.connect(advice={"timeout": 0}))[-1]["successful"] is True


async def test_disconnect_removes_session_and_releases_held_connect(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """#35: disconnect succeeds, the held connect returns reconnect none, later messages get 402."""
    raw = RawHttp(gateway.url, http)
    await raw.open()
    held = asyncio.create_task(raw.connect())
    await wait_for(lambda: gateway.hub.sessions[raw.client_id].held is not None)
    other = RawHttp(gateway.url, http)
    other.client_id = raw.client_id
    replies = await other.send({"channel": "/meta/disconnect"})
    assert replies == [{"channel": "/meta/disconnect", "id": "1", "successful": True}]
    connect_reply = (await held)[-1]
    assert connect_reply["advice"]["reconnect"] == "none"
    assert raw.client_id not in gateway.hub.sessions
    again = await raw.send({"channel": "/meta/subscribe", "subscription": "/chat/x"})
    assert again[0]["error"] == "402::session_unknown"


async def test_session_expires_without_connect(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """#52: no connect within interval + max_interval after the last reply: removed, then 402."""
    gw = await start_gateway(max_interval_ms=300, sweep_period_ms=50)
    raw = RawHttp(gw.url, http)
    await raw.open()
    await wait_for(lambda: raw.client_id not in gw.hub.sessions, timeout=2)
    replies = await raw.connect()
    assert replies[0]["error"] == "402::session_unknown"
    assert replies[0]["advice"]["reconnect"] == "handshake"


async def test_never_expires_while_connect_is_held(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """#53: a connect held longer than max_interval keeps the session alive."""
    gw = await start_gateway(max_interval_ms=200, sweep_period_ms=50, timeout_ms=800)
    raw = RawHttp(gw.url, http)
    await raw.open()
    replies = await raw.connect()  # held 800 ms, four times max_interval
    assert replies[-1]["successful"] is True
    assert raw.client_id in gw.hub.sessions


async def test_multiple_clients_advice(start_gateway: StartGateway) -> None:
    """#54: a second long-polling session of one browser is told multiple-clients and polls."""
    gw = await start_gateway(max_sessions_per_browser=1, multi_session_interval_ms=1500)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        tab1, tab2 = RawHttp(gw.url, browser), RawHttp(gw.url, browser)
        await tab1.open()
        await tab2.open()
        held = asyncio.create_task(tab1.connect())
        await wait_for(lambda: gw.hub.sessions[tab1.client_id].held is not None)
        started = time.monotonic()
        replies = await tab2.connect()
        assert time.monotonic() - started < 0.5
        assert replies[-1]["successful"] is True
        assert replies[-1]["advice"]["multiple-clients"] is True
        assert replies[-1]["advice"]["interval"] == 1500
        held.cancel()


async def test_multiple_clients_refused_when_interval_not_positive(start_gateway: StartGateway) -> None:
    """#55: with multi_session_interval_ms <= 0 the extra session is refused with reconnect none."""
    gw = await start_gateway(max_sessions_per_browser=1, multi_session_interval_ms=0)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        tab1, tab2 = RawHttp(gw.url, browser), RawHttp(gw.url, browser)
        await tab1.open()
        await tab2.open()
        held = asyncio.create_task(tab1.connect())
        await wait_for(lambda: gw.hub.sessions[tab1.client_id].held is not None)
        replies = await tab2.connect()
        assert replies[-1]["successful"] is False
        assert replies[-1]["advice"]["reconnect"] == "none"
        held.cancel()
