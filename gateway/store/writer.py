"""The store's single writer: queued writes run together in one transaction on one thread (group commit)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway.clock import utcnow
from gateway.store import sql_log
from gateway.store.base import ContactRow
from gateway.store.rows import chunks, contact_row
from gateway.store.schema import contacts
from gateway.wire.notification import Notification

Op = Callable[[Connection], Any]
# Renders the notifications a write's result causes; run on the writer thread, inside the transaction.
Notify = Callable[[Any], Sequence[Notification]]
# Gets the notifications of every committed transaction, in commit order, on the event loop, before the
# writers are answered (the outbox relay: it delivers them). An async relay (the stream relay) is awaited
# before the next commit's notifications are handed over, so they stay in commit order.
Relay = Callable[[list[Notification]], Awaitable[None] | None]


@dataclass(slots=True)
class Upsert:
    """An import queued for the writer (run in bulk with its neighbours)."""

    campaign_id: int
    user_data: str | None
    data: dict[str, Any]
    overwrite: bool
    now: datetime


@dataclass(slots=True)
class _Pending:
    op: Op | Upsert
    notify: Notify | None
    future: asyncio.Future[Any]


class GroupCommit:
    """Runs queued writes together in one transaction on the writer thread; callers are answered after
    the commit.

    Concurrent imports share one commit and a handful of statements (one lookup, one executemany
    UPDATE, one multi-row INSERT). If a batch fails it is rolled back and every write is retried alone,
    so one bad write cannot take another down with it.
    """

    def __init__(self, engine: Engine, *, relay: Relay | None = None, max_batch: int = 500) -> None:
        self._engine = engine
        self.relay = relay
        self._max_batch = max_batch
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._queue: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    async def run(self, op: Op | Upsert, notify: Notify | None = None) -> Any:
        """Execute a write in a committed transaction and return its result.

        `notify(result)` renders the notifications the write causes: they are appended to their logs in
        the same transaction and handed to the relay after the commit, before this returns.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(op, notify, future))
        self._idle.clear()
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop())
        return await future

    async def close(self) -> None:
        """Finish queued writes, then stop."""
        if self._task is not None and not self._task.done():
            await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._thread.shutdown(wait=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            # One turn of the loop lets callers answered by the last commit queue their next write.
            await asyncio.sleep(0)
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                await self._commit(loop, batch)
            self._idle.set()

    async def _commit(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        try:
            results, notes = await loop.run_in_executor(self._thread, self._transaction, batch)
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(exc)
                return
            for item in batch:
                await self._commit(loop, [item])
            return
        if notes and self.relay is not None:
            relayed = self.relay(notes)
            if relayed is not None:
                await relayed
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    def _transaction(self, batch: list[_Pending]) -> tuple[list[Any], list[Notification]]:
        with self._engine.begin() as conn:
            results = _apply(conn, [item.op for item in batch])
            rendered: list[Notification] = []
            for item, result in zip(batch, results, strict=True):
                if item.notify is not None:
                    rendered.extend(item.notify(result))
            notes = sql_log.append(conn, rendered, utcnow()) if rendered else []
        return results, notes


def _lock_keys(conn: Connection, keys: list[str]) -> None:
    """PostgreSQL: hold a transaction lock per (campaign, UserData) an overwrite import looks up.

    (campaign, UserData) is not unique (imports without overwrite repeat it), so there is no key for
    ON CONFLICT; without the lock two nodes importing the same key with overwrite would both find nothing
    and both insert. The second now waits for the first's commit, then finds its row. Taken in one order
    (sorted hashes), so two batches cannot deadlock on them.
    """
    conn.execute(_LOCK_KEYS, {"keys": keys})


# The statements of a bulk upsert, built once: building and hashing a statement per batch cost about as much CPU
# as running it (SQLAlchemy caches the compiled form by the statement's cache key, computed per new object).
_LOCK_KEYS: Final = sa.text(
    "SELECT count(pg_advisory_xact_lock(h)) FROM"
    " (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS s"
)
_LOOKUP: Final = (
    sa.select(contacts.c.id, contacts.c.campaign_id, contacts.c.user_data)
    .where(contacts.c.user_data.in_(sa.bindparam("user_data_list", expanding=True)))
    .order_by(contacts.c.id)
)
_UPDATE: Final = sa.update(contacts).where(contacts.c.id == sa.bindparam("b_id"))
_INSERT: Final = sa.insert(contacts).returning(*contacts.c, sort_by_parameter_order=True)
_BY_IDS: Final = sa.select(contacts).where(contacts.c.id.in_(sa.bindparam("id_list", expanding=True)))


def _apply(conn: Connection, ops: list[Op | Upsert]) -> list[Any]:
    """Run writes in order; consecutive upserts go in bulk."""
    results: list[Any] = []
    i = 0
    while i < len(ops):
        op = ops[i]
        if not isinstance(op, Upsert):
            results.append(op(conn))
            i += 1
            continue
        run: list[Upsert] = []
        keys: set[tuple[int, str | None]] = set()
        # A bulk run must not touch one (campaign, UserData) twice: the second would need the first's result.
        while i < len(ops):
            item = ops[i]
            if not isinstance(item, Upsert):
                break
            key = (item.campaign_id, item.user_data)
            if key in keys and item.user_data is not None:
                break
            keys.add(key)
            run.append(item)
            i += 1
        results.extend(_bulk_upsert(conn, run))
    return results


def _bulk_upsert(conn: Connection, items: list[Upsert]) -> list[tuple[ContactRow, bool]]:
    wanted = sorted({u.user_data for u in items if u.overwrite and u.user_data is not None})
    if wanted and conn.dialect.name == "postgresql":
        _lock_keys(
            conn, sorted({f"{u.campaign_id}:{u.user_data}" for u in items if u.overwrite and u.user_data is not None})
        )
    first: dict[tuple[int, str], int] = {}
    for chunk in chunks(wanted):
        for r in conn.execute(_LOOKUP, {"user_data_list": list(chunk)}):
            first.setdefault((r.campaign_id, r.user_data), r.id)
    updates: dict[int, Upsert] = {}
    inserts: list[Upsert] = []
    target: list[int | None] = []  # per item: the updated id, or None for an insert
    for u in items:
        existing = first.get((u.campaign_id, u.user_data)) if u.overwrite and u.user_data is not None else None
        if existing is not None:
            updates[existing] = u
        else:
            inserts.append(u)
        target.append(existing)
    if updates:
        conn.execute(_UPDATE, [{"b_id": cid, "data": u.data, "updated_at": u.now} for cid, u in updates.items()])
    inserted: list[ContactRow] = []
    if inserts:
        result = conn.execute(
            _INSERT,
            [
                {
                    "campaign_id": u.campaign_id,
                    "user_data": u.user_data,
                    "locked": False,
                    "do_not_call": False,
                    "finished": False,
                    "imported_at": u.now,
                    "updated_at": u.now,
                    "data": u.data,
                }
                for u in inserts
            ],
        )
        inserted = [contact_row(r) for r in result]
    updated: dict[int, ContactRow] = {}
    for chunk in chunks(list(updates)):
        for r in conn.execute(_BY_IDS, {"id_list": list(chunk)}):
            updated[r.id] = contact_row(r)
    out: list[tuple[ContactRow, bool]] = []
    fresh = iter(inserted)
    for existing in target:
        out.append((updated[existing], False) if existing is not None else (next(fresh), True))
    return out
