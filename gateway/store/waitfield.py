"""The waiting field's storage: SNtial Wait contacts and per-queue settings, beside the contacts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.store.base import Notify
from gateway.store.rows import from_row
from gateway.store.schema import contacts, queue_settings, waiting
from gateway.store.sql import SqlContactStore
from gateway.store.sql_log import upsert_insert


@dataclass(slots=True)
class WaitRow:
    """A waiting-field contact: the columns queries need, and the whole SNtial item."""

    id: str
    queue: str
    state: str
    external_id: str | None
    created_at: datetime
    will_be_routed_at: datetime
    routed_at: datetime | None
    will_elapse_at: datetime | None
    removed_at: datetime | None
    record_id: int | None
    item: dict[str, Any]


class WaitfieldStore(Protocol):
    """Where waiting-field contacts live; every write is durable when the call returns."""

    async def insert(self, row: WaitRow, *, notify: Notify[None] | None = None) -> None:
        """Store a new contact (`notify` as ContactStore's writes: logged in the same transaction)."""

    async def save(self, row: WaitRow, *, expected: str | None = None, notify: Notify[bool] | None = None) -> bool:
        """Store a contact's new state (every column and the item); with `expected`, only while its stored
        state is still that one (a compare-and-set: of several nodes taking the same step, one does).
        Return whether it was stored (`notify` is handed the same)."""

    async def route(
        self,
        row: WaitRow,
        *,
        campaign_id: int,
        data: dict[str, Any],
        now: datetime,
        routed: Callable[[int], WaitRow],
        notify: Notify[WaitRow | None] | None = None,
    ) -> WaitRow | None:
        """Route a waiting contact in one transaction: claim it (still waiting), create its callback record
        (`data` in `campaign_id`), and store `routed(record_id)`, the routed row; None if it was not waiting
        any more (another node routed or removed it), with nothing created."""

    async def get(self, contact_id: str) -> WaitRow | None:
        """One contact."""

    async def find(self, *, queue: str | None, state: str | None, external_id: str | None) -> list[WaitRow]:
        """Contacts matching the filters, oldest first."""

    async def by_record(self, record_id: int) -> WaitRow | None:
        """The contact whose callback is this outbound record."""

    async def active(self) -> list[WaitRow]:
        """Contacts still waiting or routed (to re-arm timers after a start)."""

    async def queue_settings(self) -> dict[str, dict[str, Any]]:
        """Settings changed at run time, by queue."""

    async def day_counts(self, since: datetime) -> dict[str, tuple[int, int]]:
        """(routed, elapsed) per queue: contacts routed at or after `since`, and those elapsed since then."""

    async def put_queue_settings(self, queue: str, settings: dict[str, Any], now: datetime) -> None:
        """Keep a queue's new settings."""


class SqlWaitfieldStore:
    """WaitfieldStore in the gateway's SQL database (same writer, same durability)."""

    def __init__(self, db: SqlContactStore) -> None:
        self._db = db

    async def insert(self, row: WaitRow, *, notify: Notify[None] | None = None) -> None:
        """INSERT the contact."""
        values = _values(row)

        def op(conn: Connection) -> None:
            conn.execute(sa.insert(waiting).values(**values))

        await self._db.write(op, notify)

    async def save(self, row: WaitRow, *, expected: str | None = None, notify: Notify[bool] | None = None) -> bool:
        """UPDATE every column of the contact (WHERE state = expected, when given)."""
        values = _values(row)
        del values["id"]
        query = sa.update(waiting).where(waiting.c.id == row.id)
        if expected is not None:
            query = query.where(waiting.c.state == expected)

        def op(conn: Connection) -> bool:
            return conn.execute(query.values(**values)).rowcount > 0

        stored: bool = await self._db.write(op, notify)
        return stored

    async def route(
        self,
        row: WaitRow,
        *,
        campaign_id: int,
        data: dict[str, Any],
        now: datetime,
        routed: Callable[[int], WaitRow],
        notify: Notify[WaitRow | None] | None = None,
    ) -> WaitRow | None:
        """A conditional UPDATE claims the contact (its row lock then keeps other nodes' steps waiting until
        the commit), the record is inserted, and the routed row is written: one commit or nothing."""
        w = waiting.c

        def op(conn: Connection) -> WaitRow | None:
            claimed = conn.execute(
                sa.update(waiting).where(w.id == row.id, w.state == "waiting").values(state="routed")
            ).rowcount
            if not claimed:
                return None
            record_id = conn.execute(
                sa.insert(contacts)
                .values(
                    campaign_id=campaign_id,
                    user_data=data.get("UserData"),
                    locked=False,
                    do_not_call=False,
                    finished=False,
                    imported_at=now,
                    updated_at=now,
                    data=data,
                )
                .returning(contacts.c.id)
            ).scalar_one()
            done = routed(int(record_id))
            values = _values(done)
            del values["id"]
            conn.execute(sa.update(waiting).where(w.id == row.id).values(**values))
            return done

        result: WaitRow | None = await self._db.write(op, notify)
        return result

    async def get(self, contact_id: str) -> WaitRow | None:
        """SELECT one."""
        return await self._db.read(lambda conn: _first(conn, sa.select(waiting).where(waiting.c.id == contact_id)))

    async def find(self, *, queue: str | None, state: str | None, external_id: str | None) -> list[WaitRow]:
        """SELECT by filters."""
        query = sa.select(waiting)
        if queue is not None:
            query = query.where(waiting.c.queue == queue)
        if state is not None:
            query = query.where(waiting.c.state == state)
        if external_id is not None:
            query = query.where(waiting.c.external_id == external_id)
        query = query.order_by(waiting.c.created_at, waiting.c.id)
        return await self._db.read(lambda conn: [_row(r) for r in conn.execute(query)])

    async def by_record(self, record_id: int) -> WaitRow | None:
        """SELECT by the outbound record."""
        return await self._db.read(
            lambda conn: _first(conn, sa.select(waiting).where(waiting.c.record_id == record_id))
        )

    async def active(self) -> list[WaitRow]:
        """SELECT waiting and routed contacts."""
        query = sa.select(waiting).where(waiting.c.state.in_(("waiting", "routed"))).order_by(waiting.c.created_at)
        return await self._db.read(lambda conn: [_row(r) for r in conn.execute(query)])

    async def day_counts(self, since: datetime) -> dict[str, tuple[int, int]]:
        """One aggregate query over the contacts routed or removed since `since`."""
        w = waiting.c
        routed = sa.func.coalesce(sa.func.sum(sa.case((w.routed_at >= since, 1), else_=0)), 0)
        elapsed = sa.func.coalesce(
            sa.func.sum(sa.case((sa.and_(w.state == "elapsed", w.removed_at >= since), 1), else_=0)), 0
        )
        query = (
            sa.select(w.queue, routed, elapsed)
            .where(sa.or_(w.routed_at >= since, w.removed_at >= since))
            .group_by(w.queue)
        )
        return await self._db.read(lambda conn: {r[0]: (int(r[1]), int(r[2])) for r in conn.execute(query)})

    async def queue_settings(self) -> dict[str, dict[str, Any]]:
        """SELECT the stored settings."""
        return await self._db.read(
            lambda conn: {r.queue: dict(r.settings) for r in conn.execute(sa.select(queue_settings))}
        )

    async def put_queue_settings(self, queue: str, settings: dict[str, Any], now: datetime) -> None:
        """Replace a queue's settings in one upsert (two nodes saving the same queue at once: the last wins)."""

        def op(conn: Connection) -> None:
            new = upsert_insert(conn)(queue_settings).values(queue=queue, settings=settings, updated_at=now)
            conn.execute(
                new.on_conflict_do_update(
                    index_elements=[queue_settings.c.queue], set_={"settings": settings, "updated_at": now}
                )
            )

        await self._db.write(op)


def _values(row: WaitRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "queue": row.queue,
        "state": row.state,
        "external_id": row.external_id,
        "created_at": row.created_at,
        "will_be_routed_at": row.will_be_routed_at,
        "routed_at": row.routed_at,
        "will_elapse_at": row.will_elapse_at,
        "removed_at": row.removed_at,
        "record_id": row.record_id,
        "item": row.item,
    }


def _first(conn: Connection, query: sa.Select[Any]) -> WaitRow | None:
    found = conn.execute(query.limit(1)).one_or_none()
    return _row(found) if found is not None else None


def _row(r: Any) -> WaitRow:
    return from_row(WaitRow, r, item=dict(r.item))
