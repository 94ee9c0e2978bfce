"""BayeuxProtocol's rules, message by message, over the real Hub, broker and server API (no transport)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from gateway.bayeux import errors
from gateway.bayeux.ext_ack import AckExtension
from gateway.bayeux.ext_timesync import TimesyncExtension
from gateway.bayeux.extensions import Extensions
from gateway.bayeux.logs import LogPolicy
from gateway.bayeux.protocol import BayeuxProtocol, Outcome, RequestContext
from gateway.bayeux.security import GatewayPolicy, OpenPolicy, SecurityPolicy
from gateway.bayeux.server import BayeuxServer
from gateway.broker.memory import MemoryBroker
from gateway.broker.relay import Relay
from gateway.hub.hub import Hub
from gateway.hub.session import Session, WakeReason
from gateway.identity import Directory
from gateway.logins import Logins
from gateway.settings import BayeuxSettings, SecuritySettings, UserSettings
from gateway.wire.message import Message
from tests.seams.clock import FakeClock

Messages = list[Message]
LP = "long-polling"


class Gateway:
    """The Bayeux core as app.py wires it: hub <- memory broker <- server API; the protocol over the hub."""

    def __init__(self, *, policy: SecurityPolicy | None = None, **bayeux: Any) -> None:
        self.settings = BayeuxSettings(**{"client_publish": ("/chat/**",), **bayeux})
        self.clock = FakeClock()
        self.hub = Hub(max_queue=50, overflow="drop_oldest", max_interval_s=10.0, clock=self.clock)
        self.broker = MemoryBroker()
        self.server = BayeuxServer(
            broker=self.broker, relay=Relay(self.broker), logs=LogPolicy(channels=(), enabled=False)
        )
        self.protocol = BayeuxProtocol(
            hub=self.hub,
            server=self.server,
            policy=policy or OpenPolicy(client_publish=self.settings.client_publish),
            extensions=Extensions([AckExtension(), TimesyncExtension()]),
            settings=self.settings,
        )

    async def start(self) -> None:
        """Start the broker into the hub (app.py's cleanup context)."""
        await self.broker.start(self.hub.dispatch)

    async def send(
        self, *messages: Any, transport: str = LP, headers: Mapping[str, str] | None = None, browser: str = "b"
    ) -> Outcome:
        """One request carrying `messages`."""
        ctx = RequestContext(transport=transport, headers=headers or {}, browser_id=browser)
        return await self.protocol.process(list(messages), ctx)

    async def handshake(self, **extra: Any) -> str:
        """A successful handshake; the clientId."""
        (reply,) = (await self.send({"channel": "/meta/handshake", "version": "1.0", **extra})).messages
        assert reply["successful"] is True, reply
        client_id: str = reply["clientId"]
        return client_id

    async def connected(self) -> str:
        """A handshaken session whose first connect was answered."""
        client_id = await self.handshake()
        (reply,) = (await self.send(connect(client_id))).messages
        assert reply["successful"] is True
        return client_id

    def session(self, client_id: str) -> Session:
        """The hub's session."""
        session = self.hub.get(client_id)
        assert session is not None
        return session


def connect(client_id: str | None, **extra: Any) -> Message:
    """A /meta/connect."""
    return {"channel": "/meta/connect", "clientId": client_id, "connectionType": LP, **extra}


def subscribe(client_id: str, subscription: Any, **extra: Any) -> Message:
    """A /meta/subscribe."""
    return {"channel": "/meta/subscribe", "clientId": client_id, "subscription": subscription, **extra}


@pytest.fixture
async def gw() -> Gateway:
    """A started core with the open policy (clients may use /chat/**)."""
    gateway = Gateway()
    await gateway.start()
    return gateway


# -- handshake ---------------------------------------------------------------------------------------


async def test_handshake_creates_a_session_and_answers_in_full(gw: Gateway) -> None:
    """The reply has version, the served connection types, a new clientId, full advice and the id."""
    outcome = await gw.send({"channel": "/meta/handshake", "version": "1.0", "id": "1"})
    (reply,) = outcome.messages
    assert reply["successful"] is True and reply["id"] == "1" and reply["channel"] == "/meta/handshake"
    assert reply["version"] == "1.0" and reply["minimumVersion"] == "1.0"
    assert reply["supportedConnectionTypes"] == ["websocket", "long-polling", "callback-polling"]
    assert reply["advice"] == {"reconnect": "retry", "interval": 0, "timeout": 30000}
    assert outcome.session is not None and gw.hub.get(reply["clientId"]) is outcome.session
    assert len(reply["clientId"]) == 40 and reply["clientId"].isalnum()
    assert await gw.handshake() != reply["clientId"]


async def test_handshake_offers_only_the_configured_transports() -> None:
    """supportedConnectionTypes lists what bayeux.transports serves."""
    gw = Gateway(transports=("long-polling",))
    (reply,) = (await gw.send({"channel": "/meta/handshake", "version": "1.0"})).messages
    assert reply["supportedConnectionTypes"] == ["long-polling"]


async def test_handshake_does_not_check_version_or_connection_types(gw: Gateway) -> None:
    """Lenient as it stands: another version, unknown connection types or none at all still handshake
    (errors.VERSION_INVALID and CONNECTION_TYPE_INVALID are in the table but unused)."""
    for extra in ({"version": "2.0"}, {"supportedConnectionTypes": ["flash"]}, {}):
        (reply,) = (await gw.send({"channel": "/meta/handshake", **extra})).messages
        assert reply["successful"] is True, extra


async def test_http_handshake_without_browser_cookie_gets_one() -> None:
    """Over HTTP a browser id is made for the transport to set as a cookie; a WebSocket gets none."""
    gw = Gateway()
    ctx = RequestContext(transport=LP, headers={})
    await gw.protocol.process([{"channel": "/meta/handshake"}], ctx)
    assert ctx.new_browser_id is not None and len(ctx.new_browser_id) == 16
    ws = RequestContext(transport="websocket", headers={})
    await gw.protocol.process([{"channel": "/meta/handshake"}], ws)
    assert ws.new_browser_id is None


async def test_handshake_denied_by_the_policy() -> None:
    """Wrong or missing credentials: 403::handshake_denied, advice reconnect none, no session."""
    users = Directory.from_settings([UserSettings(name="agent1", role="agent", password="right-password")])
    logins = Logins(directory=users, settings=SecuritySettings())
    gw = Gateway(policy=GatewayPolicy(logins=logins, client_publish=()))
    for ext in ({}, {"ext": {"authentication": {"user": "agent1", "password": "wrong"}}}):
        (reply,) = (await gw.send({"channel": "/meta/handshake", "id": "7", **ext})).messages
        assert reply["successful"] is False and reply["error"] == errors.HANDSHAKE_DENIED and reply["id"] == "7"
        assert reply["advice"] == {"reconnect": "none", "interval": 0}
        assert "clientId" not in reply
    assert gw.hub.sessions == {}
    good = {"ext": {"authentication": {"user": "agent1", "password": "right-password"}}}
    (reply,) = (await gw.send({"channel": "/meta/handshake", **good})).messages
    assert reply["successful"] is True and gw.session(reply["clientId"]).user == "agent1"


# -- connect -----------------------------------------------------------------------------------------


async def test_unknown_client_is_told_to_handshake(gw: Gateway) -> None:
    """A connect with no or an unknown clientId: 402::session_unknown, advice handshake (with the timeout, so a
    client that times its requests by the last advice still bounds its handshake); other channels get the
    error without advice."""
    for client_id in (None, "nonexistent", 12):
        (reply,) = (await gw.send(connect(client_id, id="3"))).messages  # type: ignore[arg-type]
        assert reply == {
            "channel": "/meta/connect",
            "id": "3",
            "successful": False,
            "error": errors.SESSION_UNKNOWN,
            "advice": {"reconnect": "handshake", "interval": 0, "timeout": gw.settings.timeout_ms},
        }
    (reply,) = (await gw.send(subscribe("nonexistent", "/chat/a"))).messages
    assert reply["error"] == errors.SESSION_UNKNOWN and "advice" not in reply


async def test_first_connect_is_answered_at_once_later_ones_are_held(gw: Gateway) -> None:
    """The first connect returns immediately; the next (alone in its request) is held until an event comes."""
    client_id = await gw.handshake()
    first = await gw.send(connect(client_id, id="1"))
    assert first.held is None and first.messages[0]["successful"] is True
    assert first.messages[0]["advice"]["reconnect"] == "retry"
    assert gw.session(client_id).connected
    await gw.send(subscribe(client_id, "/chat/a"))
    held = await gw.send(connect(client_id, id="2"))
    assert held.held is not None and held.messages == []
    other = await gw.handshake()
    await gw.send({"channel": "/chat/a", "clientId": other, "data": "hi"})
    assert held.held.reason is WakeReason.MESSAGES
    answer = gw.protocol.finish_connect(held.held, gw.session(client_id))
    assert answer is not None
    assert answer[0] == {"channel": "/chat/a", "data": "hi"}
    assert answer[-1]["channel"] == "/meta/connect" and answer[-1]["id"] == "2" and answer[-1]["successful"]


async def test_connect_with_timeout_zero_is_not_held(gw: Gateway) -> None:
    """advice.timeout 0 (a poll) is answered at once."""
    client_id = await gw.connected()
    outcome = await gw.send(connect(client_id, advice={"timeout": 0}))
    assert outcome.held is None and outcome.messages[0]["successful"] is True


async def test_a_newer_connect_replaces_the_held_one(gw: Gateway) -> None:
    """Two held connects of one session: the older is released as replaced and answers nothing."""
    client_id = await gw.connected()
    older = await gw.send(connect(client_id))
    newer = await gw.send(connect(client_id))
    assert older.held is not None and newer.held is not None
    assert older.held.reason is WakeReason.REPLACED and newer.held.reason is None
    assert gw.protocol.finish_connect(older.held, gw.session(client_id)) is None
    newer.held.wake(WakeReason.MESSAGES)  # leave nothing held behind


# -- subscribe and unsubscribe ---------------------------------------------------------------------------


async def test_subscribe_echoes_and_registers(gw: Gateway) -> None:
    """A channel, a pattern or a list of them: successful, `subscription` echoed as sent, sessions indexed."""
    client_id = await gw.connected()
    for subscription in ("/chat/a", "/chat/*", ["/chat/b", "/chat/**"]):
        (reply,) = (await gw.send(subscribe(client_id, subscription, id="9"))).messages
        assert reply == {"channel": "/meta/subscribe", "id": "9", "subscription": subscription, "successful": True}
    assert gw.session(client_id).subscriptions == {"/chat/a", "/chat/*", "/chat/b", "/chat/**"}
    assert gw.hub.subscriber_count("/chat/a") == 1


@pytest.mark.parametrize(
    ("subscription", "error"),
    [
        (None, errors.SUBSCRIPTION_MISSING),
        ("no-slash", errors.SUBSCRIPTION_INVALID),
        ("/chat/**/x", errors.SUBSCRIPTION_INVALID),
        ([], errors.SUBSCRIPTION_INVALID),
        (["/chat/a", 5], errors.SUBSCRIPTION_INVALID),
        ("/meta/connect", errors.SUBSCRIBE_META_DENIED),
        ("/meta/**", errors.SUBSCRIBE_META_DENIED),
        ("/private/x", errors.SUBSCRIBE_DENIED),
        (["/chat/a", "/private/x"], errors.SUBSCRIBE_DENIED),
    ],
)
async def test_subscribe_refusals_subscribe_nothing(gw: Gateway, subscription: Any, error: str) -> None:
    """Missing, malformed, meta or denied subscriptions fail the whole request with their error."""
    client_id = await gw.connected()
    message = subscribe(client_id, subscription)
    if subscription is None:
        del message["subscription"]
    (reply,) = (await gw.send(message)).messages
    assert reply["successful"] is False and reply["error"] == error
    assert gw.session(client_id).subscriptions == set()


async def test_service_subscriptions_succeed_and_record_nothing(gw: Gateway) -> None:
    """/service/** is accepted (clients subscribe to it out of habit) but never broadcast to."""
    client_id = await gw.connected()
    (reply,) = (await gw.send(subscribe(client_id, "/service/echo"))).messages
    assert reply["successful"] is True
    assert gw.session(client_id).subscriptions == set()


async def test_unsubscribe(gw: Gateway) -> None:
    """Unsubscribing removes the subscription; from what was never subscribed it succeeds too; meta fails."""
    client_id = await gw.connected()
    await gw.send(subscribe(client_id, ["/chat/a", "/chat/b"]))
    unsub: Message = {"channel": "/meta/unsubscribe", "clientId": client_id, "subscription": "/chat/a", "id": "4"}
    (reply,) = (await gw.send(unsub)).messages
    assert reply == {"channel": "/meta/unsubscribe", "id": "4", "subscription": "/chat/a", "successful": True}
    assert gw.session(client_id).subscriptions == {"/chat/b"}
    (reply,) = (await gw.send({**unsub, "subscription": "/chat/never"})).messages
    assert reply["successful"] is True
    (reply,) = (await gw.send({**unsub, "subscription": "/meta/connect"})).messages
    assert reply["error"] == errors.UNSUBSCRIBE_FAILED
    missing = {k: v for k, v in unsub.items() if k != "subscription"}
    (reply,) = (await gw.send(missing)).messages
    assert reply["error"] == errors.SUBSCRIPTION_MISSING
    assert gw.session(client_id).subscriptions == {"/chat/b"}


# -- publish -----------------------------------------------------------------------------------------


async def test_publish_reaches_subscribers_without_client_fields(gw: Gateway) -> None:
    """The reply is successful and carries no data; subscribers get channel, data and ext only."""
    reader = await gw.connected()
    await gw.send(subscribe(reader, "/chat/**"))
    writer = await gw.connected()
    publish = {"channel": "/chat/room", "clientId": writer, "id": "5", "data": {"t": 1}, "ext": {"k": "v"}}
    (reply,) = (await gw.send(publish)).messages
    assert reply == {"channel": "/chat/room", "id": "5", "successful": True}
    assert gw.session(reader).drain() == [{"channel": "/chat/room", "data": {"t": 1}, "ext": {"k": "v"}}]
    assert gw.session(writer).drain() == []


@pytest.mark.parametrize(
    ("channel", "data", "error"),
    [
        ("/chat/a", None, errors.DATA_MISSING),
        ("/private/a", 1, errors.PUBLISH_DENIED),
        ("/meta/custom", 1, errors.META_PUBLISH_DENIED),
    ],
)
async def test_publish_refusals_deliver_nothing(gw: Gateway, channel: str, data: Any, error: str) -> None:
    """No data, a channel the policy keeps for the server, or a meta channel: refused, nothing delivered."""
    reader = await gw.connected()
    await gw.send(subscribe(reader, "/chat/**"))
    writer = await gw.connected()
    message: Message = {"channel": channel, "clientId": writer, "id": "6"}
    if data is not None:
        message["data"] = data
    (reply,) = (await gw.send(message)).messages
    assert reply["successful"] is False and reply["error"] == error and reply["id"] == "6"
    assert gw.session(reader).drain() == []


async def test_service_publish_answers_the_publisher_only(gw: Gateway) -> None:
    """A /service/ handler's result comes back to the publisher alone, with its id; nothing is broadcast."""
    seen: list[Any] = []

    async def echo(session: Session, message: Message) -> Any:
        seen.append((session.client_id, message["data"]))
        return {"echo": message["data"]}

    gw.server.add_service("/service/echo", echo)
    client_id = await gw.connected()
    outcome = await gw.send({"channel": "/service/echo", "clientId": client_id, "data": 1, "id": "8"})
    assert seen == [(client_id, 1)]
    answer, reply = outcome.messages
    assert answer == {"channel": "/service/echo", "data": {"echo": 1}, "id": "8"}
    assert reply == {"channel": "/service/echo", "id": "8", "successful": True}
    (reply,) = (await gw.send({"channel": "/service/none", "clientId": client_id, "data": 1})).messages
    assert reply["successful"] is True


# -- message checks ------------------------------------------------------------------------------------


def refused(error: str, **fields: Any) -> Message:
    """An unsuccessful reply with `error` and the echoed `fields`."""
    return {**fields, "successful": False, "error": error}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("not an object", refused(errors.MESSAGE_INVALID)),
        ({"id": "1"}, refused(errors.CHANNEL_MISSING, id="1")),
        ({"channel": "nope", "id": "1"}, refused(errors.CHANNEL_INVALID, channel="nope", id="1")),
        ({"channel": "/chat/*", "id": 2}, refused(errors.CHANNEL_INVALID, channel="/chat/*", id=2)),
        ({"channel": "/meta/x", "id": "a-b"}, refused(errors.MESSAGE_ID_INVALID, channel="/meta/x", id="a-b")),
        ({"channel": "/x", "id": {"x": 1}}, refused(errors.MESSAGE_ID_INVALID, channel="/x", id=None)),
    ],
)  # fmt: skip
async def test_unusable_messages_get_in_band_errors(gw: Gateway, message: Any, expected: Message) -> None:
    """Non-objects, missing or invalid channels and invalid ids are answered from the error table."""
    (reply,) = (await gw.send(message)).messages
    assert reply == expected


