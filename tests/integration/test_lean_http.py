"""The lean long-polling path (transport/lean.py): what it serves itself, and what it leaves to aiohttp.

Raw sockets, so each test controls exactly which bytes arrive and when. A response without aiohttp's
`Server` header came from the lean path; one with it came from aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.conftest import Gateway, StartGateway

PATH = "/api/v2/notifications"


@dataclass
class Response:
    """One parsed HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return orjson.loads(self.body)

    @property
    def lean(self) -> bool:
        """True when the lean path answered (aiohttp always sends a Server header)."""
        return "server" not in self.headers


class Conn:
    """One keep-alive TCP connection with a hand-written HTTP/1.1 client."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        """Write raw bytes."""
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, timeout: float = 5.0) -> Response:
        """Read one response (100 Continue skipped), by Content-Length."""
        while True:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if status != 100:
                break
        body = await asyncio.wait_for(self.reader.readexactly(int(headers.get("content-length", "0"))), timeout)
        return Response(status, headers, body)

    async def closed(self, timeout: float = 5.0) -> bool:
        """True when the server closed the connection (EOF or reset)."""
        try:
            return await asyncio.wait_for(self.reader.read(1), timeout) == b""
        except ConnectionResetError:
            return True


def post(body: Any, *, path: str = PATH, extra: str = "") -> bytes:
    """A long-polling POST as a browser or the CometD JS client sends it."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json;charset=UTF-8\r\n"
        f"Content-Length: {len(data)}\r\n{extra}\r\n"
    )
    return head.encode() + data


