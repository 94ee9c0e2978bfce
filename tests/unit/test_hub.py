"""The Hub: sessions, the subscription index, delivery to channels, identities and sessions, and expiry."""

from __future__ import annotations

from gateway.broker.base import Envelope, Kind
from gateway.hub.hub import Hub
from gateway.hub.replay_state import ReplayState
from gateway.hub.session import HeldConnect, Session, WakeReason
from gateway.settings import OverflowPolicy
from gateway.wire.message import Message
from tests.seams.clock import FakeClock

MAX_INTERVAL_S = 10.0


def make_hub(*, max_queue: int = 10, overflow: OverflowPolicy = "drop_oldest") -> tuple[Hub, FakeClock]:
    """A hub on a clock the test moves."""
    clock = FakeClock()
    return Hub(max_queue=max_queue, overflow=overflow, max_interval_s=MAX_INTERVAL_S, clock=clock), clock


def add(hub: Hub, user: str | None = None, *patterns: str) -> Session:
    """A new session of `user`, subscribed to `patterns`."""
    session = hub.create_session(transport="long-polling", user=user, identity=None, browser_id=None)
    for pattern in patterns:
        hub.subscribe(session, pattern)
    return session


def event(channel: str, data: object = 1) -> Message:
    """An event on `channel`."""
    return {"channel": channel, "data": data}


def test_sessions_are_registered_with_fresh_ids() -> None:
    """create_session registers a new clientId that expires max_interval from now; get finds only live ones."""
    hub, clock = make_hub()
    a, b = add(hub, "agent1"), add(hub)
    assert a.client_id != b.client_id and len(a.client_id) == 40
    assert hub.get(a.client_id) is a and hub.get("other") is None and hub.get(None) is None and hub.get(5) is None
    assert a.expires_at == clock.now + MAX_INTERVAL_S
    assert hub.has_user("agent1") and not hub.has_user("agent2")


def test_delivery_follows_channels_and_wildcards() -> None:
    """Exact channels, * (one segment) and ** (any depth) subscriptions; one copy per session however many
    of its patterns match; the count says how many sessions got it."""
    hub, _ = make_hub()
    exact = add(hub, None, "/chat/a")
    star = add(hub, None, "/chat/*")
    deep = add(hub, None, "/chat/**")
    many = add(hub, None, "/chat/a", "/chat/*", "/chat/**", "/**")
    other = add(hub, None, "/news/a")
    assert hub.deliver(event("/chat/a")) == 4
    assert hub.deliver(event("/chat/a/b")) == 2
    assert [len(s.queue) for s in (exact, star, deep, many, other)] == [1, 1, 2, 2, 0]
    assert hub.subscriber_count("/chat/a") == 4
    assert hub.subscriber_count("/none") == 1  # `many` subscribes to /**
    assert hub.stats.delivered == 6


def test_subscribe_is_idempotent_and_unsubscribe_reports() -> None:
    """A second subscribe changes nothing; unsubscribe says whether there was something to remove."""
    hub, _ = make_hub()
    s = add(hub, None, "/chat/a", "/chat/a")
    assert hub.deliver(event("/chat/a")) == 1 and len(s.queue) == 1
    assert hub.unsubscribe(s, "/chat/a") is True
    assert hub.unsubscribe(s, "/chat/a") is False
    assert hub.deliver(event("/chat/a")) == 0 and hub.subscriber_count("/chat/a") == 0


def test_user_delivery_reaches_that_identity_s_subscribed_sessions() -> None:
    """Every tab of the identity that subscribes to the channel gets it; other identities never do."""
    hub, _ = make_hub()
    tab1 = add(hub, "agent1", "/v2/me/**")
    tab2 = add(hub, "agent1", "/v2/me/outbound")
    unsubscribed = add(hub, "agent1")
    someone_else = add(hub, "agent2", "/v2/me/**")
    assert hub.deliver_to_user("agent1", event("/v2/me/outbound")) == 2
    assert [len(s.queue) for s in (tab1, tab2, unsubscribed, someone_else)] == [1, 1, 0, 0]
    assert hub.deliver_to_user("nobody", event("/v2/me/outbound")) == 0


