"""Subscribe, unsubscribe, publish and delivery (bayeux.md checklist 29-43) and the server-side API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Gateway, wait_for
from tests.integration.raw import RawHttp


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def client(gateway: Gateway, http: aiohttp.ClientSession) -> RawHttp:
    raw = RawHttp(gateway.url, http)
    await raw.open()
    return raw


async def poll(raw: RawHttp) -> list[dict[str, Any]]:
    """Events waiting for a session (an immediate connect)."""
    replies = await raw.connect(advice={"timeout": 0})
    return [m for m in replies if m["channel"] != "/meta/connect"]


async def test_subscribe_string_echoed(client: RawHttp) -> None:
    """#29: a string subscription succeeds and is echoed as the identical string."""
    replies = await client.send({"channel": "/meta/subscribe", "subscription": "/chat/room"})
    assert replies == [
        {
            "channel": "/meta/subscribe",
            "id": replies[0]["id"],
            "subscription": "/chat/room",
            "successful": True,
        }
    ]


async def test_subscribe_array(client: RawHttp, gateway: Gateway) -> None:
    """#30: an array subscribes all and is echoed; one bad entry fails the whole reply."""
    ok = await client.send({"channel": "/meta/subscribe", "subscription": ["/chat/a", "/chat/b/**"]})
    assert ok[0]["successful"] is True and ok[0]["subscription"] == ["/chat/a", "/chat/b/**"]
    assert gateway.hub.sessions[client.client_id].subscriptions == {"/chat/a", "/chat/b/**"}
    bad = await client.send({"channel": "/meta/subscribe", "subscription": ["/chat/c", "/meta/x"]})
    assert bad[0]["successful"] is False
    assert "/chat/c" not in gateway.hub.sessions[client.client_id].subscriptions


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"channel": "/meta/subscribe"}, "403::subscription_missing"),
        ({"channel": "/meta/subscribe", "subscription": "/chat/<script>"}, "403::subscription_invalid"),
        ({"channel": "/meta/subscribe", "subscription": "/chat/*/x"}, "403::subscription_invalid"),
        ({"channel": "/meta/subscribe", "subscription": 5}, "403::subscription_invalid"),
        ({"channel": "/meta/subscribe", "subscription": []}, "403::subscription_invalid"),
        (
            {"channel": "/meta/subscribe", "subscription": "/meta/connect"},
            "403:denied_by_security_policy:create_denied",
        ),
        (
            {"channel": "/meta/subscribe", "subscription": "/private/x"},
            "403:denied_by_security_policy:subscribe_denied",
        ),
        (
            {"channel": "/meta/subscribe", "subscription": "/**"},
            "403:denied_by_security_policy:subscribe_denied",
        ),
    ],
)
async def test_subscribe_errors(client: RawHttp, message: dict[str, Any], error: str) -> None:
    """#31, #32: missing/invalid subscriptions and meta channels fail in-band; the value is echoed."""
    replies = await client.send(message)
    assert replies[0]["successful"] is False
    assert replies[0]["error"] == error
    if "subscription" in message:
        assert replies[0]["subscription"] == message["subscription"]


async def test_service_channels_never_broadcast(gateway: Gateway, http: aiohttp.ClientSession, client: RawHttp) -> None:
    """#33: subscribing to /service/** succeeds, but others' publishes there are never delivered."""
    replies = await client.send({"channel": "/meta/subscribe", "subscription": "/service/**"})
    assert replies[0]["successful"] is True
    other = RawHttp(gateway.url, http)
    await other.open()
    reply = await other.send({"channel": "/service/echo", "data": {"x": 1}})
    assert reply == [{"channel": "/service/echo", "id": reply[0]["id"], "successful": True}]
    assert await poll(client) == []


async def test_service_handler_replies_to_sender_with_id(gateway: Gateway, client: RawHttp) -> None:
    """#41: a /service handler's answer goes only to the sender, keeping the request id."""

    async def echo(session: Any, message: dict[str, Any]) -> Any:
        return {"echo": message["data"]}

    gateway.protocol.server.add_service("/service/echo", echo)
    replies = await client.send({"channel": "/service/echo", "data": "ping", "id": "77"})
    assert {"channel": "/service/echo", "data": {"echo": "ping"}, "id": "77"} in replies
    assert {"channel": "/service/echo", "id": "77", "successful": True} in replies


async def test_unsubscribe_stops_delivery(gateway: Gateway, client: RawHttp, http: aiohttp.ClientSession) -> None:
    """#34: unsubscribe echoes the subscription; no more events arrive for it."""
    await client.send({"channel": "/meta/subscribe", "subscription": "/chat/u"})
    replies = await client.send({"channel": "/meta/unsubscribe", "subscription": "/chat/u"})
    assert replies[0]["successful"] is True and replies[0]["subscription"] == "/chat/u"
    await gateway.protocol.server.publish("/chat/u", 1)
    assert await poll(client) == []


