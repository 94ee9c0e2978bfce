"""The CorrelationRegistry contract (gateway/events/correlation.py), run against every registry."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import Enum

import pytest

from gateway.events.correlation import Correlation, CorrelationRegistry, MemoryCorrelationRegistry, Started, State
from gateway.events.redis_correlation import RedisCorrelationRegistry
from tests.seams.clock import FakeClock
from tests.servers import redis as redis_servers


@dataclass(frozen=True)
class Impl:
    """How to make a registry of one kind, bounded to `max_entries` kept `ttl_s` seconds by `clock`."""

    name: str
    make: Callable[[int, float, FakeClock], CorrelationRegistry]
    fixtures: tuple[str, ...] = ()  # fixtures the implementation needs (a server of its own)


_OPENED: list[RedisCorrelationRegistry] = []  # closed after each test


def _redis(max_entries: int, ttl_s: float, clock: FakeClock, max_bytes: int | None = None) -> CorrelationRegistry:
    registry = RedisCorrelationRegistry(
        url=redis_servers.running().url, max_entries=max_entries, ttl_s=ttl_s, max_bytes=max_bytes, clock=clock
    )
    _OPENED.append(registry)
    return registry


REGISTRIES = [
    Impl(
        "memory",
        lambda max_entries, ttl_s, clock: MemoryCorrelationRegistry(max_entries=max_entries, ttl_s=ttl_s, clock=clock),
    ),
    Impl("redis", _redis, fixtures=("redis_url",)),
]

TTL_S = 60.0


@pytest.fixture(params=REGISTRIES, ids=lambda impl: impl.name)
async def impl(request: pytest.FixtureRequest) -> AsyncIterator[Impl]:
    """One registry implementation (the registries it made are closed afterwards)."""
    result: Impl = request.param
    for name in result.fixtures:
        request.getfixturevalue(name)
    yield result
    while _OPENED:
        await _OPENED.pop().close()


@pytest.fixture
def clock() -> FakeClock:
    """The registry's clock."""
    return FakeClock()


@pytest.fixture
def registry(impl: Impl, clock: FakeClock) -> CorrelationRegistry:
    """A registry with room for 100 entries kept TTL_S seconds."""
    return impl.make(100, TTL_S, clock)


async def test_begin_registers_a_pending_entry(registry: CorrelationRegistry) -> None:
    """The first request under a referenceId is NEW; its entry is pending and can be looked up."""
    started, entry = await registry.begin("crm", "ref1", "import", "fp1")
    assert started is Started.NEW
    assert (entry.user, entry.reference_id, entry.operation, entry.fingerprint) == ("crm", "ref1", "import", "fp1")
    assert entry.state is State.PENDING and entry.status is None
    assert await registry.get("crm", "ref1") == entry
    assert await registry.count() == 1


async def test_same_request_is_a_duplicate_another_is_a_conflict(registry: CorrelationRegistry) -> None:
    """Same operation and fingerprint: DUPLICATE of the first; anything else under the referenceId: CONFLICT."""
    _, first = await registry.begin("crm", "ref1", "import", "fp1")
    assert await registry.begin("crm", "ref1", "import", "fp1") == (Started.DUPLICATE, first)
    assert (await registry.begin("crm", "ref1", "import", "fp2"))[0] is Started.CONFLICT
    assert (await registry.begin("crm", "ref1", "delete", "fp1"))[0] is Started.CONFLICT
    assert await registry.count() == 1


async def test_reference_ids_are_per_user(registry: CorrelationRegistry) -> None:
    """Two identities using the same referenceId are two operations."""
    assert (await registry.begin("crm", "ref1", "import", "fp"))[0] is Started.NEW
    assert (await registry.begin("other", "ref1", "import", "fp"))[0] is Started.NEW
    assert await registry.get("nobody", "ref1") is None
    assert await registry.count() == 2


async def test_begin_is_atomic(registry: CorrelationRegistry) -> None:
    """Of many concurrent requests with the same (user, referenceId), exactly one gets NEW."""
    results = await asyncio.gather(*(registry.begin("crm", "ref", "import", "fp") for _ in range(20)))
    assert [started for started, _ in results].count(Started.NEW) == 1
    assert {started for started, _ in results} == {Started.NEW, Started.DUPLICATE}


async def test_many_concurrent_operations_all_complete(registry: CorrelationRegistry) -> None:
    """300 operations in flight at once (a node under load) each begin and complete: none fails for want of a
    connection (redis-py's default pool raised beyond 100, after the operation had been applied)."""

    async def one(n: int) -> State:
        _, entry = await registry.begin("crm", f"ref{n}", "import", "fp")
        return (await registry.complete(entry, 200, {"n": n})).state

    states = await asyncio.gather(*(one(n) for n in range(300)))
    assert states == [State.DONE] * 300


async def test_complete_keeps_the_outcome(registry: CorrelationRegistry) -> None:
    """A completed entry is DONE with its status, result and notification; a retry finds it so."""
    _, entry = await registry.begin("crm", "ref1", "import", "fp1")
    result = {"ID": 7, "items": [1, "two", None]}
    done = await registry.complete(entry, 201, result, notification=[{"channel": "/v2/me/x", "data": 1}])
    assert done.state is State.DONE and done.status == 201
    assert done.result == result and done.notification == [{"channel": "/v2/me/x", "data": 1}]
    started, again = await registry.begin("crm", "ref1", "import", "fp1")
    assert started is Started.DUPLICATE and again == done
    assert await registry.get("crm", "ref1") == done
    _, other = await registry.begin("crm", "ref2", "delete", "fp2")
    assert (await registry.complete(other, 204, None)).result is None


