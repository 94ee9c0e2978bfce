"""SqlContactStore: the ContactStore on SQLAlchemy Core (SQLite by default, or PostgreSQL with psycopg 3).

Statements run on threads, not through an asyncio driver: SQLite calls take microseconds, and what
costs is the hop between the event loop and the database thread. aiosqlite (behind SQLAlchemy's
asyncio bridge) makes several hops per statement; here one writer thread runs a whole group-committed
batch per hop and a small pool of reader threads serves queries, which measured about six times
faster for a batch of four imports (0.8 ms against 5 ms).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import URL, Connection, Engine, make_url

from gateway.store.base import ContactRow, HistoryRow, Notify, Scope
from gateway.store.dialling import DiallingState
from gateway.store.pool import ping_when_idle
from gateway.store.rows import chunks, contact_row, history_row, one_contact
from gateway.store.schema import MIGRATIONS, contact_history, contacts, schema_version
from gateway.store.writer import GroupCommit, Op, Relay, Upsert
from gateway.wire.notification import Notification

log = structlog.get_logger("gateway.store")


class StoreError(Exception):
    """The store cannot be used (bad URL, schema newer than this gateway, unreachable database)."""


class StoreUnavailable(StoreError, ConnectionError):
    """The database cannot be reached (refused, timed out, authentication failed): waiting may help."""


T = TypeVar("T")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _parse(url: str) -> URL:
    """The URL with the driver this gateway uses: pysqlite, or psycopg 3 (the `postgres` extra)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"storage.url: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite")
    if backend == "postgresql":
        if importlib.util.find_spec("psycopg") is None:
            raise StoreError(
                "storage.url is PostgreSQL, but psycopg is not installed: "
                "pip install 'contact-center-gateway[postgres]'"
            )
        return parsed.set(drivername="postgresql+psycopg")
    raise StoreError(f"storage.url: unsupported database {backend!r} (use sqlite:/// or postgresql+psycopg://)")


