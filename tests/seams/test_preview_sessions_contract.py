"""The PreviewSessions contract (gateway/store/preview.py): in memory, and in the store on SQLite and
PostgreSQL; on PostgreSQL two stores (two nodes) on one database see each other's sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from gateway.store.preview import MemoryPreviewSessions, PreviewSessions, SqlPreviewSessions
from gateway.store.sql import SqlContactStore
from tests.seams.conftest import BACKENDS, opener
from tests.servers.postgres import PostgresServer

NOW = datetime(2025, 3, 1, 12, 0, 0)


@pytest.fixture(params=["memory", *(name for name, _ in BACKENDS)])
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PreviewSessions]:
    """One implementation on a fresh database."""
    if request.param == "memory":
        yield MemoryPreviewSessions()
        return
    stores = await opener(request.param, request)(tmp_path, None)
    assert isinstance(stores.contacts, SqlContactStore)
    yield SqlPreviewSessions(stores.contacts)
    await stores.contacts.close()


async def test_start_end_and_lookups(sessions: PreviewSessions) -> None:
    """Started pairs are seen by every lookup; ending one leaves the others; ending twice is harmless."""
    await sessions.start("agent1", 1, NOW)
    await sessions.start("agent1", 2, NOW)
    await sessions.start("agent2", 1, NOW)
    assert await sessions.started("agent1", 1) and await sessions.started("agent2", 1)
    assert not await sessions.started("agent2", 2)
    assert await sessions.campaigns_of("agent1") == frozenset({1, 2})
    assert await sessions.agents_in(1) == ["agent1", "agent2"]
    await sessions.end("agent1", 1)
    await sessions.end("agent1", 1)
    await sessions.end("nobody", 9)
    assert await sessions.campaigns_of("agent1") == frozenset({2})
    assert await sessions.agents_in(1) == ["agent2"]
    assert await sessions.campaigns_of("nobody") == frozenset()
    assert await sessions.agents_in(9) == []


async def test_starting_twice_is_one_session(sessions: PreviewSessions) -> None:
    """Starting a started session (also at once, as two nodes might) changes nothing; one end ends it."""
    await asyncio.gather(*(sessions.start("agent1", 1, NOW) for _ in range(5)))
    assert await sessions.agents_in(1) == ["agent1"]
    await sessions.end("agent1", 1)
    assert not await sessions.started("agent1", 1)


async def test_two_nodes_share_sessions(postgres_server: PostgresServer) -> None:
    """PostgreSQL: a session started through one store is known to another store on the same database, and
    outlives the first (a node that died)."""
    url = postgres_server.create_database()
    a, b = SqlContactStore(url=url, readers=1), SqlContactStore(url=url, readers=1)
    await a.open()
    await b.open()
    try:
        await SqlPreviewSessions(a).start("agent1", 1, NOW)
        await a.close()
        assert await SqlPreviewSessions(b).agents_in(1) == ["agent1"]
        await SqlPreviewSessions(b).end("agent1", 1)
        assert not await SqlPreviewSessions(b).started("agent1", 1)
    finally:
        await b.close()