async def test_entries_are_plain_data(registry: CorrelationRegistry) -> None:
    """An entry holds strings, numbers, bytes and enums only (a shared registry stores it as it is)."""
    _, entry = await registry.begin("crm", "ref1", "import", "fp1")
    done = await registry.complete(entry, 200, {"a": 1})
    for value in (*dataclasses.astuple(entry), *dataclasses.astuple(done)):
        assert value is None or isinstance(value, str | int | float | bytes | Enum), value
    assert isinstance(done, Correlation) and done.size() > len("crmref1importfp1")


async def test_wait_returns_the_finished_entry(registry: CorrelationRegistry) -> None:
    """A retry waiting for the first attempt gets its outcome as soon as it completes."""
    _, entry = await registry.begin("crm", "ref1", "import", "fp1")
    waiter = asyncio.create_task(registry.wait(entry, 5.0))
    await asyncio.sleep(0)
    assert not waiter.done()
    done = await registry.complete(entry, 200, {"ok": True})
    assert await asyncio.wait_for(waiter, 1.0) == done
    assert await registry.wait(entry, 0.0) == done  # finished already: at once


async def test_wait_gives_none_after_a_timeout(registry: CorrelationRegistry) -> None:
    """A first attempt still running when the wait's time is up: None, and the entry stays pending."""
    _, entry = await registry.begin("crm", "ref1", "import", "fp1")
    assert await registry.wait(entry, 0.01) is None
    kept = await registry.get("crm", "ref1")
    assert kept is not None and kept.state is State.PENDING


async def test_abandon_forgets_and_releases_waiters(registry: CorrelationRegistry) -> None:
    """An abandoned operation is forgotten: its waiters get None, and the next request runs it (NEW)."""
    _, entry = await registry.begin("crm", "ref1", "import", "fp1")
    waiter = asyncio.create_task(registry.wait(entry, 5.0))
    await asyncio.sleep(0)
    await registry.abandon(entry)
    assert await asyncio.wait_for(waiter, 1.0) is None
    assert await registry.get("crm", "ref1") is None
    assert await registry.count() == 0
    assert (await registry.begin("crm", "ref1", "import", "fp1"))[0] is Started.NEW


async def test_entries_expire_after_the_ttl(registry: CorrelationRegistry, clock: FakeClock) -> None:
    """After ttl_s an entry is gone (a retry runs again); younger ones stay; a waiter on it is released."""
    _, old = await registry.begin("crm", "old", "import", "fp")
    clock.advance(TTL_S / 2)
    await registry.begin("crm", "young", "import", "fp")
    waiter = asyncio.create_task(registry.wait(old, 5.0))
    await asyncio.sleep(0)
    clock.advance(TTL_S / 2 + 1)
    assert await registry.get("crm", "old") is None
    assert await asyncio.wait_for(waiter, 1.0) is None
    assert await registry.get("crm", "young") is not None
    assert await registry.count() == 1
    assert (await registry.begin("crm", "old", "import", "fp"))[0] is Started.NEW


async def test_size_is_bounded_oldest_dropped_first(impl: Impl, clock: FakeClock) -> None:
    """Past max_entries the oldest entries are dropped."""
    registry = impl.make(3, TTL_S, clock)
    for n in range(5):
        await registry.begin("crm", f"ref{n}", "import", "fp")
        clock.advance(0.001)
    assert await registry.count() == 3
    assert [await registry.get("crm", f"ref{n}") is not None for n in range(5)] == [False, False, True, True, True]


# -- bounded in bytes: registries that take `max_bytes` --------------------------------------------------

BYTE_BOUNDED = [
    Impl(
        "memory",
        lambda max_bytes, ttl_s, clock: MemoryCorrelationRegistry(
            max_entries=10_000, ttl_s=ttl_s, max_bytes=max_bytes, clock=clock
        ),
    ),
    Impl("redis", lambda max_bytes, ttl_s, clock: _redis(10_000, ttl_s, clock, max_bytes), fixtures=("redis_url",)),
]


@pytest.fixture(params=BYTE_BOUNDED, ids=lambda impl: impl.name)
async def bounded(request: pytest.FixtureRequest) -> AsyncIterator[Impl]:
    """One registry implementation that takes `max_bytes` (its registries closed afterwards)."""
    result: Impl = request.param
    for name in result.fixtures:
        request.getfixturevalue(name)
    yield result
    while _OPENED:
        await _OPENED.pop().close()


async def test_bounded_in_bytes_oldest_dropped_first(bounded: Impl, clock: FakeClock) -> None:
    """Past max_bytes (estimated: strings and serialized outcome) the oldest entries are dropped; the newest stay
    and correlate as usual."""
    registry = bounded.make(20_000, TTL_S, clock)
    big = "x" * 1000
    for n in range(100):
        _, entry = await registry.begin("crm", f"ref{n}", "import", "fp")
        await registry.complete(entry, 200, {"body": big})
    kept = await registry.count()
    assert 10 <= kept < 100  # about 1 KB each under a 20 KB bound
    assert await registry.get("crm", "ref0") is None
    newest = await registry.get("crm", "ref99")
    assert newest is not None and newest.result == {"body": big}
    assert (await registry.begin("crm", "ref99", "import", "fp"))[0] is Started.DUPLICATE
    if isinstance(registry, MemoryCorrelationRegistry):
        assert registry.bytes_used() <= 20_000
    if isinstance(registry, RedisCorrelationRegistry):
        assert 0 < await registry.bytes_used() <= 20_000
