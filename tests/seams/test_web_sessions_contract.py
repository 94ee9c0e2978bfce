"""The WebSessionStore contract (gateway/api/web_sessions.py): in memory and in Redis; in Redis a session
made through one store (node) is found through another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.api.redis_web_sessions import RedisWebSessions
from gateway.api.web_sessions import MemoryWebSessions, WebSessionStore
from gateway.identity import Identity
from tests.servers import redis as redis_servers

AGENT = Identity(name="agent1", role="agent")
KNOWN = {"agent1": AGENT}

Make = Callable[[float], WebSessionStore]


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    """Make stores of one kind with a given idle TTL (Redis: several stores share the test's Redis)."""
    made: list[WebSessionStore] = []
    shared: MemoryWebSessions | None = None

    def new(ttl_s: float) -> WebSessionStore:
        nonlocal shared
        if request.param == "memory":
            # One node: "another store" is the same process's store.
            shared = shared or MemoryWebSessions(ttl_s=ttl_s)
            return shared
        store = RedisWebSessions(url=redis_servers.running().url, ttl_s=ttl_s, identity_of=KNOWN.get)
        made.append(store)
        return store

    if request.param == "redis":
        request.getfixturevalue("redis_url")
    yield new
    for store in made:
        await store.close()


async def test_create_then_get(make: Make) -> None:
    """A created session is found by its id (on another node too), with its identity and CSRF token."""
    a, b = make(60), make(60)
    session_id, session = await a.create(AGENT)
    assert len(session_id) >= 32 and len(session.csrf) >= 32
    found = await b.get(session_id)
    assert found is not None and found.identity.name == "agent1" and found.csrf == session.csrf


async def test_unknown_and_empty_ids(make: Make) -> None:
    """Nothing for an unknown, empty, missing or absurdly long id."""
    store = make(60)
    assert await store.get("nope") is None
    assert await store.get("") is None
    assert await store.get(None) is None
    assert await store.get("x" * 10_000) is None


async def test_ids_are_new_each_time(make: Make) -> None:
    """Two sessions of one identity have different ids and tokens."""
    store = make(60)
    (id1, s1), (id2, s2) = await store.create(AGENT), await store.create(AGENT)
    assert id1 != id2 and s1.csrf != s2.csrf


async def test_idle_sessions_expire_and_use_restarts_the_timer(make: Make) -> None:
    """A session unused for the TTL is gone; one used within it lives on past its first TTL."""
    store = make(0.6)
    idle_id, _ = await store.create(AGENT)
    used_id, _ = await store.create(AGENT)
    for _ in range(4):
        await asyncio.sleep(0.25)
        assert await store.get(used_id) is not None
    assert await store.get(idle_id) is None