async def test_ids_are_echoed_verbatim(gw: Gateway) -> None:
    """String and integer ids come back exactly as sent, on successes and failures alike."""
    client_id = await gw.connected()
    for msg_id in ("abc123", 42):
        outcome = await gw.send(
            subscribe(client_id, "/chat/a", id=msg_id),
            subscribe(client_id, "/meta/x", id=msg_id),
            {"channel": "/chat/a", "clientId": client_id, "data": 1, "id": msg_id},
        )
        replies = [m for m in outcome.messages if "successful" in m]
        assert [r["id"] for r in replies] == [msg_id] * 3
        assert [r["successful"] for r in replies] == [True, False, True]


# -- disconnect, batches, expiry -----------------------------------------------------------------------


async def test_disconnect_removes_the_session(gw: Gateway) -> None:
    """/meta/disconnect succeeds and the session is gone: its next connect is told to handshake."""
    client_id = await gw.connected()
    await gw.send(subscribe(client_id, "/chat/a"))
    (reply,) = (await gw.send({"channel": "/meta/disconnect", "clientId": client_id, "id": "d"})).messages
    assert reply == {"channel": "/meta/disconnect", "id": "d", "successful": True}
    assert gw.hub.get(client_id) is None and gw.hub.subscriber_count("/chat/a") == 0
    (reply,) = (await gw.send(connect(client_id))).messages
    assert reply["error"] == errors.SESSION_UNKNOWN


