"""WebSocket limits: a socket that stops reading is cut, a socket whose session is gone is closed, pings on."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest

from gateway.settings import BayeuxSettings
from tests.conftest import Gateway, StartGateway, wait_for
from tests.integration.raw import RawWs, handshake_message
from tests.integration.test_metrics import scrape


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client_frame(payload: bytes) -> bytes:
    """One masked text frame (clients must mask)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def stalled_socket(gw: Gateway) -> socket.socket:
    """A raw WebSocket with a tiny receive buffer that handshakes a session, then never reads again."""
    url = urlsplit(gw.ws_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (url.hostname, url.port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)  # byte by byte: not one byte of a frame is read
    assert head.startswith(b"HTTP/1.1 101"), head
    await loop.sock_sendall(sock, client_frame(orjson.dumps([handshake_message("1")])))
    await wait_for(lambda: len(gw.hub.sessions) == 1)
    return sock


async def test_socket_that_stops_reading_is_cut(start_gateway: StartGateway) -> None:
    """Events published to a session whose client stopped reading: the socket is cut within the drain
    timeout and counted; the session lives on (unbound) until it expires."""
    gw = await start_gateway(ws_drain_timeout_s=1.0, ws_ping_interval_s=None, max_queue=100_000)
    before = (await scrape(gw))[("gateway_websocket_cut_total", (("reason", "drain_timeout"),))]
    sock = await stalled_socket(gw)
    (session,) = gw.hub.sessions.values()
    chunk = "x" * 16_000
    started = asyncio.get_running_loop().time()
    for i in range(400):  # ~6 MB: far beyond every socket buffer on the way
        await gw.server.deliver_to_session(session.client_id, "/chat/flood", {"i": i, "pad": chunk})
    await wait_for(lambda: session.pusher is None, timeout=10)
    elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < 1.0 + 3.0, elapsed  # the timeout, plus the time to fill the buffers
    after = (await scrape(gw))[("gateway_websocket_cut_total", (("reason", "drain_timeout"),))]
    assert after == before + 1
    assert session.client_id in gw.hub.sessions  # the session is not removed by the cut
    sock.close()


async def test_socket_of_removed_session_is_closed(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """Removed by the server (its held connect answered first) or expired: the socket is closed (1000)."""
    gw = await start_gateway(max_interval_ms=400)
    ws = RawWs(await http.ws_connect(gw.ws_url))
    await ws.open()
    await ws.send(ws.connect_message())
    session = gw.hub.sessions[ws.client_id or ""]
    await wait_for(lambda: session.held is not None)
    gw.hub.remove(session, "test")
    reply = await ws.recv()
    assert reply[0]["channel"] == "/meta/connect" and reply[0]["advice"]["reconnect"] == "none"
    closing = await ws.ws.receive(timeout=2)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1000

    idle = RawWs(await http.ws_connect(gw.ws_url))
    await idle.open()  # no further connect: the session expires after interval + max_interval
    closing = await idle.ws.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1000
    assert idle.client_id not in gw.hub.sessions


async def test_pings_on_by_default(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """The server pings (default every 25 s; here 0.3 s): a client without autoping sees PING frames."""
    assert BayeuxSettings().ws_ping_interval_s == 25
    gw = await start_gateway(ws_ping_interval_s=0.3)
    ws = await http.ws_connect(gw.ws_url, autoping=False)
    msg = await ws.receive(timeout=2)
    assert msg.type == aiohttp.WSMsgType.PING
    await ws.pong(msg.data)
    await ws.close()
