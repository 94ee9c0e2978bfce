"""Requests aiohttp's parser refuses get the dialect's envelope when their path names a dialect.

Raw sockets: these requests cannot be sent by an HTTP client library. Each is sent with the lean path on
and off (the lean path hands them to aiohttp, which answers them in both cases).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from tests.conftest import StartGateway

JTEL = {"status": 400, "error": "Bad request"}
GWS = {"statusCode": 2, "statusMessage": "Invalid request"}
SNTIAL = {"statusText": "BadRequest", "statusCode": 400, "item": None, "message": "bad request"}
LONG = b"a" * 9000  # above aiohttp's 8190-byte limit for a request line or a header

CASES: dict[str, tuple[bytes, Any]] = {
    "jtel-long-query": (b"GET /rest/v1.0/1/dialler/campaigns?q=" + LONG + b" HTTP/1.1\r\nHost: x\r\n\r\n", JTEL),
    "jtel-bad-path": (b"POST /rest/v1.0/1/dia\x01ller HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", JTEL),
    "jtel-no-host": (b"GET /rest/v1.0/1/dialler/campaigns HTTP/1.1\r\n\r\n", JTEL),
    "gws-long-query": (b"GET /api/v2/me?q=" + LONG + b" HTTP/1.1\r\nHost: x\r\n\r\n", GWS),
    "gws-bad-path": (b"GET /api/v2/me\x7f HTTP/1.1\r\nHost: x\r\n\r\n", GWS),
    "gws-long-header": (b"GET /api/v2/me HTTP/1.1\r\nHost: x\r\nX-A: " + LONG + b"\r\n\r\n", GWS),
    "supervisor-bad-path": (b"GET /api/v2/supervisor/agents\x01 HTTP/1.1\r\nHost: x\r\n\r\n", GWS),
    "sntial-long-query": (b"GET /api/v1/SNtialWait/contact?q=" + LONG + b" HTTP/1.1\r\nHost: x\r\n\r\n", SNTIAL),
    "sntial-bad-path": (b"GET /api/v1/SNtialWait/contact\x01 HTTP/1.1\r\nHost: x\r\n\r\n", SNTIAL),
}


async def exchange(port: int, data: bytes) -> tuple[bytes, bytes, bytes]:
    """Status line, Content-Type and body of the answer to `data`; asserts the server then closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        lines = head.split(b"\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:] if line)}
        body = await asyncio.wait_for(reader.readexactly(int(fields[b"content-length"])), 3)
        assert await asyncio.wait_for(reader.read(1), 3) == b""  # closed, as after any parser refusal
        return lines[0], fields[b"content-type"], body
    finally:
        writer.close()


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "aiohttp"])
@pytest.mark.parametrize(("data", "envelope"), CASES.values(), ids=CASES.keys())
async def test_parser_refusals_in_the_dialects_envelope(
    start_gateway: StartGateway, lean: bool, data: bytes, envelope: Any
) -> None:
    """400 with the dialect's JSON body, not aiohttp's plain text; the connection closed."""
    gw = await start_gateway(lean_long_polling=lean)
    status, content_type, body = await exchange(int(gw.base.rsplit(":", 1)[1]), data)
    assert status.split(b" ")[1] == b"400"
    assert content_type == b"application/json"
    assert orjson.loads(body) == envelope


@pytest.mark.parametrize(
    "data",
    [
        b"GET /healthz\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/v2/meta\x01 HTTP/1.1\r\nHost: x\r\n\r\n",  # not under /api/v2/me
        b"POST /api/v2/notifications?a=\x01 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]",  # Bayeux
    ],
    ids=["other-path", "prefix-lookalike", "bayeux"],
)
async def test_other_paths_keep_aiohttps_answer(start_gateway: StartGateway, data: bytes) -> None:
    """Outside the dialects' prefixes a parser refusal stays aiohttp's plain-text 400."""
    gw = await start_gateway()
    status, content_type, _ = await exchange(int(gw.base.rsplit(":", 1)[1]), data)
    assert status.split(b" ")[1] == b"400"
    assert content_type.startswith(b"text/plain")


async def test_keep_alive_rest_connection_gets_the_envelope(start_gateway: StartGateway) -> None:
    """A second request on a kept-alive REST connection: its own path decides the envelope."""
    gw = await start_gateway()
    reader, writer = await asyncio.open_connection("127.0.0.1", int(gw.base.rsplit(":", 1)[1]))
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(b"GET /api/v2/me?q=" + LONG + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert b" 400 " in head.split(b"\r\n")[0]
        assert orjson.loads(await asyncio.wait_for(reader.read(), 3)) == GWS
    finally:
        writer.close()
