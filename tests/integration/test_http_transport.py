"""long-polling over HTTP: framing, routes, status codes and bad input (bayeux.md checklist 1-7, 12)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import Gateway, StartGateway
from tests.integration.raw import RawHttp, handshake_message


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def raw(gateway: Gateway, http: aiohttp.ClientSession) -> RawHttp:
    return RawHttp(gateway.url, http)


async def test_array_in_json_array_out(raw: RawHttp) -> None:
    """#1: an array of messages gets 200, application/json and an array."""
    reply = await raw.post([handshake_message()])
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert isinstance(reply.body, list) and reply.body[0]["successful"] is True


async def test_single_object_is_a_one_element_batch(raw: RawHttp) -> None:
    """#2: a bare object is processed like a one-element array."""
    reply = await raw.post(handshake_message())
    assert reply.status == 200
    assert len(reply.body) == 1 and reply.body[0]["channel"] == "/meta/handshake"


async def test_missing_content_type_is_json(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#3: a POST without Content-Type is read as UTF-8 JSON."""
    async with http.post(
        gateway.url,
        data=b'[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]',
        skip_auto_headers=["Content-Type"],
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body[0]["successful"] is True


async def test_unparseable_json_is_400(raw: RawHttp) -> None:
    """#4: bad JSON gets HTTP 400 with a JSON error, no traceback."""
    reply = await raw.post(None, raw=b'[{"channel": "/meta/handshake",')
    assert reply.status == 400
    assert "JSON" in reply.body["error"]
    assert "Traceback" not in reply.text


@pytest.mark.parametrize("payload", [b"[]", b"42", b'"text"', b"null"])
async def test_empty_or_scalar_body_is_an_error_status(raw: RawHttp, payload: bytes) -> None:
    """#5: `[]` (and bodies that are not messages) get an error status, never 200 with []."""
    reply = await raw.post(None, raw=payload)
    assert reply.status == 400
    assert reply.body["error"]


async def test_options_preflight_on_every_route(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """#6: OPTIONS on the endpoint and its suffixes answers 200 with CORS for an allowed origin."""
    gateway = await start_gateway(allowed_origins=["http://desk.example"])  # same-origin only by default
    for suffix in ("", "/handshake", "/connect", "/disconnect"):
        async with http.options(
            gateway.url + suffix,
            headers={"Origin": "http://desk.example", "Access-Control-Request-Method": "POST"},
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == "http://desk.example"
            assert resp.headers["Access-Control-Allow-Credentials"] == "true"
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("suffix", ["", "/", "/handshake", "/connect", "/subscribe", "/unsubscribe", "/disconnect"])
async def test_js_client_suffixes_reach_the_endpoint(raw: RawHttp, suffix: str) -> None:
    """#7: POSTs to the base path and each suffix the JS client appends are handled by Bayeux."""
    reply = await raw.post([handshake_message()], path=suffix)
    assert reply.status == 200 and reply.body[0]["successful"] is True


async def test_browser_cookie_set_once(gateway: Gateway) -> None:
    """#12: the handshake sets BAYEUX_BROWSER (HttpOnly, Path=/) unless the client already has one."""
    # unsafe=True: aiohttp's default jar ignores cookies of IP hosts; a browser keeps them.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await _cookie_set_once(RawHttp(gateway.url, http))


async def _cookie_set_once(raw: RawHttp) -> None:
    reply = await raw.post([handshake_message()])
    cookie = reply.headers.get("Set-Cookie", "")
    assert cookie.startswith("BAYEUX_BROWSER=")
    assert "HttpOnly" in cookie and "Path=/" in cookie
    again = await raw.post([handshake_message()])  # the session's jar now sends the cookie back
    assert "Set-Cookie" not in again.headers


async def test_oversized_body_is_413(start_gateway, http: aiohttp.ClientSession) -> None:  # type: ignore[no-untyped-def]
    """Bodies over bayeux.max_body_bytes are refused with 413 before parsing."""
    gw = await start_gateway(max_body_bytes=2048)
    raw = RawHttp(gw.url, http)
    big = [handshake_message(ext={"pad": "x" * 4096})]
    reply = await raw.post(big)
    assert reply.status == 413
    ok = await raw.post([handshake_message()])
    assert ok.status == 200


async def test_too_many_messages_is_413(start_gateway, http: aiohttp.ClientSession) -> None:  # type: ignore[no-untyped-def]
    """More than bayeux.max_messages_per_request messages in one request are refused."""
    gw = await start_gateway(max_messages_per_request=3)
    raw = RawHttp(gw.url, http)
    reply = await raw.post([handshake_message(str(i)) for i in range(4)])
    assert reply.status == 413
    assert "3" in reply.body["error"]


async def test_get_without_jsonp_is_400(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """A GET that is neither a WebSocket upgrade nor callback-polling: 400 Unknown Bayeux Transport."""
    async with http.get(gateway.url) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "Unknown Bayeux Transport"
