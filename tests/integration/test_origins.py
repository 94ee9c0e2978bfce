"""Cross-site requests to the Bayeux endpoint (issue 13): same-origin by default, opened only on purpose.

A browser request carries `Origin`. With the shipped `bayeux.allowed_origins: []` only the gateway's own origin
(the request's scheme and `Host`) is served: a page of another site gets 403 and no CORS headers on every
transport (the lean long-polling path, long-polling handed to aiohttp, callback-polling, the CORS preflight, the
WebSocket upgrade). Requests without `Origin` (aiocometd-ng, Node clients, curl) are served as before. Listed
origins and `bayeux.allow_any_origin: true` open it. Raw sockets where the path matters (lean or aiohttp).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import aiohttp
import orjson
import pytest

from gateway.settings import BayeuxSettings
from tests.certs import make_certificate
from tests.conftest import Gateway, StartGateway
from tests.integration.test_lean_http import HANDSHAKE, PATH, Conn, Response

EVIL = "https://evil.example"
DESK = "https://desk.example"
CORS = ("access-control-allow-origin", "access-control-allow-credentials")

Exchange = Callable[[Gateway, dict[str, str]], Awaitable[Response]]


def address(gw: Gateway) -> tuple[str, int]:
    """Host and port of an in-process gateway."""
    host, port = gw.base.split("://")[1].split(":")
    return host, int(port)


def own_origin(gw: Gateway) -> str:
    """The gateway's own origin as a browser on one of its pages sends it."""
    return gw.base


@contextlib.asynccontextmanager
async def raw(gw: Gateway, context: ssl.SSLContext | None = None) -> AsyncIterator[Conn]:
    """A raw TCP connection to `gw` (TLS with `context`)."""
    reader, writer = await asyncio.open_connection(*address(gw), ssl=context)
    try:
        yield Conn(reader, writer)
    finally:
        writer.close()


def head_lines(gw: Gateway, headers: dict[str, str]) -> str:
    """Header lines; a Host naming the gateway's address unless `headers` gives one."""
    host, port = address(gw)
    merged = {"Host": f"{host}:{port}", **headers}
    return "".join(f"{name}: {value}\r\n" for name, value in merged.items())


