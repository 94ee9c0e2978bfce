"""The Broker contract (gateway/broker/base.py), run against every broker; a Redis one joins BROKERS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from gateway.broker.base import Broker, Envelope, Kind
from gateway.broker.memory import MemoryBroker
from gateway.broker.redis import RedisBroker
from gateway.broker.relay import Relay
from gateway.hub.hub import Hub
from gateway.wire.notification import Notification
from tests.servers import redis as redis_servers


async def _turn() -> None:
    await asyncio.sleep(0)


@dataclass(frozen=True)
class Impl:
    """How to make brokers of one kind: `make()` gives a node; nodes of a `shared` kind reach each other,
    and `settle()` waits until what one node published has reached the others."""

    name: str
    make: Callable[[], Broker]
    shared: bool
    settle: Callable[[], Awaitable[None]] = field(default=_turn)
    fixtures: tuple[str, ...] = ()  # fixtures the implementation needs (a server of its own)


async def _redis_settle() -> None:
    # Pub/sub round trips on loopback take well under a millisecond; this is ample on a loaded machine.
    await asyncio.sleep(0.3)


BROKERS = [
    Impl("memory", MemoryBroker, shared=False),
    Impl(
        "redis",
        lambda: RedisBroker(url=redis_servers.running().url, channel="test:broker"),
        shared=True,
        settle=_redis_settle,
        fixtures=("redis_url",),
    ),
]


class Received:
    """A sink that records the envelopes it is handed."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def __call__(self, envelope: Envelope) -> int:
        self.envelopes.append(envelope)
        return 1


@pytest.fixture(params=BROKERS, ids=lambda impl: impl.name)
def impl(request: pytest.FixtureRequest) -> Impl:
    """One broker implementation."""
    result: Impl = request.param
    for name in result.fixtures:
        request.getfixturevalue(name)
    return result


@pytest.fixture
async def nodes(impl: Impl) -> AsyncIterator[Callable[[], Broker]]:
    """Make brokers (nodes) of the implementation; all closed at the end."""
    made: list[Broker] = []

    def make() -> Broker:
        broker = impl.make()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


def envelope(broker: Broker, n: int = 0, kind: Kind = Kind.BROADCAST) -> Envelope:
    """An envelope published by `broker`'s node."""
    return Envelope(kind, {"channel": "/chat/a", "data": {"n": n}}, broker.node)


async def test_node_is_a_stable_distinct_id(nodes: Callable[[], Broker]) -> None:
    """A broker names its node; the name does not change, and two brokers are two nodes."""
    a, b = nodes(), nodes()
    assert isinstance(a.node, str) and a.node
    assert a.node == a.node
    assert a.node != b.node


async def test_local_delivery_is_synchronous_inside_publish(nodes: Callable[[], Broker]) -> None:
    """`publish` hands the envelope to this node's sink before it returns: no await, no loop turn."""
    broker = nodes()
    sink = Received()
    await broker.start(sink)
    sent = envelope(broker)
    broker.publish(sent)
    assert sink.envelopes == [sent]


async def test_every_kind_arrives_once_in_publish_order_unchanged(nodes: Callable[[], Broker]) -> None:
    """Each envelope reaches the local sink once, in order, with its kind, audience, origin and log fields."""
    broker = nodes()
    sink = Received()
    await broker.start(sink)
    sent = [
        Envelope(Kind.BROADCAST, {"channel": "/a", "data": 1}, broker.node, log="channel:/a", replay_id=7),
        Envelope(Kind.USER, {"channel": "/v2/me/x", "data": 2}, broker.node, user="agent1", created="2025-01-01"),
        Envelope(Kind.SESSION, {"channel": "/a", "data": 3}, broker.node, client_id="c1"),
        Envelope(Kind.DISCONNECT, {"channel": "/meta/disconnect", "successful": True}, broker.node, client_id="c1"),
        Envelope(Kind.FILL, {}, broker.node),
    ]
    for item in sent:
        broker.publish(item)
    assert sink.envelopes == sent
    assert [e.kind for e in sink.envelopes] == list(Kind)
    assert {e.origin for e in sink.envelopes} == {broker.node}


