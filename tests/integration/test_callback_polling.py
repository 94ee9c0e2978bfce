"""callback-polling (JSONP) transport (bayeux.md checklist 56-58)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Gateway
from tests.integration.raw import handshake_message


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def jsonp(http: aiohttp.ClientSession, url: str, callback: str, *messages: Any) -> tuple[int, Any, str]:
    params = [("jsonp", callback)] + [("message", json.dumps(m)) for m in messages]
    async with http.get(url, params=params) as resp:
        text = await resp.text()
        return resp.status, resp.headers, text


def unwrap(callback: str, body: str) -> list[dict[str, Any]]:
    match = re.fullmatch(re.escape(callback) + r"\((.*)\)", body, re.S)
    assert match, body
    result: list[dict[str, Any]] = json.loads(match.group(1))
    return result


async def test_jsonp_round_trip_and_events_only_in_connect(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """#56, #58: cb([...]) as text/javascript; events reach callback-polling only in connect replies."""
    status, headers, body = await jsonp(http, gateway.url, "_cometd_jsonp_1", [handshake_message()])
    assert status == 200
    assert headers["Content-Type"].startswith("text/javascript")
    assert headers["X-Content-Type-Options"] == "nosniff"
    client_id = unwrap("_cometd_jsonp_1", body)[0]["clientId"]
    base = {"clientId": client_id}
    connect = {"channel": "/meta/connect", "connectionType": "callback-polling", **base}
    await jsonp(http, gateway.url, "cb", {**connect, "id": "2"})
    _, _, body = await jsonp(
        http,
        gateway.url,
        "cb",
        {"channel": "/meta/subscribe", "subscription": "/chat/j", "id": "3", **base},
        {"channel": "/chat/j", "data": "x", "id": "4", **base},
    )
    replies = unwrap("cb", body)
    assert [m.get("data") for m in replies] == [None, None]  # own event held back for the connect
    _, _, body = await jsonp(http, gateway.url, "cb", {**connect, "id": "5", "advice": {"timeout": 0}})
    assert unwrap("cb", body)[0] == {"channel": "/chat/j", "data": "x"}


@pytest.mark.parametrize("callback", ["alert(1)//", "a b", "x" * 65, "<script>", ""])
async def test_bad_callback_names_rejected(gateway: Gateway, http: aiohttp.ClientSession, callback: str) -> None:
    """#57: a callback outside [a-zA-Z0-9._-]{1,64} is refused and never reflected."""
    status, headers, body = await jsonp(http, gateway.url, callback, [handshake_message()])
    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
    assert callback not in body or callback == ""
