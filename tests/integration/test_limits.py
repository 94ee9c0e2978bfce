"""A slow consumer's queue is bounded by bayeux.max_queue; each overflow policy does what it says."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import StartGateway
from tests.integration.raw import RawHttp


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _slow_consumer(start_gateway: StartGateway, http: aiohttp.ClientSession, policy: str) -> tuple:  # type: ignore[type-arg]
    gw = await start_gateway(max_queue=5, queue_overflow=policy)
    raw = RawHttp(gw.url, http)
    await raw.open("/chat/flood")
    session = gw.hub.sessions[raw.client_id or ""]
    for n in range(20):  # the client is not connected: everything queues
        await gw.protocol.server.publish("/chat/flood", n)
    return gw, raw, session


async def test_drop_oldest_keeps_newest(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """drop_oldest: the queue never exceeds max_queue; the newest messages survive."""
    gw, raw, session = await _slow_consumer(start_gateway, http, "drop_oldest")
    assert len(session.queue) == 5 and session.dropped == 15
    replies = await raw.connect(advice={"timeout": 0})
    assert [m["data"] for m in replies[:-1]] == [15, 16, 17, 18, 19]
    assert gw.hub.stats.dropped == 15


async def test_drop_newest_keeps_oldest(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """drop_newest: the queue keeps the first max_queue messages."""
    _, raw, session = await _slow_consumer(start_gateway, http, "drop_newest")
    assert len(session.queue) == 5
    replies = await raw.connect(advice={"timeout": 0})
    assert [m["data"] for m in replies[:-1]] == [0, 1, 2, 3, 4]


async def test_disconnect_policy_removes_session(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """disconnect: the session is removed; its client is told to handshake again."""
    gw, raw, _ = await _slow_consumer(start_gateway, http, "disconnect")
    assert raw.client_id not in gw.hub.sessions
    replies = await raw.connect()
    assert replies[0]["error"] == "402::session_unknown"
    assert replies[0]["advice"]["reconnect"] == "handshake"
