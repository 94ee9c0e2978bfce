"""Store rows from SQL results, and the lookups the reader and the writer share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.store.base import ContactRow, HistoryRow
from gateway.store.schema import contacts

T = TypeVar("T")

# SQLite's default limit on bound parameters is 32766; stay well below it per statement.
CHUNK: Final = 5000


def one_contact(conn: Connection, contact_id: int, *, lock: bool = False) -> ContactRow | None:
    """One contact by ID, in the caller's transaction; `lock`: row-locked until it ends (SELECT ... FOR UPDATE
    on PostgreSQL, so that a read-modify-write on another node waits; SQLite's single writer needs none)."""
    query = sa.select(contacts).where(contacts.c.id == contact_id)
    row = conn.execute(query.with_for_update() if lock else query).one_or_none()
    return contact_row(row) if row is not None else None


def chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    """Values in slices small enough for one IN (...)."""
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def from_row(cls: type[T], r: Any, **converted: Any) -> T:
    """A row dataclass from a result row with columns of the same names (`converted` given ready)."""
    names = _NAMES.get(cls)
    if names is None:
        # dataclasses.fields() builds its tuple anew at every call: once per row of every query otherwise.
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    return cls(**{name: getattr(r, name) for name in names if name not in converted}, **converted)


_NAMES: dict[type, tuple[str, ...]] = {}


def contact_row(r: Any) -> ContactRow:
    """A ContactRow from a result row of the contacts table."""
    return from_row(
        ContactRow, r, locked=bool(r.locked), do_not_call=bool(r.do_not_call), finished=bool(r.finished),
        data=dict(r.data),
    )  # fmt: skip


def history_row(r: Any) -> HistoryRow:
    """A HistoryRow from a result row of the history table."""
    return from_row(HistoryRow, r, data=dict(r.data))
