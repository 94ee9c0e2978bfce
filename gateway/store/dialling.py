"""The dialling state of contacts: reservations for agents, outbound changes, do-not-call, chains and
personal callbacks. A part of SqlContactStore, kept apart from the contact CRUD it shares a database with."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.store.base import CampaignCounts, ContactRow, HoldLimitReached, Notify, RecordChange
from gateway.store.rows import contact_row, one_contact
from gateway.store.schema import contact_history, contacts

T = TypeVar("T")


class DiallingState:
    """Mixin: the dialling operations of the ContactStore, on the store's reader threads and writer."""

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Provided by the store: run a query on a reader thread."""
        raise NotImplementedError

    async def write(self, op: Callable[[Connection], Any], notify: Notify[Any] | None = None) -> Any:
        """Provided by the store: run a write in a group-committed transaction."""
        raise NotImplementedError

    async def reserve_next(
        self,
        *,
        campaign_id: int,
        agent: str,
        now: datetime,
        notify: Notify[ContactRow | None] | None = None,
        max_held: int = 0,
    ) -> ContactRow | None:
        """Reserve the next callable contact (this agent's due personal callbacks first)."""

        def op(conn: Connection) -> ContactRow | None:
            _check_held(conn, agent, max_held)
            c = contacts.c
            callable_ = sa.and_(
                _free(), c.campaign_id == campaign_id, sa.or_(c.next_try_at.is_(None), c.next_try_at <= now)
            )
            for chosen in (
                sa.select(c.id).where(callable_, c.personal_agent == agent).order_by(c.next_try_at, c.id),
                sa.select(c.id).where(callable_, c.personal_agent.is_(None)).order_by(c.id),
            ):
                # PostgreSQL: the candidate is row-locked and one that another transaction holds is passed
                # over, so concurrent agents (on any node) each get a different record without waiting.
                # SQLite renders no FOR UPDATE: its single writer already runs one reservation at a time.
                found = conn.execute(chosen.limit(1).with_for_update(skip_locked=True)).scalar_one_or_none()
                if found is not None:
                    return _take(conn, found, agent, now)
            return None

        result: ContactRow | None = await self.write(op, notify)
        return result

    async def reserve(
        self,
        contact_id: int,
        *,
        agent: str,
        now: datetime,
        notify: Notify[ContactRow | None] | None = None,
        max_held: int = 0,
    ) -> ContactRow | None:
        """Reserve this contact for `agent` if it is free and callable."""

        def op(conn: Connection) -> ContactRow | None:
            _check_held(conn, agent, max_held)
            return _take(conn, contact_id, agent, now)

        result: ContactRow | None = await self.write(op, notify)
        return result

    async def reserved_by(self, agent: str, campaign_id: int | None = None) -> list[ContactRow]:
        """Contacts reserved by `agent`."""
        query = sa.select(contacts).where(contacts.c.reserved_by == agent)
        if campaign_id is not None:
            query = query.where(contacts.c.campaign_id == campaign_id)
        query = query.order_by(contacts.c.id)
        return await self.read(lambda conn: [contact_row(r) for r in conn.execute(query)])

    async def reserved(self) -> list[ContactRow]:
        """Contacts reserved by any agent."""
        query = sa.select(contacts).where(contacts.c.reserved_by.is_not(None)).order_by(contacts.c.id)
        return await self.read(lambda conn: [contact_row(r) for r in conn.execute(query)])

    async def campaign_counts(self, now: datetime) -> dict[int, CampaignCounts]:
        """One aggregate query: total, callable, held and done per campaign."""
        c = contacts.c
        free = sa.and_(c.locked.is_(False), c.finished.is_(False), c.do_not_call.is_(False), c.reserved_by.is_(None))
        due = sa.or_(c.next_try_at.is_(None), c.next_try_at <= now)

        def count(condition: Any) -> Any:
            return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

        query = sa.select(
            c.campaign_id,
            sa.func.count(),
            count(sa.and_(free, due)),
            count(c.reserved_by.is_not(None)),
            count(sa.or_(c.finished.is_(True), c.do_not_call.is_(True))),
        ).group_by(c.campaign_id)
        return await self.read(
            lambda conn: {int(r[0]): CampaignCounts(*(int(v) for v in r[1:])) for r in conn.execute(query)}
        )

    async def change(
        self,
        contact_id: int,
        *,
        agent: str | None,
        change: RecordChange,
        now: datetime,
        notify: Notify[ContactRow | None] | None = None,
    ) -> ContactRow | None:
        """Apply an outbound change to a contact reserved by `agent` (or any, when agent is None)."""

        def op(conn: Connection) -> ContactRow | None:
            # Locked for the read-modify-write below (attempts, data): another node's change waits.
            row = one_contact(conn, contact_id, lock=True)
            if row is None or (agent is not None and row.reserved_by != agent):
                return None
            values: dict[str, Any] = {"updated_at": now}
            if change.release:
                values.update(reserved_by=None, reserved_at=None)
            if change.finished is not None:
                values["finished"] = change.finished
            if change.do_not_call is not None:
                values["do_not_call"] = change.do_not_call
            if change.result_code_id is not None:
                values["result_code_id"] = change.result_code_id
            if change.next_try_at is not None or change.clear_next_try:
                values["next_try_at"] = change.next_try_at
            if change.personal_agent is not None or change.clear_personal:
                values["personal_agent"] = change.personal_agent
            if change.attempts:
                values["attempts"] = row.attempts + change.attempts
            if change.data:
                values["data"] = {**row.data, **change.data}
            # RETURNING: the changed row without another round trip (the writer's statements run one by one).
            updated = conn.execute(
                sa.update(contacts).where(contacts.c.id == contact_id).values(**values).returning(*contacts.c)
            ).one()
            if change.history is not None:
                entry = dict(change.history)
                conn.execute(
                    sa.insert(contact_history).values(
                        contact_id=contact_id,
                        created_at=now,
                        result_code_id=entry.pop("result_code_id", None),
                        phone_number=entry.pop("phone_number", None),
                        phone_offset=entry.pop("phone_offset", None),
                        user_name=entry.pop("user_name", None),
                        data=entry,
                    )
                )
            return contact_row(updated)

        result: ContactRow | None = await self.write(op, notify)
        return result

    async def do_not_call_number(
        self, phone: str, now: datetime, *, notify: Notify[list[ContactRow]] | None = None
    ) -> list[ContactRow]:
        """Mark every contact carrying this number do-not-call (and free it); return them as they were."""

        def op(conn: Connection) -> list[ContactRow]:
            c = contacts.c
            # A JSON path per number field: portable to PostgreSQL; a full scan, acceptable for a rare call.
            match = sa.or_(*(c.data[f"PhoneNumber{n}"].as_string() == phone for n in range(1, 7)))
            rows = [contact_row(r) for r in conn.execute(sa.select(contacts).where(match).order_by(c.id))]
            if rows:
                conn.execute(
                    sa.update(contacts)
                    .where(c.id.in_([r.id for r in rows]))
                    .values(do_not_call=True, reserved_by=None, reserved_at=None, updated_at=now)
                )
            return rows

        result: list[ContactRow] = await self.write(op, notify)
        return result

    async def add(
        self,
        *,
        campaign_id: int,
        data: dict[str, Any],
        chain_id: int | None,
        now: datetime,
        notify: Notify[ContactRow] | None = None,
    ) -> ContactRow:
        """Create a contact in one statement; without a chain it is the root of its own (chain_id NULL)."""

        def op(conn: Connection) -> ContactRow:
            row = conn.execute(
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
                    chain_id=chain_id,
                )
                .returning(*contacts.c)
            ).one()
            return contact_row(row)

        result: ContactRow = await self.write(op, notify)
        return result

    async def chain(self, contact: ContactRow) -> list[ContactRow]:
        """Other contacts of the same chain (its root and the contacts added to it), by ID."""
        root = contact.chain_id if contact.chain_id is not None else contact.id
        c = contacts.c
        query = sa.select(contacts).where(sa.or_(c.chain_id == root, c.id == root), c.id != contact.id).order_by(c.id)
        return await self.read(lambda conn: [contact_row(r) for r in conn.execute(query)])

    async def due_personal(self, until: datetime) -> list[ContactRow]:
        """Free personal callbacks due by `until`."""
        return await self._personal(until)

    async def pending_personal(self) -> list[ContactRow]:
        """Every free personal callback."""
        return await self._personal(None)

    async def _personal(self, until: datetime | None) -> list[ContactRow]:
        c = contacts.c
        query = sa.select(contacts).where(
            c.personal_agent.is_not(None),
            c.reserved_by.is_(None),
            c.next_try_at.is_not(None),
            c.finished.is_(False),
            c.locked.is_(False),
            c.do_not_call.is_(False),
        )
        if until is not None:
            query = query.where(c.next_try_at <= until)
        query = query.order_by(c.next_try_at, c.id)
        return await self.read(lambda conn: [contact_row(r) for r in conn.execute(query)])