async def test_publish_never_blocks_on_a_slow_reader(nodes: Callable[[], Broker]) -> None:
    """Many publishes in a row return without awaiting anything, and all are delivered locally."""
    broker = nodes()
    sink = Received()
    await broker.start(sink)
    for n in range(1000):
        broker.publish(envelope(broker, n))
    assert [e.message["data"]["n"] for e in sink.envelopes] == list(range(1000))


async def test_closed_broker_delivers_nothing(nodes: Callable[[], Broker]) -> None:
    """After `close`, publishing reaches no one (and does not raise)."""
    broker = nodes()
    sink = Received()
    await broker.start(sink)
    broker.publish(envelope(broker, 1))
    await broker.close()
    broker.publish(envelope(broker, 2))
    assert [e.message["data"]["n"] for e in sink.envelopes] == [1]


async def test_healthy_while_started(nodes: Callable[[], Broker]) -> None:
    """A started broker that reaches its peers (one process: always) says so."""
    broker = nodes()
    await broker.start(Received())
    assert broker.healthy() is True


async def test_other_nodes_get_an_envelope_once_or_never(impl: Impl, nodes: Callable[[], Broker]) -> None:
    """A shared broker carries a node's envelope to every other node once, origin kept; an unshared one
    (memory) keeps each node's envelopes to itself."""
    a, b = nodes(), nodes()
    got_a, got_b = Received(), Received()
    await a.start(got_a)
    await b.start(got_b)
    sent = envelope(a, 1)
    a.publish(sent)
    assert got_a.envelopes == [sent]
    await impl.settle()
    assert got_a.envelopes == [sent]  # never again from the wire
    assert got_b.envelopes == ([sent] if impl.shared else [])
    if impl.shared:
        assert got_b.envelopes[0].origin == a.node


async def test_relay_turns_notifications_into_envelopes_from_this_node(nodes: Callable[[], Broker]) -> None:
    """The outbox relay publishes each committed notification: to everyone or to one identity, log fields kept."""
    broker = nodes()
    sink = Received()
    await broker.start(sink)
    created = datetime(2025, 9, 19, 8, 28, 20, 750_000)
    Relay(broker)(
        [
            Notification("/v2/dialler/contacts", {"ID": 1}, log="channel:/v2/dialler/**", replay_id=3, created=created),
            Notification("/v2/me/outbound", {"k": 1}, user="agent1"),
        ]
    )
    broadcast, personal = sink.envelopes
    assert broadcast.kind is Kind.BROADCAST and broadcast.user is None
    assert (broadcast.log, broadcast.replay_id, broadcast.created) == (
        "channel:/v2/dialler/**",
        3,
        "2025-09-19T08:28:20.750Z",
    )
    assert broadcast.message == {"channel": "/v2/dialler/contacts", "data": {"ID": 1}}
    assert personal.kind is Kind.USER and personal.user == "agent1" and personal.log is None
    assert {broadcast.origin, personal.origin} == {broker.node}


async def test_a_hub_behind_the_broker_gets_each_kind(nodes: Callable[[], Broker]) -> None:
    """Wired as app.py wires it (start(hub.dispatch)), each kind reaches its audience in the hub at once."""
    hub = Hub(max_queue=10, overflow="drop_oldest", max_interval_s=10.0)
    broker = nodes()
    await broker.start(hub.dispatch)
    one = hub.create_session(transport="long-polling", user="agent1", identity=None, browser_id=None)
    other = hub.create_session(transport="long-polling", user=None, identity=None, browser_id=None)
    hub.subscribe(one, "/chat/**")
    hub.subscribe(other, "/chat/**")
    broker.publish(Envelope(Kind.BROADCAST, {"channel": "/chat/a", "data": 1}, broker.node))
    broker.publish(Envelope(Kind.USER, {"channel": "/chat/a", "data": 2}, broker.node, user="agent1"))
    broker.publish(Envelope(Kind.SESSION, {"channel": "/x/y", "data": 3}, broker.node, client_id=other.client_id))
    assert [m["data"] for m in one.drain()] == [1, 2]
    assert [m["data"] for m in other.drain()] == [1, 3]
    broker.publish(Envelope(Kind.DISCONNECT, {"channel": "/meta/disconnect"}, broker.node, client_id=one.client_id))
    assert hub.get(one.client_id) is None and one.closed