async def test_a_batch_is_processed_in_order_with_its_own_events(gw: Gateway) -> None:
    """Handshake, connect, subscribe and publish in one request: each applied in order; the session's own
    event rides on the same response, before the replies."""
    client_id = await gw.handshake()
    outcome = await gw.send(
        connect(client_id, id="1"),
        subscribe(client_id, "/chat/a", id="2"),
        {"channel": "/chat/a", "clientId": client_id, "data": "mine", "id": "3"},
        {"channel": "/meta/unsubscribe", "clientId": client_id, "subscription": "/chat/a", "id": "4"},
    )
    assert outcome.held is None
    channels = [(m["channel"], m.get("id"), m.get("successful")) for m in outcome.messages]
    assert channels == [
        ("/chat/a", None, None),
        ("/meta/connect", "1", True),
        ("/meta/subscribe", "2", True),
        ("/chat/a", "3", True),
        ("/meta/unsubscribe", "4", True),
    ]
    assert outcome.messages[0]["data"] == "mine"
    assert gw.session(client_id).subscriptions == set()


async def test_a_connect_in_a_batch_is_not_held(gw: Gateway) -> None:
    """Over HTTP only a connect alone in its request is held."""
    client_id = await gw.connected()
    outcome = await gw.send(connect(client_id), subscribe(client_id, "/chat/a"))
    assert outcome.held is None
    assert [m["channel"] for m in outcome.messages] == ["/meta/connect", "/meta/subscribe"]