HANDSHAKE = [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"], "id": "1"}]


def connect(client_id: str, msg_id: str = "2") -> list[dict[str, Any]]:
    """A /meta/connect message."""
    return [{"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling", "id": msg_id}]


@pytest.fixture
async def conn(gateway: Gateway) -> AsyncIterator[Conn]:
    """A raw connection to the in-process gateway."""
    host, port = gateway.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    yield Conn(reader, writer)
    writer.close()


async def handshake(conn: Conn) -> str:
    """Handshake over `conn`; the clientId."""
    await conn.send(post(HANDSHAKE))
    reply = await conn.response()
    assert reply.status == 200 and reply.json()[0]["successful"] is True
    return str(reply.json()[0]["clientId"])


async def test_long_polling_is_served_by_the_lean_path(conn: Conn) -> None:
    """A plain long-polling POST is answered by the lean path, with the same JSON as aiohttp would send."""
    await conn.send(post(HANDSHAKE))
    reply = await conn.response()
    assert reply.lean
    assert reply.headers["content-type"] == "application/json"
    assert "date" in reply.headers
    assert reply.json()[0]["channel"] == "/meta/handshake" and reply.json()[0]["successful"] is True


async def test_switched_off_aiohttp_serves_long_polling(start_gateway: StartGateway) -> None:
    """bayeux.lean_long_polling: false leaves everything to aiohttp."""
    gw = await start_gateway(lean_long_polling=False)
    host, port = gw.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        plain = Conn(reader, writer)
        await plain.send(post(HANDSHAKE))
        reply = await plain.response()
        assert not reply.lean and reply.json()[0]["successful"] is True
    finally:
        writer.close()


async def test_pipelined_requests_are_answered_in_order(conn: Conn) -> None:
    """Two requests in one write: two answers, in request order, on the same connection."""
    client_id = await handshake(conn)
    subscribe = [{"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/chat/a", "id": "3"}]
    await conn.send(post(connect(client_id)) + post(subscribe))
    first, second = await conn.response(), await conn.response()
    assert first.json()[-1]["channel"] == "/meta/connect" and first.json()[-1]["successful"] is True
    assert second.json()[0]["channel"] == "/meta/subscribe" and second.json()[0]["successful"] is True


async def test_request_arriving_byte_by_byte(conn: Conn) -> None:
    """A request split into single bytes is answered once complete."""
    for byte in post(HANDSHAKE):
        await conn.send(bytes([byte]))
    reply = await conn.response()
    assert reply.lean and reply.json()[0]["successful"] is True


async def test_held_connect_answered_by_a_publish(gateway: Gateway, conn: Conn) -> None:
    """A held connect is answered with the published event when it arrives."""
    client_id = await handshake(conn)
    subscribe = [{"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/chat/held", "id": "3"}]
    await conn.send(post(subscribe))
    await conn.response()
    await conn.send(post(connect(client_id, "4")))
    await conn.response()  # the first connect is answered at once
    await conn.send(post(connect(client_id, "5")))
    await asyncio.sleep(0.1)
    await gateway.server.publish("/chat/held", {"text": "hi"})
    reply = await conn.response()
    assert reply.lean
    assert reply.json()[0] == {"channel": "/chat/held", "data": {"text": "hi"}}
    assert reply.json()[-1]["channel"] == "/meta/connect" and reply.json()[-1]["id"] == "5"


async def test_other_requests_on_the_connection_go_to_aiohttp(conn: Conn) -> None:
    """After a long-polling POST, a GET on the same connection is aiohttp's, and so is the rest."""
    await handshake(conn)
    await conn.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    health = await conn.response()
    assert health.status == 200 and not health.lean and health.json() == {"status": "ok"}
    await conn.send(post(HANDSHAKE))
    again = await conn.response()
    assert not again.lean and again.json()[0]["successful"] is True


@pytest.mark.parametrize(
    "request_bytes",
    [
        # chunked body
        b"POST "
        + PATH.encode()
        + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(orjson.dumps(HANDSHAKE))
        + orjson.dumps(HANDSHAKE)
        + b"\r\n0\r\n\r\n",
        # Expect: 100-continue
        post(HANDSHAKE, extra="Expect: 100-continue\r\n"),
        # HTTP/1.0
        post(HANDSHAKE).replace(b"HTTP/1.1", b"HTTP/1.0", 1),
        # a CometD suffix with a query string is still lean: see the lean test below
    ],
    ids=["chunked", "expect-continue", "http-1.0"],
)
async def test_unusual_requests_are_served_by_aiohttp(conn: Conn, request_bytes: bytes) -> None:
    """Requests outside the lean subset are handed to aiohttp, which serves them in full."""
    await conn.send(request_bytes)
    reply = await conn.response()
    assert reply.status == 200 and not reply.lean
    assert reply.json()[0]["channel"] == "/meta/handshake" and reply.json()[0]["successful"] is True


async def test_suffix_and_query_stay_lean(conn: Conn) -> None:
    """The CometD JS client's URL suffixes (and a query string) reach the endpoint on the lean path."""
    await conn.send(post(HANDSHAKE, path=PATH + "/handshake?x=1"))
    reply = await conn.response()
    assert reply.lean and reply.json()[0]["successful"] is True


@pytest.mark.parametrize(
    "request_bytes",
    [
        post(HANDSHAKE, extra="Content-Length: 3\r\n"),  # two different lengths
        post(HANDSHAKE, extra="Bad Header: x\r\n"),  # space in a header name
        post(HANDSHAKE, extra="X-Folded: a\r\n b\r\n"),  # obsolete line folding
    ],
    ids=["two-content-lengths", "bad-header-name", "folded-header"],
)
async def test_malformed_requests_get_aiohttp_400(conn: Conn, request_bytes: bytes) -> None:
    """Malformed requests are left to aiohttp's parser: 400, never a Bayeux answer."""
    await conn.send(request_bytes)
    reply = await conn.response()
    assert reply.status == 400 and not reply.lean


async def test_oversized_body_is_refused_and_the_connection_closed(start_gateway: StartGateway) -> None:
    """Content-Length above bayeux.max_body_bytes: 413 at once, before the body; close once the body is read."""
    gw = await start_gateway(max_body_bytes=1000)
    host, port = gw.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        big = Conn(reader, writer)
        await big.send(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n".encode())
        reply = await big.response()
        assert reply.status == 413 and reply.lean and reply.json() == {"error": "request body too large"}
        assert reply.headers["connection"] == "close"
        await big.send(b"x" * 1001)  # the lingering close reads (and drops) the body, then closes
        assert await big.closed(timeout=1)
    finally:
        writer.close()


async def test_connection_close_is_honoured(conn: Conn) -> None:
    """`Connection: close`: the answer says so, and the server closes."""
    await conn.send(post(HANDSHAKE, extra="Connection: close\r\n"))
    reply = await conn.response()
    assert reply.lean and reply.headers["connection"] == "close"
    assert await conn.closed()


async def test_bad_json_gets_the_transport_error(conn: Conn) -> None:
    """Unparseable JSON is a 400 with the transport's error body, on the lean path too."""
    await conn.send(post(b"{nope"))
    reply = await conn.response()
    assert reply.status == 400 and reply.lean and reply.json() == {"error": "body is not valid JSON"}


async def test_client_gone_while_held_does_not_disturb_others(gateway: Gateway, conn: Conn) -> None:
    """A client that drops its connection with a connect held: the publish still reaches everyone else."""
    dropping = await handshake(conn)
    await conn.send(post(connect(dropping)))
    await conn.response()
    await conn.send(post(connect(dropping, "3")))
    await asyncio.sleep(0.05)
    conn.writer.close()
    host, port = gateway.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        other = Conn(reader, writer)
        client_id = await handshake(other)
        subscribe = [{"channel": "/meta/subscribe", "clientId": client_id, "subscription": "/chat/gone", "id": "3"}]
        await other.send(post(subscribe))
        await other.response()
        await gateway.server.publish("/chat/gone", {"n": 1})
        await other.send(post(connect(client_id, "4")))
        reply = await other.response()
        assert {"channel": "/chat/gone", "data": {"n": 1}} in reply.json()
    finally:
        writer.close()


async def test_idle_keepalive_connections_are_closed(start_gateway: StartGateway) -> None:
    """server.keepalive_timeout_s closes an idle connection, but never one whose connect is held."""
    gw = await start_gateway(extra={"server": {"keepalive_timeout_s": 0.4}}, timeout_ms=1500)
    host, port = gw.base.removeprefix("http://").split(":")
    idle = Conn(*await asyncio.open_connection(host, int(port)))
    holding = Conn(*await asyncio.open_connection(host, int(port)))
    try:
        await handshake(idle)
        client_id = await handshake(holding)
        await holding.send(post(connect(client_id)))
        await holding.response()
        await holding.send(post(connect(client_id, "3")))  # held for 1.5 s, longer than the keep-alive timeout
        assert await idle.closed(timeout=3)
        reply = await holding.response(timeout=3)
        assert reply.json()[-1]["channel"] == "/meta/connect" and reply.json()[-1]["successful"] is True
    finally:
        idle.writer.close()
        holding.writer.close()


async def test_half_closed_client_gets_its_answers_then_the_close(conn: Conn) -> None:
    """A client that sends two requests and half-closes gets both answers, then the server closes."""
    await conn.send(post(HANDSHAKE) + post(HANDSHAKE))
    conn.writer.write_eof()
    first, second = await conn.response(), await conn.response()
    assert first.lean and second.lean
    assert first.json()[0]["successful"] is True and second.json()[0]["successful"] is True
    assert await conn.closed()