def _free() -> sa.ColumnElement[bool]:
    """A contact nobody holds and that may be called."""
    c = contacts.c
    return sa.and_(c.locked.is_(False), c.finished.is_(False), c.do_not_call.is_(False), c.reserved_by.is_(None))


def _check_held(conn: Connection, agent: str, max_held: int) -> None:
    """Refuse a reservation past the agent's limit. The count and the reservation are one transaction; on
    PostgreSQL an advisory lock per agent (held to the commit) makes a second node's reservation for the same
    agent wait, so its count (a new snapshot per statement under READ COMMITTED) sees the first's record.
    SQLite's single writer already runs one reservation at a time."""
    if max_held <= 0:
        return
    if conn.dialect.name == "postgresql":
        key = "gateway-agent-holds:" + agent
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})
    held = conn.execute(
        sa.select(sa.func.count()).select_from(contacts).where(contacts.c.reserved_by == agent)
    ).scalar_one()
    if held >= max_held:
        raise HoldLimitReached(f"{agent} holds {held} records")


def _take(conn: Connection, contact_id: int, agent: str, now: datetime) -> ContactRow | None:
    """Reserve in one conditional UPDATE: it applies only while the contact is still free (and not another
    agent's callback), so two transactions can never both take it. On PostgreSQL the second waits for the
    first's row lock, then re-checks the condition against the committed row and changes nothing."""
    c = contacts.c
    row = conn.execute(
        sa.update(contacts)
        .where(c.id == contact_id, _free(), sa.or_(c.personal_agent.is_(None), c.personal_agent == agent))
        .values(reserved_by=agent, reserved_at=now)
        .returning(*contacts.c)
    ).one_or_none()
    return contact_row(row) if row is not None else None
