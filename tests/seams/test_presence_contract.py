"""The Presence contract (gateway/events/presence.py): in memory and in Redis; in Redis the counts are over
every node, and a node that stops beating (killed) has its sessions taken out after its TTL, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.events.presence import MemoryPresence, Presence
from gateway.events.redis_presence import RedisPresence
from tests.conftest import wait_for
from tests.servers import redis as redis_servers

Changes = list[tuple[str, bool]]
Make = Callable[[], Presence]


def recorder(into: Changes) -> Callable[[list[str], bool], None]:
    """A `changed` callback that records what it is told."""
    return lambda agents, online: into.extend((agent, online) for agent in agents)


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    """Make presences (nodes) of one kind; all closed at the end."""
    made: list[Presence] = []

    def new() -> Presence:
        presence: Presence = (
            MemoryPresence() if request.param == "memory" else RedisPresence(url=redis_servers.running().url, ttl_s=1.0)
        )
        made.append(presence)
        return presence

    if request.param == "redis":
        request.getfixturevalue("redis_url")
    yield new
    for presence in made:
        await presence.close()


async def test_counts_up_and_down(make: Make) -> None:
    """opened/closed return the count after the change; never below zero; counts lists agents with sessions."""
    node = make()
    await node.start(recorder([]))
    assert [await node.opened("agent1"), await node.opened("agent1"), await node.opened("agent2")] == [1, 2, 1]
    assert await node.count("agent1") == 2 and await node.counts() == {"agent1": 2, "agent2": 1}
    assert [await node.closed("agent1"), await node.closed("agent1"), await node.closed("agent1")] == [1, 0, 0]
    assert await node.count("agent1") == 0 and await node.counts() == {"agent2": 1}


async def test_one_transition_each_way_under_concurrency(make: Make) -> None:
    """Ten sessions of one agent opened and closed at once: exactly one call saw 1 going up, one saw 0 at
    the end, and the count is back to none."""
    node = make()
    await node.start(recorder([]))
    ups = await asyncio.gather(*(node.opened("agent1") for _ in range(10)))
    assert sorted(n for n in ups if n is not None) == list(range(1, 11))
    downs = await asyncio.gather(*(node.closed("agent1") for _ in range(10)))
    assert downs.count(0) == 1 and await node.count("agent1") == 0


@pytest.mark.parametrize("make", ["redis"], indirect=True)
async def test_counts_are_over_every_node(make: Make) -> None:
    """Two nodes: each sees the other's sessions; the first session anywhere is 1, the last gone is 0."""
    a, b = make(), make()
    await a.start(recorder([]))
    await b.start(recorder([]))
    assert await a.opened("agent1") == 1
    assert await b.opened("agent1") == 2
    assert await a.count("agent1") == 2 and await b.counts() == {"agent1": 2}
    assert await a.closed("agent1") == 1
    assert await b.closed("agent1") == 0


@pytest.mark.parametrize("make", ["redis"], indirect=True)
async def test_a_dead_nodes_sessions_are_taken_out_once(make: Make) -> None:
    """A node that stops beating without a word: after its TTL one survivor reports its agents offline (those
    with no session elsewhere), once; the counts drop its sessions."""
    told_b: Changes = []
    told_c: Changes = []
    dead, b, c = make(), make(), make()
    await dead.start(recorder([]))
    await b.start(recorder(told_b))
    await c.start(recorder(told_c))
    await dead.opened("agent1")
    await dead.opened("agent2")
    await b.opened("agent2")
    assert isinstance(dead, RedisPresence)
    dead._task.cancel()  # type: ignore[union-attr]  # stops beating, as if killed
    await wait_for(lambda: bool(told_b or told_c), timeout=5)
    await asyncio.sleep(0.8)  # more beats: nothing reported twice
    assert sorted(told_b + told_c) == [("agent1", False)]
    assert await b.counts() == {"agent2": 1}


@pytest.mark.parametrize("make", ["redis"], indirect=True)
async def test_counts_come_back_after_redis_lost_them(make: Make) -> None:
    """Redis flushed (restarted empty): at its next beat a node writes its counts back and reports its agents
    online again."""
    told: Changes = []
    node = make()
    await node.start(recorder(told))
    await node.opened("agent1")
    redis_servers.running().client().flushall()
    assert await node.count("agent1") == 0
    assert isinstance(node, RedisPresence)
    await node.beat()
    assert await node.count("agent1") == 1 and told == [("agent1", True)]


@pytest.mark.parametrize("make", ["redis"], indirect=True)
async def test_a_graceful_stop_takes_its_sessions_out_at_once(make: Make) -> None:
    """close: the node's sessions leave the counts now (no TTL), and it reports its agents left with none."""
    told: Changes = []
    a, b = make(), make()
    await a.start(recorder(told))
    await b.start(recorder([]))
    await a.opened("agent1")
    await a.opened("agent2")
    await b.opened("agent2")
    await a.close()
    assert told == [("agent1", False)]
    assert await b.counts() == {"agent2": 1}
