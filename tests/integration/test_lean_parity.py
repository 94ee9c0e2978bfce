"""The lean path answers malformed requests exactly as aiohttp does, and lingers after a 413.

Each request is sent, as raw bytes, to a gateway with the lean path and to one without
(`bayeux.lean_long_polling: false`); status, body and whether the connection stays open must be equal.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.conftest import StartGateway

PATH = b"/api/v2/notifications"
BODY = orjson.dumps(
    [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"], "id": "1"}]
)


def request(target: bytes = PATH, headers: bytes = b"Host: x\r\n", eol: bytes = b"\r\n") -> bytes:
    """A long-polling POST with the given target, header lines and line ending."""
    head = b"POST " + target + b" HTTP/1.1" + eol + headers.replace(b"\r\n", eol)
    return head + b"Content-Length: %d" % len(BODY) + eol + eol + BODY


Outcome = tuple[bytes, bytes, bool]  # status line, body, connection still open afterwards


async def exchange(port: int, data: bytes) -> Outcome:
    """Send `data` on a fresh connection; the status line, the body, and whether the server kept it open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        lines = head.split(b"\r\n")
        length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:"))
        body = await asyncio.wait_for(reader.readexactly(length), 3)
        try:
            open_ = await asyncio.wait_for(reader.read(1), 0.3) != b""
        except TimeoutError:
            open_ = True
        except ConnectionResetError:
            open_ = False
        return lines[0], _without_client_id(body), open_
    finally:
        writer.close()


def _without_client_id(body: bytes) -> bytes:
    """A handshake answer with its clientId blanked (each gateway makes its own)."""
    if not body.startswith(b"[{"):
        return body
    messages = orjson.loads(body)
    return orjson.dumps([{**m, "clientId": "-"} if "clientId" in m else m for m in messages])


async def ports(start_gateway: StartGateway, **bayeux: object) -> tuple[int, int]:
    """A gateway with the lean path and one without; their ports."""
    lean = await start_gateway(**bayeux)
    plain = await start_gateway(lean_long_polling=False, **bayeux)
    return int(lean.base.rsplit(":", 1)[1]), int(plain.base.rsplit(":", 1)[1])


CASES = {
    "bare-lf": request(eol=b"\n"),
    "bare-lf-in-a-header": request(headers=b"Host: x\nX-A: b\r\n"),
    "bare-cr-in-a-header": request(headers=b"Host: x\rX-A: b\r\n"),
    "control-char-in-header": request(headers=b"Host: x\r\nX-A: a\x01b\r\n"),
    "del-in-header": request(headers=b"Host: x\r\nX-A: a\x7fb\r\n"),
    "tab-in-header": request(headers=b"Host: x\r\nX-A: a\tb\r\n"),  # allowed by both
    "obs-text-in-header": request(headers=b"Host: x\r\nX-A: a\xe9b\r\n"),  # allowed by both
    "control-char-in-query": request(target=PATH + b"?a=\x01"),
    "tab-in-query": request(target=PATH + b"?a=\tb"),
    "non-ascii-in-query": request(target=PATH + b"?a=\xe9"),
    "odd-query": request(target=PATH + b'?a={b}|<c>"d#e'),  # aiohttp serves it: so must the lean path
    "missing-host": request(headers=b""),
    "two-hosts": request(headers=b"Host: a\r\nHost: b\r\n"),
    "empty-host": request(headers=b"Host:\r\n"),  # allowed by both
    "keep-alive-close": request(headers=b"Host: x\r\nConnection: keep-alive, close\r\n"),
    "close-keep-alive": request(headers=b"Host: x\r\nConnection: close, keep-alive\r\n"),
    "two-connection-headers": request(headers=b"Host: x\r\nConnection: keep-alive\r\nConnection: TE, Close \r\n"),
    "not-close": request(headers=b"Host: x\r\nConnection: xclose\r\n"),
    # aiohttp takes at most 128 header lines (Content-Length is the last one here)
    "128-headers": request(headers=b"Host: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(126))),
    "129-headers": request(headers=b"Host: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(127))),
}


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
async def test_lean_answers_as_aiohttp(start_gateway: StartGateway, data: bytes) -> None:
    """Same status line, body and keep-alive behaviour with the lean path on and off."""
    lean, plain = await ports(start_gateway)
    expected = await exchange(plain, data)
    assert await exchange(lean, data) == expected


async def test_oversized_body_still_arriving_gets_the_413(start_gateway: StartGateway) -> None:
    """A client that keeps sending a body above the limit reads the whole 413, not a reset (both paths)."""
    body = b"x" * 400_000
    data = b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    for port in await ports(start_gateway, max_body_bytes=1000):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(data)
            for start in range(0, len(body), 16384):  # the whole body, before reading anything
                writer.write(body[start : start + 16384])
                await asyncio.wait_for(writer.drain(), 5)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 413 ")
            answer = b'{"error":"request body too large"}'
            assert b"Content-Length: %d\r\n" % len(answer) in head
            assert await asyncio.wait_for(reader.readexactly(len(answer)), 5) == answer
        finally:
            writer.close()


async def test_lingering_close_is_bounded(start_gateway: StartGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 413's lingering close ends after LINGER_BYTES of body or LINGER_S seconds, whichever comes first."""
    from gateway.transport import lean

    monkeypatch.setattr(lean, "LINGER_BYTES", 5000)
    monkeypatch.setattr(lean, "LINGER_S", 0.3)
    gw = await start_gateway(max_body_bytes=1000)
    port = int(gw.base.rsplit(":", 1)[1])
    head = b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    for sent in (b"x" * 5000, b""):  # the byte bound; the time bound (the body never comes)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head + sent)
            response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
            assert response.startswith(b"HTTP/1.1 413 ")
            await asyncio.wait_for(reader.read(), 2)  # EOF: closed by the server
        finally:
            writer.close()
