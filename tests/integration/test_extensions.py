"""ack and timesync extensions (bayeux.md checklist 59-62)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import Gateway, StartGateway
from tests.integration.raw import RawHttp


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_ack_negotiated_and_batches_numbered(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#59, #60: ext.ack true both ways; connect replies carry batch 1, 2, 3..."""
    raw = RawHttp(gateway.url, http)
    reply = await raw.handshake(ext={"ack": True})
    assert reply["ext"] == {"ack": True}
    batches = []
    last = 0
    for _ in range(3):
        replies = await raw.connect(ext={"ack": last}, advice={"timeout": 0})
        last = replies[-1]["ext"]["ack"]
        batches.append(last)
    assert batches == [1, 2, 3]


async def test_unacknowledged_events_are_resent(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#61: events of a batch the client never acknowledged come again, and that connect is not held."""
    raw = RawHttp(gateway.url, http)
    await raw.handshake(ext={"ack": True})
    await raw.connect(ext={"ack": 0})
    await raw.send({"channel": "/meta/subscribe", "subscription": "/chat/ack"})
    await gateway.protocol.server.publish("/chat/ack", "m1")
    first = await raw.connect(ext={"ack": 1}, advice={"timeout": 0})
    assert first[0] == {"channel": "/chat/ack", "data": "m1"}
    lost_batch = first[-1]["ext"]["ack"]
    # The reply was "lost": the client acknowledges only the batch before it. No hold, resent.
    started = time.monotonic()
    again = await raw.connect(ext={"ack": lost_batch - 1})
    assert time.monotonic() - started < 0.5
    assert again[0] == {"channel": "/chat/ack", "data": "m1"}
    # Acknowledged now: nothing more, and the next connect is held as usual.
    done = await raw.connect(ext={"ack": again[-1]["ext"]["ack"]}, advice={"timeout": 200})
    assert [m["channel"] for m in done] == ["/meta/connect"]


async def test_ack_events_travel_only_in_connect_replies(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """With acks, a session's own publish does not carry its event: order is kept by connect batches."""
    raw = RawHttp(gateway.url, http)
    await raw.handshake(ext={"ack": True})
    await raw.connect(ext={"ack": 0})
    await raw.send({"channel": "/meta/subscribe", "subscription": "/chat/o"})
    replies = await raw.send({"channel": "/chat/o", "data": 1})
    assert all("data" not in m for m in replies)
    events = await raw.connect(ext={"ack": 1}, advice={"timeout": 0})
    assert events[0] == {"channel": "/chat/o", "data": 1}


async def test_ack_off_by_setting(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """With bayeux.ack_extension false the handshake reply does not agree to acks."""
    gw = await start_gateway(ack_extension=False)
    reply = await RawHttp(gw.url, http).handshake(ext={"ack": True})
    assert "ext" not in reply


async def test_timesync_reply(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#62: ext.timesync {tc,l,o} is answered with {tc, ts, p, a} and no internal fields."""
    raw = RawHttp(gateway.url, http)
    tc = int(time.time() * 1000)
    reply = await raw.handshake(ext={"timesync": {"tc": tc, "l": 0, "o": 0}})
    sync = reply["ext"]["timesync"]
    assert set(sync) == {"tc", "ts", "p", "a"}
    assert sync["tc"] == tc
    assert abs(sync["ts"] - tc) < 5000 and sync["p"] >= 0
    assert sync["a"] == tc - sync["ts"]