async def test_sessions_expire_without_connects(gw: Gateway) -> None:
    """A session not connecting within max_interval is swept; other messages keep it alive."""
    idle = await gw.connected()
    busy = await gw.connected()
    gw.clock.advance(8)
    await gw.send(subscribe(busy, "/chat/a"))  # extends to now + max_interval
    gw.clock.advance(8)
    assert gw.hub.sweep() == 1
    assert gw.hub.get(idle) is None and gw.hub.get(busy) is not None
    (reply,) = (await gw.send(connect(idle))).messages
    assert reply["error"] == errors.SESSION_UNKNOWN and reply["advice"]["reconnect"] == "handshake"


async def test_a_held_connect_is_released_when_its_session_is_removed(gw: Gateway) -> None:
    """A server-side disconnect answers the held connect with reconnect none, the disconnect in the reply."""
    client_id = await gw.connected()
    held = await gw.send(connect(client_id))
    assert held.held is not None
    session = gw.session(client_id)
    await gw.server.disconnect_session(client_id)
    assert held.held.reason is WakeReason.REMOVED and session.closed
    answer = gw.protocol.finish_connect(held.held, session)
    assert answer is not None
    assert answer[0]["channel"] == "/meta/disconnect"
    assert answer[-1]["advice"]["reconnect"] == "none"