def database_url(url: str) -> URL:
    """Check `sqlite:///file` or `postgresql+psycopg://…`; create SQLite's folder."""
    parsed = _parse(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    return parsed


def describe(url: str) -> str:
    """`engine (url without its password)`, for check-config (creates nothing)."""
    parsed = _parse(url)
    return f"{parsed.get_backend_name()} ({parsed.render_as_string(hide_password=True)})"


class SqlContactStore(DiallingState):
    """Contacts in a SQL database: one writer thread (group commit), a few reader threads."""

    def __init__(
        self, *, url: str, sqlite_synchronous: str = "NORMAL", readers: int = 4, relay: Relay | None = None
    ) -> None:
        self._url = database_url(url)
        self._relay = relay
        self._synchronous = sqlite_synchronous
        self._readers_count = readers
        self._engine: Engine | None = None
        self._writes: GroupCommit | None = None
        self._readers: ThreadPoolExecutor | None = None

    def relay_through(self, relay: Relay) -> None:
        """Hand committed notifications to `relay` from now on (the stream relay, which reads this store)."""
        self._relay = relay
        if self._writes is not None:
            self._writes.relay = relay

    @property
    def engine_name(self) -> str:
        """`sqlite` or `postgresql`."""
        return str(self._url.get_backend_name())

    @property
    def engine(self) -> Engine:
        """The open engine."""
        if self._engine is None:
            raise StoreError("store is not open")
        return self._engine

    async def open(self) -> None:
        """Create the engine, set SQLite's durability pragmas and run pending migrations.

        Raises StoreError, saying which database, when it cannot be reached or migrated.
        """
        sqlite = self.engine_name == "sqlite"
        engine = sa.create_engine(
            self._url,
            # orjson for the JSON columns: every contact's fields are one JSON document.
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            # SQLite: connections move between the writer and reader threads, one thread at a time.
            # PostgreSQL: an unreachable server fails the start within seconds, not after the OS gives up.
            connect_args={"check_same_thread": False} if sqlite else {"connect_timeout": 5},
            pool_size=self._readers_count + 1,
        )
        if not sqlite:
            # A server restarted under us: a dead pooled connection is replaced, not handed out.
            ping_when_idle(engine)
        else:
            synchronous = self._synchronous

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                # WAL: readers never block the writer; a committed write is in the WAL file before we answer.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={synchronous}")
                cursor.execute("PRAGMA busy_timeout=10000")
                cursor.close()

        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, _migrate_engine, engine)
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            where = self._url.render_as_string(hide_password=True)
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
            # Operational and interface errors are the server's absence (a connection refused, a timeout,
            # a password refused); any other database error is the schema's, and waiting would not change it.
            unreachable = isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
            raise (StoreUnavailable if unreachable else StoreError)(
                f"store {self.engine_name} at {where}: {reason}"
            ) from exc
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        self._writes = GroupCommit(engine, relay=self._relay)
        self._readers = ThreadPoolExecutor(max_workers=self._readers_count, thread_name_prefix="store-reader")
        log.info("store_opened", store=self.engine_name, url=self._url.render_as_string(hide_password=True))

    async def close(self) -> None:
        """Finish writes, stop the threads, dispose of the engine."""
        if self._writes is not None:
            await self._writes.close()
            self._writes = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` on a reader thread (also for sibling stores sharing this database)."""
        if self._readers is None:
            raise StoreError("store is not open")

        def run() -> T:
            with self.engine.connect() as conn:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def write(self, op: Op | Upsert, notify: Notify[Any] | None = None) -> Any:
        """Run a write in a group-committed transaction (also for sibling stores); `notify` as ContactStore."""
        if self._writes is None:
            raise StoreError("store is not open")
        return await self._writes.run(op, notify)

    async def log(self, notifications: Sequence[Notification]) -> None:
        """Append notifications in a transaction of their own (they report no change of ours)."""
        notes = list(notifications)
        if notes:
            await self.write(_nothing, lambda _: notes)

    async def ping(self) -> bool:
        """True if a trivial query succeeds."""
        try:
            await self.read(lambda conn: conn.execute(sa.select(1)).scalar())
            return True
        except Exception:
            return False

    async def upsert(
        self,
        *,
        campaign_id: int,
        user_data: str | None,
        data: dict[str, Any],
        overwrite: bool,
        now: datetime,
        notify: Notify[tuple[ContactRow, bool]] | None = None,
    ) -> tuple[ContactRow, bool]:
        """Insert, or overwrite the data of the first contact with this campaign and UserData."""
        result: tuple[ContactRow, bool] = await self.write(Upsert(campaign_id, user_data, data, overwrite, now), notify)
        return result

    async def get(self, contact_id: int, scope: Scope) -> ContactRow | None:
        """One contact by ID, if in scope."""
        row = await self.read(partial(one_contact, contact_id=contact_id))
        return row if row is not None and _in(scope, row.campaign_id) else None

    async def find_by_user_data(self, user_data: str, scope: Scope) -> list[ContactRow]:
        """Contacts with this UserData in scope, oldest first."""
        query = _scoped(sa.select(contacts).where(contacts.c.user_data == user_data), scope).order_by(contacts.c.id)
        return await self.read(lambda conn: [contact_row(r) for r in conn.execute(query)])

    async def list_contacts(self, scope: Scope, campaign_id: int | None = None) -> list[ContactRow]:
        """All contacts in scope, optionally of one campaign."""
        query = _scoped(sa.select(contacts), scope)
        if campaign_id is not None:
            query = query.where(contacts.c.campaign_id == campaign_id)
        query = query.order_by(contacts.c.id)
        return await self.read(lambda conn: [contact_row(r) for r in conn.execute(query)])

    async def get_many(self, ids: Collection[int], user_data: Collection[str], scope: Scope) -> list[ContactRow]:
        """Contacts with any of these IDs or UserData values, in scope, by ID."""
        id_list, ud_list = list(ids), list(user_data)

        def fetch(conn: Connection) -> list[ContactRow]:
            found: dict[int, ContactRow] = {}
            for column, values in ((contacts.c.id, id_list), (contacts.c.user_data, ud_list)):
                for chunk in chunks(values):
                    for r in conn.execute(_scoped(sa.select(contacts).where(column.in_(chunk)), scope)):
                        found[r.id] = contact_row(r)
            return [found[k] for k in sorted(found)]

        return await self.read(fetch)

    async def history(self, contact_ids: Collection[int]) -> dict[int, list[HistoryRow]]:
        """History of these contacts, oldest first."""
        id_list = list(contact_ids)

        def fetch(conn: Connection) -> dict[int, list[HistoryRow]]:
            out: dict[int, list[HistoryRow]] = {}
            for chunk in chunks(id_list):
                query = (
                    sa.select(contact_history)
                    .where(contact_history.c.contact_id.in_(chunk))
                    .order_by(contact_history.c.id)
                )
                for r in conn.execute(query):
                    out.setdefault(r.contact_id, []).append(history_row(r))
            return out

        return await self.read(fetch)

    async def delete(
        self, contact_ids: Collection[int], *, notify: Notify[list[ContactRow]] | None = None
    ) -> list[ContactRow]:
        """Delete contacts and their history in one transaction; return them as they were."""
        id_list = list(contact_ids)

        def op(conn: Connection) -> list[ContactRow]:
            deleted: list[ContactRow] = []
            for chunk in chunks(id_list):
                result = conn.execute(sa.delete(contacts).where(contacts.c.id.in_(chunk)).returning(*contacts.c))
                gone = [contact_row(r) for r in result]
                if gone:
                    ids = [r.id for r in gone]
                    conn.execute(sa.delete(contact_history).where(contact_history.c.contact_id.in_(ids)))
                deleted.extend(gone)
            return sorted(deleted, key=lambda r: r.id)

        result: list[ContactRow] = await self.write(op, notify)
        return result

    async def set_locked(
        self,
        contact_id: int,
        locked: bool,
        now: datetime,
        *,
        notify: Notify[tuple[ContactRow, bool, str | None] | None] | None = None,
    ) -> tuple[ContactRow, bool, str | None] | None:
        """Lock or unlock one contact; a lock also takes the contact away from the agent holding it."""

        def op(conn: Connection) -> tuple[ContactRow, bool, str | None] | None:
            row = one_contact(conn, contact_id, lock=True)
            if row is None:
                return None
            holder = row.reserved_by if locked else None
            if row.locked == locked and holder is None:
                return row, False, None
            values: dict[str, Any] = {"locked": locked, "updated_at": now}
            if holder is not None:
                values.update(reserved_by=None, reserved_at=None)
            conn.execute(sa.update(contacts).where(contacts.c.id == contact_id).values(**values))
            changed = row.locked != locked
            row.locked, row.updated_at = locked, now
            if holder is not None:
                row.reserved_by = row.reserved_at = None
            return row, changed, holder

        result: tuple[ContactRow, bool, str | None] | None = await self.write(op, notify)
        return result

    async def count(self) -> int:
        """Number of contacts."""
        return await self.read(
            lambda conn: int(conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar_one())
        )


# pg_advisory_xact_lock's key for the migrations (any constant of our own: "gwschema" in ASCII).
_MIGRATION_LOCK = 0x6777736368656D61


def _migrate_engine(engine: Engine) -> None:
    with engine.begin() as conn:
        _migrate(conn)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            # Refresh the planner's statistics where SQLite thinks it worthwhile (cheap when nothing changed).
            conn.execute(sa.text("PRAGMA optimize"))


def _migrate(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Nodes starting together migrate one after the other (the lock ends with this transaction); on
        # SQLite the file's write lock does the same.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
    newest = MIGRATIONS[-1][0]
    if current > newest:
        raise StoreError(f"database schema is version {current}, newer than this gateway's {newest}")
    for version, description, step in MIGRATIONS:
        if version > current:
            step(conn)
            conn.execute(
                sa.insert(schema_version).values(
                    version=version, applied_at=datetime.now(UTC).replace(tzinfo=None), description=description
                )
            )
            log.info("schema_migrated", version=version, description=description)


def _nothing(conn: Connection) -> None:
    """A write that changes nothing (its notifications are the point)."""


def _scoped(query: sa.Select[Any], scope: Scope) -> sa.Select[Any]:
    if scope is None:
        return query
    return query.where(contacts.c.campaign_id.in_(list(scope)))


def _in(scope: Scope, campaign_id: int) -> bool:
    return scope is None or campaign_id in scope