def test_session_delivery_needs_no_subscription() -> None:
    """deliver_to_session queues for that session alone, subscribed or not; unknown ids get nothing."""
    hub, _ = make_hub()
    s, other = add(hub), add(hub, None, "/x/y")
    assert hub.deliver_to_session(s.client_id, event("/x/y")) is True
    assert s.drain() == [event("/x/y")] and other.queue == []
    assert hub.deliver_to_session("gone", event("/x/y")) is False


def test_remove_forgets_everything_and_tells_listeners_once() -> None:
    """A removed session is closed, out of the index and of its identity; listeners hear the reason once,
    and a failing listener does not stop the others."""
    hub, _ = make_hub()
    heard: list[tuple[str, str]] = []

    def broken(session: Session, reason: str) -> None:
        raise RuntimeError("listener bug")

    hub.on_removed(broken)
    hub.on_removed(lambda session, reason: heard.append((session.client_id, reason)))
    s = add(hub, "agent1", "/chat/a")
    hub.remove(s, "disconnect")
    hub.remove(s, "disconnect")
    assert heard == [(s.client_id, "disconnect")]
    assert s.closed and s.subscriptions == set() and hub.get(s.client_id) is None
    assert not hub.has_user("agent1") and hub.deliver(event("/chat/a")) == 0


async def test_expiry_follows_the_clock() -> None:
    """sweep removes sessions past their expiry (reason "expired"); a touch extends one; a held connect
    never expires."""
    hub, clock = make_hub()
    reasons: list[str] = []
    hub.on_removed(lambda session, reason: reasons.append(reason))
    idle, touched, held = add(hub), add(hub), add(hub)
    connect = HeldConnect({}, timeout_s=60, wake_on_message=True, deadlines=hub.deadlines)
    held.hold(connect)
    clock.advance(MAX_INTERVAL_S - 1)
    assert hub.sweep() == 0
    hub.touch(touched)
    clock.advance(2)
    assert hub.sweep() == 1 and hub.get(idle.client_id) is None and reasons == ["expired"]
    clock.advance(MAX_INTERVAL_S)
    assert hub.sweep() == 1 and hub.get(touched.client_id) is None
    assert hub.get(held.client_id) is held
    connect.wake()


async def test_messages_queued_for_an_expired_session_are_counted_as_dropped() -> None:
    """A session that expires between connects takes its queue with it: each message counts as dropped
    (gateway_messages_dropped_total), as an overflow does; one removed with a held connect hands its queue
    to that connect's reply and drops nothing."""
    hub, clock = make_hub()
    idle, held = add(hub, None, "/chat/a"), add(hub, None, "/chat/a")
    connect = HeldConnect({}, timeout_s=60, wake_on_message=False, deadlines=hub.deadlines)
    held.hold(connect)
    assert hub.deliver(event("/chat/a", 1)) == 2 and hub.deliver(event("/chat/a", 2)) == 2
    clock.advance(MAX_INTERVAL_S + 1)
    assert hub.sweep() == 1 and hub.get(idle.client_id) is None
    assert hub.stats.dropped == 2 and idle.dropped == 2
    hub.remove(held, "disconnect")
    assert connect.reason is WakeReason.REMOVED and len(held.drain()) == 2
    assert hub.stats.dropped == 2 and held.dropped == 0


async def test_overflow_disconnect_evicts_the_session() -> None:
    """With the "disconnect" policy a full queue removes its session; its held connect is told EVICTED."""
    hub, _ = make_hub(max_queue=2, overflow="disconnect")
    reasons: list[str] = []
    hub.on_removed(lambda session, reason: reasons.append(reason))
    slow, fine = add(hub, None, "/chat/a"), add(hub, None, "/chat/a")
    connect = HeldConnect({}, timeout_s=60, wake_on_message=False, deadlines=hub.deadlines)
    slow.hold(connect)
    hub.deliver(event("/chat/a", 1))
    hub.deliver(event("/chat/a", 2))
    fine.drain()
    assert hub.deliver(event("/chat/a", 3)) == 1
    assert hub.get(slow.client_id) is None and reasons == ["queue_overflow"]
    assert connect.reason is WakeReason.EVICTED


