"""Store back ends for the store suites: each opens the contact store, its log and the waiting field on one
database: SQLite in the test's folder, and PostgreSQL (a database per test folder, on the server the tests
start: tests/servers/postgres.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.store.base import ContactStore
from gateway.store.log import NotificationLog
from gateway.store.redis_log import RedisStreamLog
from gateway.store.sql import SqlContactStore
from gateway.store.sql_log import SqlNotificationLog, SqlOutbox
from gateway.store.stream_relay import StreamRelay
from gateway.store.waitfield import SqlWaitfieldStore, WaitfieldStore
from gateway.wire.notification import Notification
from tests.servers.postgres import PostgresServer


@dataclass
class Stores:
    """The seams over one open database, and what its relay was handed (one list per commit)."""

    contacts: ContactStore
    log: NotificationLog
    waitfield: WaitfieldStore
    relayed: list[list[Notification]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def notifications(self) -> list[Notification]:
        """Everything relayed so far, in commit order."""
        return [n for batch in self.relayed for n in batch]


Open = Callable[[Path, Stores | None], Awaitable[Stores]]


async def open_sqlite(folder: Path, relayed_into: Stores | None = None) -> Stores:
    """The SQL stores on a SQLite file in `folder` (migrated by open)."""
    relayed: list[list[Notification]] = relayed_into.relayed if relayed_into is not None else []
    db = SqlContactStore(url=f"sqlite:///{folder / 'gateway.db'}", relay=relayed.append)
    await db.open()
    return Stores(db, SqlNotificationLog(db), SqlWaitfieldStore(db), relayed)


_postgres: list[PostgresServer] = []  # the session's server, once a PostgreSQL test asked for it


async def open_postgresql(folder: Path, relayed_into: Stores | None = None) -> Stores:
    """The SQL stores on a PostgreSQL database of their own (the same one again for the same folder)."""
    relayed: list[list[Notification]] = relayed_into.relayed if relayed_into is not None else []
    db = SqlContactStore(url=_postgres[0].database_for(str(folder)), relay=relayed.append)
    await db.open()
    return Stores(db, SqlNotificationLog(db), SqlWaitfieldStore(db), relayed)


BACKENDS: list[tuple[str, Open]] = [("sqlite", open_sqlite), ("postgresql", open_postgresql)]

_redis: list[str] = []  # the session's Redis URL, once a test of the Redis log asked for it


async def open_redis_log(folder: Path, relayed_into: Stores | None = None, *, outbox: Open = open_sqlite) -> Stores:
    """The SQL stores on `outbox`'s database, with the log in Redis Streams (replay.backend redis): the store
    hands its commits to a stream relay, and `relayed` gets what the relay delivers."""
    opened = await outbox(folder, relayed_into)
    db = opened.contacts
    assert isinstance(db, SqlContactStore)
    stream_relay = StreamRelay(
        stream=RedisStreamLog(url=_redis[0], prefix=f"test:{folder.name}"),
        outbox=SqlOutbox(db),
        deliver=lambda notes: opened.relayed.append(list(notes)),
        fill=lambda: None,
        keep_s=10.0,
    )
    db.relay_through(stream_relay)
    opened.log = stream_relay.stream
    opened.closers.append(stream_relay.stream.close)
    return opened


LOGS: list[tuple[str, Open]] = [*BACKENDS, ("redis", open_redis_log)]


def opener(name: str, request: pytest.FixtureRequest) -> Open:
    """How to open the back end called `name` (starting the session's PostgreSQL when it is asked first)."""
    if name == "postgresql" and not _postgres:
        _postgres.append(request.getfixturevalue("postgres_server"))
    if name == "redis":
        _redis[:] = [request.getfixturevalue("redis_url")]  # flushed for this test
    return dict(LOGS)[name]


@pytest.fixture(params=BACKENDS, ids=lambda backend: backend[0])
def backend(request: pytest.FixtureRequest) -> Open:
    """How to open one back end's stores."""
    return opener(request.param[0], request)


@pytest.fixture
async def stores(backend: Open, tmp_path: Path) -> AsyncIterator[Stores]:
    """The stores on a fresh database, closed after the test."""
    opened = await backend(tmp_path, None)
    yield opened
    await close(opened)


async def close(stores: Stores) -> None:
    """Close the store and what was opened with it."""
    await stores.contacts.close()
    for closer in stores.closers:
        await closer()
