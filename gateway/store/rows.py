"""Store rows from SQL results, and the lookups the reader and the writer share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.store.base import ContactRow, HistoryRow
from gateway.store.schema import contacts

# SQLite's default limit on bound parameters is 32766; stay well below it per statement.
CHUNK: Final = 5000


def one_contact(conn: Connection, contact_id: int) -> ContactRow | None:
    """One contact by ID, in the caller's transaction."""
    row = conn.execute(sa.select(contacts).where(contacts.c.id == contact_id)).one_or_none()
    return contact_row(row) if row is not None else None


def chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    """Values in slices small enough for one IN (...)."""
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def contact_row(r: Any) -> ContactRow:
    """A ContactRow from a result row of the contacts table."""
    return ContactRow(
        id=r.id,
        campaign_id=r.campaign_id,
        user_data=r.user_data,
        locked=bool(r.locked),
        do_not_call=bool(r.do_not_call),
        finished=bool(r.finished),
        result_code_id=r.result_code_id,
        next_try_at=r.next_try_at,
        reserved_by=r.reserved_by,
        reserved_at=r.reserved_at,
        personal_agent=r.personal_agent,
        imported_at=r.imported_at,
        updated_at=r.updated_at,
        data=dict(r.data),
        attempts=r.attempts,
        chain_id=r.chain_id,
    )


def history_row(r: Any) -> HistoryRow:
    """A HistoryRow from a result row of the history table."""
    return HistoryRow(
        id=r.id,
        contact_id=r.contact_id,
        created_at=r.created_at,
        result_code_id=r.result_code_id,
        phone_number=r.phone_number,
        phone_offset=r.phone_offset,
        user_name=r.user_name,
        data=dict(r.data),
    )
