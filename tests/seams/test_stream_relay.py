"""The stream relay (replay.backend redis) on real PostgreSQL and Redis: every committed notification reaches
its stream once, in id order, and goes live once, whichever node commits it, whether a relay dies between
commit and append, Redis goes away, or Redis comes back without its last writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.store.log import LogBounds
from gateway.store.redis_log import RedisStreamLog
from gateway.store.sql import SqlContactStore
from gateway.store.sql_log import SqlOutbox
from gateway.store.stream_relay import StreamRelay
from gateway.wire.notification import Notification
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer

LOG = "user:agent1"


def note(n: int) -> Notification:
    return Notification("/v2/me/outbound", {"n": n}, user="agent1", log=LOG)


@dataclass
class Node:
    """One node's store and relay over the shared database and Redis; what its relay delivered."""

    store: SqlContactStore
    relay: StreamRelay
    delivered: list[Notification] = field(default_factory=list)
    fills: list[int] = field(default_factory=list)

    async def close(self) -> None:
        await self.store.close()
        await self.relay.stream.close()


@pytest.fixture
async def nodes(
    postgres_server: PostgresServer, redis_url: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Node]]]:
    database = postgres_server.create_database()
    opened: list[Node] = []

    async def open_node(*, keep_s: float = 10.0, grace_s: float = 0.0) -> Node:
        store = SqlContactStore(url=database)
        await store.open()
        delivered: list[Notification] = []
        fills: list[int] = []
        relay = StreamRelay(
            stream=RedisStreamLog(url=redis_url, prefix="t"),
            outbox=SqlOutbox(store),
            deliver=delivered.extend,
            fill=lambda: fills.append(1),
            keep_s=keep_s,
            grace_s=grace_s,
        )
        store.relay_through(relay)
        node = Node(store, relay, delivered, fills)
        opened.append(node)
        return node

    yield open_node
    for node in opened:
        await node.close()


def ids(notes: list[Notification]) -> list[int]:
    return [n.replay_id or 0 for n in notes]


async def test_two_nodes_committing_to_one_log_append_each_entry_once_in_order(
    nodes: Callable[..., Awaitable[Node]],
) -> None:
    """Two nodes log 100 notifications each to one log, 10 at a time concurrently: the stream holds ids 1..200
    once each, in order, and the two relays together delivered each id exactly once."""
    a, b = await nodes(), await nodes()

    async def log_from(node: Node, base: int) -> None:
        for start in range(base, base + 100, 10):
            await asyncio.gather(*(node.store.log([note(n)]) for n in range(start, start + 10)))

    await asyncio.gather(log_from(a, 0), log_from(b, 1000))
    stream = await a.relay.stream.read(LOG, 0, 1000)
    assert ids(stream) == list(range(1, 201))
    assert sorted(n.data["n"] for n in stream) == [*range(100), *range(1000, 1100)]
    delivered = ids(a.delivered) + ids(b.delivered)
    assert sorted(delivered) == list(range(1, 201))
    assert ids(a.delivered) == sorted(ids(a.delivered)) and ids(b.delivered) == sorted(ids(b.delivered))
    assert (await a.relay.stream.bounds(LOG)).last_id == 200


async def test_a_commit_whose_relay_died_is_swept_by_another_node_once(nodes: Callable[..., Awaitable[Node]]) -> None:
    """Node a commits three notifications and dies before relaying them (its relay never runs): node b's sweep
    appends and delivers them, once; a second sweep finds nothing."""
    a, b = await nodes(), await nodes()
    a.store.relay_through(lambda notes: None)  # killed between the commit and the append
    await a.store.log([note(1), note(2), note(3)])
    assert await b.relay.stream.read(LOG, 0, 10) == []
    assert await b.relay.sweep() == 3
    assert ids(b.delivered) == [1, 2, 3] and a.delivered == []
    assert await b.relay.sweep() == 0
    await b.store.log([note(4)])
    assert ids(await b.relay.stream.read(LOG, 0, 10)) == [1, 2, 3, 4]
    assert ids(b.delivered) == [1, 2, 3, 4] and b.relay.swept == 3


async def test_commits_go_on_while_redis_is_away_and_the_sweep_catches_up(
    nodes: Callable[..., Awaitable[Node]], redis_server: RedisServer
) -> None:
    """Redis stopped: writes still commit (at once, not after a timeout), nothing is delivered, the failure is
    counted. Redis back (empty: the test server keeps nothing): the sweep appends everything the outbox holds,
    the entries relayed before the outage too, delivers what was missing and asks the nodes for a fill."""
    a = await nodes()
    await a.store.log([note(1), note(2)])
    assert ids(a.delivered) == [1, 2]
    redis_server.stop()
    started = asyncio.get_running_loop().time()
    for n in range(3, 6):
        await a.store.log([note(n)])
    assert asyncio.get_running_loop().time() - started < 5.0
    assert ids(a.delivered) == [1, 2] and a.relay.failures >= 1
    assert await a.relay.sweep() == 0 and a.fills == []  # still away
    redis_server.start()
    assert await a.relay.sweep() == 5
    assert ids(await a.relay.stream.read(LOG, 0, 10)) == [1, 2, 3, 4, 5]
    assert ids(a.delivered) == [1, 2, 1, 2, 3, 4, 5]  # 1 and 2 again: the nodes' gap fill cursors drop them
    assert a.fills == [1]
    await a.store.log([note(6)])  # the relay is back on the commit path
    assert ids(a.delivered)[-1] == 6 and (await a.relay.stream.bounds(LOG)).last_id == 6