def test_dispatch_routes_each_kind() -> None:
    """Broker envelopes reach the audience their kind names; a server disconnect removes the session with
    the disconnect message queued for its last reply."""
    hub, _ = make_hub()
    a, b = add(hub, "agent1", "/chat/**"), add(hub, None, "/chat/**")
    assert hub.dispatch(Envelope(Kind.BROADCAST, event("/chat/x"), "n")) == 2
    assert hub.dispatch(Envelope(Kind.USER, event("/chat/x"), "n", user="agent1")) == 1
    assert hub.dispatch(Envelope(Kind.SESSION, event("/other"), "n", client_id=b.client_id)) == 1
    assert hub.dispatch(Envelope(Kind.USER, event("/chat/x"), "n")) == 0  # no user: no audience
    disconnect = {"channel": "/meta/disconnect", "successful": True}
    assert hub.dispatch(Envelope(Kind.DISCONNECT, disconnect, "n", client_id=a.client_id)) == 1
    assert a.closed and a.queue[-1] == disconnect
    assert [m["channel"] for m in b.drain()] == ["/chat/x", "/other"]
    assert hub.dispatch(Envelope(Kind.DISCONNECT, disconnect, "n", client_id="gone")) == 0


def test_logged_events_carry_their_replay_id_to_sessions_that_opted_in() -> None:
    """A logged envelope reaches plain sessions as it is, and replaying sessions with data.event.replayId."""
    hub, _ = make_hub()
    plain, replaying = add(hub, None, "/v2/dialler/**"), add(hub, None, "/v2/dialler/**")
    replaying.replay = ReplayState()
    message = event("/v2/dialler/contacts", {"ID": 1})
    logged = Envelope(Kind.BROADCAST, message, "n", log="channel:/v2/dialler/**", replay_id=9, created="T")
    assert hub.dispatch(logged) == 2
    assert plain.drain() == [message]
    assert replaying.drain() == [
        {"channel": "/v2/dialler/contacts", "data": {"ID": 1, "event": {"createdDate": "T", "replayId": 9}}}
    ]


def test_a_replaying_session_holds_live_events_back_while_its_log_is_read() -> None:
    """While a log's gate is open the session's live events of that log wait; closing it queues the replay
    and then only the held-back events the replay did not contain."""
    hub, _ = make_hub()
    s = add(hub, None, "/v2/dialler/**")
    s.replay = ReplayState()
    s.open_gate("L")
    for replay_id in (4, 5):
        hub.dispatch(
            Envelope(Kind.BROADCAST, event("/v2/dialler/c", {"n": replay_id}), "n", log="L", replay_id=replay_id)
        )
    assert s.queue == []
    replayed = [(4, event("/v2/dialler/c", "replayed 4"))]
    assert s.close_gate("L", replayed, after=3) == 2
    assert [m["data"] if isinstance(m["data"], str) else m["data"]["n"] for m in s.drain()] == ["replayed 4", 5]


def test_a_late_live_copy_of_a_replayed_event_is_dropped() -> None:
    """After a replay of /v2/dialler/** up to id 6, a live copy of 5 (another node's envelope on its way)
    is not delivered again; 7, and an id on a channel the replay did not cover, are."""
    hub, _ = make_hub()
    s = add(hub, None, "/v2/dialler/**")
    hub.subscribe(s, "/chat/room")  # another subscription, of the same log in this test
    s.replay = ReplayState()
    s.open_gate("L")
    s.close_gate("L", [(5, event("/v2/dialler/c", "replayed 5"))], after=3)
    s.replay.cover("L", "/v2/dialler/**", 6)
    for channel, replay_id in (("/v2/dialler/c", 5), ("/v2/dialler/c", 7), ("/chat/room", 4)):
        hub.dispatch(Envelope(Kind.BROADCAST, event(channel, {"n": replay_id}), "n", log="L", replay_id=replay_id))
    assert [m["data"] if isinstance(m["data"], str) else m["data"]["n"] for m in s.drain()] == ["replayed 5", 7, 4]


async def test_shutdown_releases_held_connects() -> None:
    """Stopping answers every held connect now; the sessions themselves stay."""
    hub, _ = make_hub()
    s = add(hub)
    connect = HeldConnect({}, timeout_s=60, wake_on_message=True, deadlines=hub.deadlines)
    s.hold(connect)
    hub.shutdown()
    assert connect.reason is WakeReason.SHUTDOWN and hub.get(s.client_id) is s