async def lean_post(gw: Gateway, headers: dict[str, str], context: ssl.SSLContext | None = None) -> Response:
    """A handshake POST of the usual shape: the lean path answers it."""
    body = orjson.dumps(HANDSHAKE)
    request = (
        f"POST {PATH} HTTP/1.1\r\n{head_lines(gw, headers)}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    async with raw(gw, context) as conn:
        await conn.send(request)
        reply = await conn.response()
    assert reply.lean, "the lean path should have answered"
    return reply


async def chunked_post(gw: Gateway, headers: dict[str, str]) -> Response:
    """A chunked handshake POST: outside the lean subset, so the lean path hands it to aiohttp."""
    body = orjson.dumps(HANDSHAKE)
    request = (
        (
            f"POST {PATH} HTTP/1.1\r\n{head_lines(gw, headers)}Content-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n"
        ).encode()
        + body
        + b"\r\n0\r\n\r\n"
    )
    async with raw(gw) as conn:
        await conn.send(request)
        reply = await conn.response()
    assert not reply.lean, "aiohttp should have answered"
    return reply


async def callback_get(gw: Gateway, headers: dict[str, str]) -> Response:
    """A callback-polling (JSONP) handshake GET: aiohttp serves it."""
    message = quote(json.dumps(HANDSHAKE))
    async with raw(gw) as conn:
        await conn.send(f"GET {PATH}?jsonp=cb&message={message} HTTP/1.1\r\n{head_lines(gw, headers)}\r\n".encode())
        return await conn.response()


async def preflight(gw: Gateway, headers: dict[str, str]) -> Response:
    """The CORS preflight a browser sends before a cross-origin JSON POST."""
    extra = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type", **headers}
    async with raw(gw) as conn:
        await conn.send(f"OPTIONS {PATH}/handshake HTTP/1.1\r\n{head_lines(gw, extra)}\r\n".encode())
        return await conn.response()


EXCHANGES: dict[str, Exchange] = {
    "lean-post": lean_post,
    "aiohttp-post": chunked_post,
    "callback-polling": callback_get,
    "preflight": preflight,
}


def refused(reply: Response) -> None:
    """403, and nothing a browser would let the foreign page read."""
    assert reply.status == 403, reply.body
    assert reply.json() == {"error": "origin not allowed"}
    for name in CORS:
        assert name not in reply.headers, reply.headers


def served_with_cors(reply: Response, origin: str) -> None:
    """Served, with the origin echoed and credentials allowed (the JS client sends cookies)."""
    assert reply.status == 200, reply.body
    assert reply.headers["access-control-allow-origin"] == origin
    assert reply.headers["access-control-allow-credentials"] == "true"


async def ws_status(gw: Gateway, headers: dict[str, str]) -> int:
    """101 when the WebSocket upgrade is accepted, else the HTTP status it got."""
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(gw.ws_url, headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


@pytest.mark.parametrize("kind", EXCHANGES)
async def test_foreign_origin_gets_no_credentialed_cors(gateway: Gateway, kind: str) -> None:
    """Default settings: a page of another site gets 403 and no CORS headers, on each HTTP path."""
    refused(await EXCHANGES[kind](gateway, {"Origin": EVIL}))
    # "null" (sandboxed frames, file: pages) is foreign too; and so is our host on another port or scheme.
    host, port = address(gateway)
    for foreign in ("null", f"http://{host}:{port + 1}", f"https://{host}:{port}"):
        refused(await EXCHANGES[kind](gateway, {"Origin": foreign}))


async def test_foreign_origin_websocket_upgrade_refused(gateway: Gateway) -> None:
    """Default settings: a WebSocket upgrade from another site's page is refused with 403 (no CSWSH)."""
    assert await ws_status(gateway, {"Origin": EVIL}) == 403
    assert await ws_status(gateway, {"Origin": "null"}) == 403


@pytest.mark.parametrize("kind", EXCHANGES)
async def test_same_origin_and_no_origin_are_served(gateway: Gateway, kind: str) -> None:
    """The gateway's own pages (the desktop) and clients that send no Origin keep working by default."""
    served_with_cors(await EXCHANGES[kind](gateway, {"Origin": own_origin(gateway)}), own_origin(gateway))
    plain = await EXCHANGES[kind](gateway, {})
    assert plain.status == 200 and not any(name in plain.headers for name in CORS)
    # The origin is compared with the Host the client used (case aside, the default port implied).
    served_with_cors(
        await EXCHANGES[kind](gateway, {"Host": "Desk.Local", "Origin": "http://desk.local"}), "http://desk.local"
    )
    served_with_cors(
        await EXCHANGES[kind](gateway, {"Host": "desk.local:80", "Origin": "http://desk.local"}), "http://desk.local"
    )
    refused(await EXCHANGES[kind](gateway, {"Host": "desk.local", "Origin": "http://desk.local:8080"}))
    refused(await EXCHANGES[kind](gateway, {"Host": "desk.local", "Origin": "https://desk.local"}))


async def test_same_origin_and_no_origin_websocket(gateway: Gateway) -> None:
    """A WebSocket from the gateway's own page, and one without Origin, are accepted."""
    assert await ws_status(gateway, {"Origin": own_origin(gateway)}) == 101
    assert await ws_status(gateway, {}) == 101


async def test_same_origin_over_tls(start_gateway: StartGateway, tmp_path: Path) -> None:
    """With server.tls the own origin is https://host:port (lean path behind TLS, WSS); http:// is foreign."""
    cert = make_certificate(tmp_path)
    gw = await start_gateway(extra={"server": {"tls": cert.tls_settings()}})
    context = cert.client_context()
    host, port = address(gw)
    served_with_cors(await lean_post(gw, {"Origin": gw.base}, context), gw.base)
    refused(await lean_post(gw, {"Origin": f"http://{host}:{port}"}, context))
    async with aiohttp.ClientSession() as http:
        ok = await http.ws_connect(gw.ws_url, headers={"Origin": f"https://{host}:{port}"}, ssl=context)
        await ok.close()
        with pytest.raises(aiohttp.WSServerHandshakeError) as no:
            await http.ws_connect(gw.ws_url, headers={"Origin": f"http://{host}:{port}"}, ssl=context)
        assert no.value.status == 403


@pytest.mark.parametrize("kind", EXCHANGES)
async def test_allow_any_origin_echoes_every_origin(start_gateway: StartGateway, kind: str) -> None:
    """bayeux.allow_any_origin: true is the explicit way to serve pages of any site, with credentials."""
    gw = await start_gateway(allow_any_origin=True)
    served_with_cors(await EXCHANGES[kind](gw, {"Origin": EVIL}), EVIL)
    if kind == "preflight":
        assert await ws_status(gw, {"Origin": EVIL}) == 101


@pytest.mark.parametrize("kind", EXCHANGES)
async def test_listed_origins_are_served(start_gateway: StartGateway, kind: str) -> None:
    """bayeux.allowed_origins: a listed origin is served with CORS; others are not; the own origin still is."""
    gw = await start_gateway(allowed_origins=[DESK])
    served_with_cors(await EXCHANGES[kind](gw, {"Origin": DESK}), DESK)
    refused(await EXCHANGES[kind](gw, {"Origin": EVIL}))
    served_with_cors(await EXCHANGES[kind](gw, {"Origin": own_origin(gw)}), own_origin(gw))
    if kind == "preflight":
        assert await ws_status(gw, {"Origin": DESK}) == 101
        assert await ws_status(gw, {"Origin": EVIL}) == 403


@pytest.mark.parametrize("origin", ["https://desk.example/", "https://desk.example/desktop", "desk.example", "*"])
def test_allowed_origins_must_be_origins(origin: str) -> None:
    """An entry that no browser would send as Origin (a path, a trailing '/', no scheme, '*') is a config error."""
    with pytest.raises(ValueError, match="is not an origin"):
        BayeuxSettings(allowed_origins=(origin,))
