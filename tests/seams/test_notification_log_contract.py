"""The NotificationLog contract (gateway/store/log.py): per-log ordered ids, reads after an id, bounds, pruning.

Appends go through the store (`ContactStore.log`, or a write's `notify`), as the log's docstring says.
(tests/unit/test_log.py is about gateway/log.py, the logging set-up, not this seam.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.clock import utcnow
from gateway.store.log import LogBounds
from gateway.wire.notification import Notification
from tests.seams.conftest import LOGS, Stores, close, opener

A = "channel:/v2/dialler/**"
B = "user:agent1"


@pytest.fixture(params=[name for name, _ in LOGS])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """The stores with each log: SQLite, PostgreSQL, and Redis Streams (fed from a SQLite outbox)."""
    opened = await opener(request.param, request)(tmp_path, None)
    yield opened
    await close(opened)


def note(log: str, n: int) -> Notification:
    """The n-th notification of `log`."""
    if log == B:
        return Notification("/v2/me/outbound", {"n": n}, user="agent1", log=B, ext={"trace": n})
    return Notification("/v2/dialler/contacts", {"n": n}, log=A)


async def append(stores: Stores, log: str, *numbers: int) -> list[int]:
    """Append notifications to `log`; their replay ids."""
    await stores.contacts.log([note(log, n) for n in numbers])
    ids = [n.replay_id for n in stores.relayed[-1]]
    assert all(isinstance(i, int) for i in ids)
    return [i for i in ids if i is not None]


async def test_a_log_never_written_is_empty(stores: Stores) -> None:
    """Bounds (0, 0), nothing to read, and 0 is a valid place to resume from."""
    bounds = await stores.log.bounds(A)
    assert bounds == LogBounds(0, 0)
    assert bounds.valid(0) and not bounds.valid(1) and not bounds.valid(-1)
    assert await stores.log.read(A, 0, 100) == []


async def test_ids_increase_per_log_and_reads_are_oldest_first(stores: Stores) -> None:
    """Each append gets a larger id than the one before it in its log; read returns what follows `after`,
    oldest first, at most `limit`, as it was appended."""
    ids = await append(stores, A, 1, 2, 3)
    ids += await append(stores, A, 4)
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert (await stores.log.bounds(A)).last_id == ids[-1]
    everything = await stores.log.read(A, 0, 100)
    assert [n.data for n in everything] == [{"n": k} for k in (1, 2, 3, 4)]
    assert [n.replay_id for n in everything] == ids
    assert all(n.log == A and n.channel == "/v2/dialler/contacts" and n.user is None for n in everything)
    assert [n.data["n"] for n in await stores.log.read(A, ids[1], 100)] == [3, 4]
    assert [n.data["n"] for n in await stores.log.read(A, ids[0], 2)] == [2, 3]
    assert await stores.log.read(A, ids[-1], 100) == []


async def test_entries_round_trip(stores: Stores) -> None:
    """A read entry has the appended channel, data, audience and ext, and the moment it was appended."""
    before = utcnow()
    (replay_id,) = await append(stores, B, 7)
    (entry,) = await stores.log.read(B, 0, 10)
    assert (entry.channel, entry.data, entry.user, entry.ext) == ("/v2/me/outbound", {"n": 7}, "agent1", {"trace": 7})
    assert entry.replay_id == replay_id and entry.log == B
    assert entry.created is not None and before - timedelta(seconds=1) <= entry.created <= utcnow()
    assert entry.message() == {"channel": "/v2/me/outbound", "data": {"n": 7}, "ext": {"trace": 7}}


async def test_logs_are_independent(stores: Stores) -> None:
    """Appends to one log neither show in nor move another; one append may feed several logs."""
    await append(stores, A, 1, 2)
    await stores.contacts.log([note(B, 10), note(A, 3), note(B, 11)])
    b_ids = [n.replay_id for n in stores.relayed[-1] if n.log == B]
    assert [n.data["n"] for n in await stores.log.read(A, 0, 10)] == [1, 2, 3]
    assert [n.data["n"] for n in await stores.log.read(B, 0, 10)] == [10, 11]
    assert (await stores.log.bounds(B)).last_id == b_ids[-1]
    assert await stores.log.read("user:nobody", 0, 10) == []


async def test_prune_by_count_keeps_the_newest(stores: Stores) -> None:
    """`keep` leaves the newest entries of each log; bounds move, ids go on increasing after a prune."""
    ids = await append(stores, A, 1, 2, 3, 4, 5)
    await append(stores, B, 1)
    removed = await stores.log.prune(before=utcnow() - timedelta(hours=1), keep=2)
    assert removed == 3
    assert [n.data["n"] for n in await stores.log.read(A, 0, 10)] == [4, 5]
    assert [n.data["n"] for n in await stores.log.read(B, 0, 10)] == [1]
    bounds = await stores.log.bounds(A)
    assert bounds == LogBounds(ids[-1], ids[2])
    assert bounds.valid(ids[2]) and bounds.valid(ids[-1]) and not bounds.valid(ids[1])
    (later,) = await append(stores, A, 6)
    assert later > ids[-1]
    assert await stores.log.prune(before=utcnow() - timedelta(hours=1), keep=2) == 1


async def test_prune_by_age_drops_what_is_older(stores: Stores) -> None:
    """Entries appended before `before` go (every log), younger ones stay; pruning twice removes nothing more."""
    a_ids = await append(stores, A, 1, 2)
    await append(stores, B, 1)
    assert await stores.log.prune(before=utcnow() - timedelta(hours=1), keep=100) == 0
    assert await stores.log.prune(before=utcnow() + timedelta(seconds=1), keep=100) == 3
    assert await stores.log.read(A, 0, 10) == [] and await stores.log.read(B, 0, 10) == []
    bounds = await stores.log.bounds(A)
    assert bounds == LogBounds(a_ids[-1], a_ids[-1])
    assert bounds.valid(a_ids[-1]) and not bounds.valid(0)
    assert await stores.log.prune(before=utcnow() + timedelta(seconds=1), keep=100) == 0