async def test_entries_stay_in_the_outbox_for_keep_s_then_go(
    nodes: Callable[..., Awaitable[Node]], redis_server: RedisServer
) -> None:
    """Relayed entries are discarded from the outbox once older than keep_s (here 0); a Redis that lost the
    stream after that starts it again at the next id, with the ids before it marked pruned (a client holding
    an older id is told it is no longer retained, not silently resumed past a hole)."""
    a = await nodes(keep_s=0.0)
    await a.store.log([note(1), note(2), note(3)])
    await asyncio.sleep(0.01)
    await a.relay.sweep()
    assert await SqlOutbox(a.store).read(LOG, 0, 10) == []
    # Read as the SQL log again, the emptied outbox says what it no longer holds.
    assert await SqlOutbox(a.store).bounds(LOG) == LogBounds(3, 3)
    assert ids(await a.relay.stream.read(LOG, 0, 10)) == [1, 2, 3]
    redis_server.flush()
    await a.store.log([note(4)])
    bounds = await a.relay.stream.bounds(LOG)
    assert (bounds.last_id, bounds.pruned_through) == (4, 3)
    assert not bounds.valid(2) and bounds.valid(3) and bounds.valid(4)
    assert ids(await a.relay.stream.read(LOG, 0, 10)) == [4]


async def test_a_redis_that_lost_its_last_writes_gets_them_again_from_the_outbox(
    nodes: Callable[..., Awaitable[Node]], redis_server: RedisServer
) -> None:
    """What a Redis killed before its append-only file synced looks like: the stream and its head lack the last
    entries. The next commit's relay finds the head behind, appends the lost entries again from the outbox
    (still there within keep_s) and then its own: the stream is whole, in order."""
    a = await nodes()
    await a.store.log([note(n) for n in range(1, 6)])
    stream, head = "t:{user:agent1}:stream", "t:{user:agent1}:head"
    with redis_server.client() as admin:  # the state as an append-only file of three entries rebuilds it
        kept = admin.xrange(stream, "-", "3-0")
        admin.delete(stream)
        for entry_id, fields in kept:
            admin.xadd(stream, fields, id=entry_id)
        admin.hset(head, "last", 3)
    await a.store.log([note(6)])
    assert ids(await a.relay.stream.read(LOG, 0, 10)) == [1, 2, 3, 4, 5, 6]
    assert ids(a.delivered) == [1, 2, 3, 4, 5, 4, 5, 6]  # 4 and 5 again: the gap fill cursors drop them


async def test_a_second_database_on_the_same_streams_is_said_loudly_and_still_delivered(
    redis_url: str, tmp_path: Path
) -> None:
    """Two deployments (two databases) on one Redis and one stream_prefix: the second's outbox ids 1, 2 are
    already the first's in the stream. Its relay must not take them for its own (it did: delivered nothing,
    silently): it counts the divergence, logs it, and delivers its notifications live."""
    relays = []
    for name in ("one", "two"):
        store = SqlContactStore(url=f"sqlite:///{tmp_path / name}.db")
        await store.open()
        delivered: list[Notification] = []
        relay = StreamRelay(
            stream=RedisStreamLog(url=redis_url, prefix="shared"),
            outbox=SqlOutbox(store),
            deliver=delivered.extend,
            fill=lambda: None,
            keep_s=10.0,
        )
        store.relay_through(relay)
        relays.append((store, relay, delivered))
    try:
        (one, first, one_got), (two, second, two_got) = relays
        await one.log([note(1), note(2), note(3)])
        assert ids(one_got) == [1, 2, 3]
        await two.log([note(100)])
        assert [n.data for n in two_got] == [{"n": 100}] and ids(two_got) == [1]
        assert second.diverged == 1 and first.diverged == 0
        assert [n.data["n"] for n in await first.stream.read(LOG, 0, 10)] == [1, 2, 3]  # the stream is untouched
    finally:
        for store, relay, _ in relays:
            await store.close()
            await relay.stream.close()


async def test_the_outbox_discard_never_waits_for_a_head_locked_elsewhere(
    nodes: Callable[..., Awaitable[Node]],
) -> None:
    """The discard runs in a group commit beside other writes; waiting there for a log head another node's
    transaction holds deadlocked in the cluster chaos run. A locked head is skipped, and discarded later."""
    a = await nodes(keep_s=0.0)
    await a.store.log([note(1), note(2)])
    await asyncio.sleep(0.01)
    with a.store.engine.connect() as other:  # another node's transaction, holding the log's head
        held = other.begin()
        other.execute(sa.text("SELECT 1 FROM notification_heads WHERE log_key = :k FOR UPDATE"), {"k": LOG})
        await asyncio.wait_for(a.relay.sweep(), 5)
        assert len(await SqlOutbox(a.store).read(LOG, 0, 10)) == 2  # kept: its head was busy
        held.rollback()
    await a.relay.sweep()
    assert await SqlOutbox(a.store).read(LOG, 0, 10) == []
