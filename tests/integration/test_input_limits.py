"""Every message the gateway accepts can be written back (gateway/wire/limits.py), over every transport.

orjson reads JSON nested 1024 deep but writes 254 levels, and no integer beyond 64 bits: such input is
refused in-band (`400::nesting_too_deep`, `400::integer_out_of_range`) or with the dialect's envelope, and a
message the server cannot write (a server bug) is dropped for that session without blocking anyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import Gateway
from tests.integration.raw import Message, RawHttp, RawWs, handshake_message

DEEP = b"[" * 300 + b"]" * 300
U64 = 18446744073709551615
TRANSPORTS = ["lean", "aiohttp", "callback-polling", "websocket"]


class Bayeux:
    """Sends literal JSON over one transport and returns the reply array (one frame for WebSocket)."""

    def __init__(self, gw: Gateway, http: aiohttp.ClientSession, transport: str) -> None:
        self.gw = gw
        self.http = http
        self.transport = transport
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.client_id: str | None = None

    async def exchange(self, raw: bytes, timeout: float = 5.0) -> list[Message]:
        """Send a JSON array of messages; the answer, which must come within `timeout`."""
        return await asyncio.wait_for(self._exchange(raw), timeout)

    async def _exchange(self, raw: bytes) -> list[Message]:
        headers = {"Content-Type": "application/json"}
        if self.transport == "websocket":
            if self.ws is None:
                self.ws = await self.http.ws_connect(self.gw.ws_url)
            await self.ws.send_str(raw.decode())
            frame = await self.ws.receive()
            assert frame.type == aiohttp.WSMsgType.TEXT, frame
            result: list[Message] = orjson.loads(frame.data)
            return result
        if self.transport == "callback-polling":
            params = {"jsonp": "cb", "message": raw.decode()}
            async with self.http.get(self.gw.url, params=params) as resp:
                text = await resp.text()
                assert resp.status == 200, text
                assert text.startswith("cb(") and text.endswith(")"), text
                callback: list[Message] = orjson.loads(text[3:-1])
                return callback
        # expect100: a request the lean path hands to aiohttp (aiohttp answers with its Server header).
        aiohttp_path = self.transport == "aiohttp"
        async with self.http.post(self.gw.url, data=raw, headers=headers, expect100=aiohttp_path) as resp:
            text = await resp.text()
            assert resp.status == 200, text
            assert ("Server" in resp.headers) is aiohttp_path, resp.headers
            answer: list[Message] = orjson.loads(text)
            return answer

    def connection_type(self) -> str:
        """The connectionType of this transport."""
        return "long-polling" if self.transport in ("lean", "aiohttp") else self.transport

    async def open(self) -> None:
        """Handshake and first connect on this transport."""
        replies = await self.exchange(orjson.dumps([handshake_message()]))
        assert replies[0]["successful"], replies
        self.client_id = replies[0]["clientId"]
        connect = {"channel": "/meta/connect", "clientId": self.client_id, "connectionType": self.connection_type()}
        replies = await self.exchange(orjson.dumps([connect]))
        assert replies[-1]["successful"], replies

    async def close(self) -> None:
        """Close the socket, if any."""
        if self.ws is not None:
            await self.ws.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(params=TRANSPORTS)
async def bayeux(
    request: pytest.FixtureRequest, gateway: Gateway, http: aiohttp.ClientSession
) -> AsyncIterator[Bayeux]:
    """A raw client of `gateway` over one transport (the lean path, aiohttp's, callback-polling, WebSocket)."""
    client = Bayeux(gateway, http, request.param)
    yield client
    await client.close()


async def subscribers(gw: Gateway, http: aiohttp.ClientSession) -> tuple[RawHttp, RawWs]:
    """A long-polling and a WebSocket subscriber of /chat/room."""
    poller = RawHttp(gw.url, http)
    await poller.open("/chat/room")
    ws = RawWs(await http.ws_connect(gw.ws_url))
    await ws.open("/chat/room")
    return poller, ws


async def poll_until(poller: RawHttp, text: str, timeout: float = 5.0) -> list[Message]:
    """Long-poll until an event carrying `text` arrives; every connect must be answered with 200."""
    seen: list[Message] = []
    end = asyncio.get_running_loop().time() + timeout
    while not any(m.get("data") == {"text": text} for m in seen):
        assert asyncio.get_running_loop().time() < end, seen
        seen += await asyncio.wait_for(poller.connect(), timeout)
    return seen


async def expect_delivery(poller: RawHttp, ws: RawWs, text: str) -> None:
    """Both subscribers receive the event `{"text": text}`."""
    await poll_until(poller, text)
    await ws.send(ws.connect_message())
    await ws.recv_until(lambda m: m.get("data") == {"text": text})


async def test_deep_publish_is_refused_and_delivery_goes_on(bayeux: Bayeux, http: aiohttp.ClientSession) -> None:
    """Data nested 300 deep on a client-publishable channel: the publisher gets 400::nesting_too_deep, nothing is
    delivered, and the subscribers (long-polling, WebSocket) get the next publish as usual."""
    gw = bayeux.gw
    poller, ws = await subscribers(gw, http)
    await bayeux.open()
    head = b'[{"channel":"/chat/room","id":"7","clientId":"%s","data":' % str(bayeux.client_id).encode()
    replies = await bayeux.exchange(head + DEEP + b"}]")
    assert replies == [{"channel": "/chat/room", "id": "7", "successful": False, "error": "400::nesting_too_deep"}]
    good = {"channel": "/chat/room", "clientId": bayeux.client_id, "data": {"text": "after"}}
    assert (await bayeux.exchange(orjson.dumps([good])))[-1]["successful"]
    await expect_delivery(poller, ws, "after")


async def test_handshake_with_huge_timesync_is_refused(bayeux: Bayeux) -> None:
    """ext.timesync holding 2**64-1 (beyond 64 bits signed): the handshake is answered 400::integer_out_of_range,
    with reconnect none, on every transport (the lean path used to leave it unanswered)."""
    message = handshake_message("1", ext={"timesync": {"tc": U64, "l": 0, "o": 0}})
    replies = await bayeux.exchange(orjson.dumps([message]))
    assert len(replies) == 1
    reply = replies[0]
    assert (reply["channel"], reply["id"], reply["successful"]) == ("/meta/handshake", "1", False)
    assert reply["error"] == "400::integer_out_of_range" and reply["advice"]["reconnect"] == "none"
    await bayeux.open()  # the transport serves on


async def test_timesync_arithmetic_is_bounded(bayeux: Bayeux) -> None:
    """tc, l and o within 64 bits whose sum is not: the handshake succeeds, without a timesync answer."""
    top = 2**63 - 1
    message = handshake_message("1", ext={"timesync": {"tc": top, "l": top, "o": top}})
    replies = await bayeux.exchange(orjson.dumps([message]))
    assert replies[0]["successful"], replies
    assert "timesync" not in replies[0].get("ext", {})
    sane = handshake_message("2", ext={"timesync": {"tc": 1_700_000_000_000, "l": 5, "o": 3}})
    answer = (await bayeux.exchange(orjson.dumps([sane])))[0]["ext"]["timesync"]
    assert answer["tc"] == 1_700_000_000_000 and {"ts", "p", "a"} <= set(answer)


async def test_deep_subscription_is_refused(bayeux: Bayeux) -> None:
    """/meta/subscribe with `subscription` nested 300 deep: 400::nesting_too_deep at once; the session goes on."""
    await bayeux.open()
    head = b'[{"channel":"/meta/subscribe","id":"9","clientId":"%s","subscription":' % str(bayeux.client_id).encode()
    replies = await bayeux.exchange(head + DEEP + b"}]")
    assert replies == [{"channel": "/meta/subscribe", "id": "9", "successful": False, "error": "400::nesting_too_deep"}]
    ok = {"channel": "/meta/subscribe", "clientId": bayeux.client_id, "subscription": "/chat/room"}
    assert (await bayeux.exchange(orjson.dumps([ok])))[-1]["successful"]


async def test_big_integer_in_a_batch_is_refused_alone(bayeux: Bayeux) -> None:
    """One message of a batch with an integer beyond 64 bits is refused; the others of the batch are served."""
    await bayeux.open()
    cid = str(bayeux.client_id).encode()
    raw = b'[{"channel":"/chat/room","id":"1","clientId":"%s","data":{"n":%d}},' % (cid, U64)
    raw += b'{"channel":"/meta/subscribe","id":"2","clientId":"%s","subscription":"/chat/room"}]' % cid
    replies = {m["id"]: m for m in await bayeux.exchange(raw)}
    assert replies["1"]["error"] == "400::integer_out_of_range"
    assert replies["2"]["successful"]


def _deep_list(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("bad", [_deep_list(300), {"n": 2**64}], ids=["deep", "int"])
async def test_unwritable_delivery_is_dropped_not_blocking(
    gateway: Gateway, http: aiohttp.ClientSession, bad: Any
) -> None:
    """A message the server cannot write (past the edge's checks: a server bug) is dropped for each session; a
    held long-polling connect is answered 200, no connection blocks, and the next event reaches everyone."""
    poller, ws = await subscribers(gateway, http)
    other = RawHttp(gateway.url, http)
    await other.open("/chat/room")
    held = asyncio.create_task(poller.connect())  # held until the bad event releases it
    await asyncio.sleep(0.2)
    await gateway.server.publish("/chat/room", {"bad": bad})
    first = await asyncio.wait_for(held, 5.0)  # answered (200), without the bad event
    assert all("bad" not in (m.get("data") or {}) for m in first), first
    await gateway.server.publish("/chat/room", {"text": "next"})
    await expect_delivery(poller, ws, "next")
    await poll_until(other, "next")