async def test_publish_reply_has_no_data(client: RawHttp) -> None:
    """#36: a publish is answered {channel, id, successful} even with no subscribers."""
    replies = await client.send({"channel": "/chat/nobody", "data": {"a": 1}, "id": "9"})
    assert replies == [{"channel": "/chat/nobody", "id": "9", "successful": True}]


async def test_one_copy_per_session_with_overlapping_patterns(gateway: Gateway, client: RawHttp) -> None:
    """#37, #38: /chat/*, /chat/** and /chat/room together still deliver one copy, without clientId/id."""
    await client.send({"channel": "/meta/subscribe", "subscription": ["/chat/*", "/chat/**", "/chat/room"]})
    replies = await client.send({"channel": "/chat/room", "data": "once", "id": "5", "ext": {"k": 1}})
    events = [m for m in replies if "data" in m]
    assert events == [{"channel": "/chat/room", "data": "once", "ext": {"k": 1}}]
    assert await poll(client) == []


async def test_publisher_receives_own_event(client: RawHttp) -> None:
    """#39: the publisher gets its own event when subscribed."""
    await client.send({"channel": "/meta/subscribe", "subscription": "/chat/self"})
    replies = await client.send({"channel": "/chat/self", "data": 1})
    assert {"channel": "/chat/self", "data": 1} in replies


@pytest.mark.parametrize(
    ("pattern", "delivered"),
    [
        ("/chat/*", {"/chat/a"}),
        ("/chat/**", {"/chat/a", "/chat/a/b"}),
        ("/chat/a", {"/chat/a"}),
    ],
)
async def test_wildcards(gateway: Gateway, client: RawHttp, pattern: str, delivered: set[str]) -> None:
    """#40: /x/* is one segment below, /x/** any depth below, neither matches /x itself."""
    await client.send({"channel": "/meta/subscribe", "subscription": pattern})
    for channel in ("/chat", "/chat/a", "/chat/a/b"):
        await gateway.protocol.server.publish(channel, channel)
    assert {m["channel"] for m in await poll(client)} == delivered


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"channel": "/meta/foo", "data": 1}, "403:denied_by_security_policy:channel_create_denied"),
        ({"channel": "/chat/<b>", "data": 1}, "405::channel_invalid"),
        ({"channel": "/chat/*", "data": 1}, "405::channel_invalid"),
        ({"channel": "chat", "data": 1}, "405::channel_invalid"),
        ({"channel": 17, "data": 1}, "405::channel_invalid"),
        ({"data": 1}, "400::channel_missing"),
        ({"channel": "/chat/x"}, "400::data_missing"),
        ({"channel": "/private/x", "data": 1}, "403:denied_by_security_policy:publish_denied"),
    ],
)
async def test_publish_errors(client: RawHttp, message: dict[str, Any], error: str) -> None:
    """#42, #43: unknown meta channels, bad names, missing fields and denied channels fail in-band."""
    replies = await client.send(message)
    assert replies[0]["successful"] is False
    assert replies[0]["error"] == error


async def test_non_object_message_is_in_band_error(client: RawHttp) -> None:
    """A batch element that is not an object gets its own in-band error; the others are served."""
    reply = await client.post(
        [
            42,
            {
                "channel": "/meta/connect",
                "clientId": client.client_id,
                "connectionType": "long-polling",
                "advice": {"timeout": 0},
            },
        ]
    )
    assert reply.status == 200
    assert reply.body[0] == {"successful": False, "error": "400::message_invalid"}
    assert reply.body[1]["successful"] is True


async def test_deliver_to_user_reaches_all_its_sessions_only(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """Server API: deliver_to_user reaches every subscribed session of that identity, nobody else's."""
    tabs = [RawHttp(gateway.url, http) for _ in range(3)]
    for tab in tabs:
        await tab.open("/chat/me")
    sessions = [gateway.hub.sessions[t.client_id] for t in tabs]
    # Identities arrive with the authentication issue; bind two sessions to "alice" by hand here.
    for session, user in zip(sessions, ["alice", "alice", "bob"], strict=True):
        session.user = user
        gateway.hub._by_user.setdefault(user, set()).add(session)
    await gateway.protocol.server.deliver_to_user("alice", "/chat/me", {"n": 1})
    got = [await poll(t) for t in tabs]
    assert got[0] == got[1] == [{"channel": "/chat/me", "data": {"n": 1}}]
    assert got[2] == []


async def test_deliver_to_session_and_server_disconnect(gateway: Gateway, client: RawHttp) -> None:
    """Server API: deliver to one session (subscribed or not); #65 a server disconnect ends it."""
    await gateway.protocol.server.deliver_to_session(client.client_id or "", "/chat/direct", "hello")
    assert await poll(client) == [{"channel": "/chat/direct", "data": "hello"}]
    held = asyncio.create_task(client.connect())
    await wait_for(lambda: gateway.hub.sessions[client.client_id].held is not None)
    await gateway.protocol.server.disconnect_session(client.client_id or "")
    replies = await held
    assert {"channel": "/meta/disconnect", "successful": True} in replies
    assert replies[-1]["advice"]["reconnect"] == "none"
    assert client.client_id not in gateway.hub.sessions
