"""Tables (SQLAlchemy Core, portable to PostgreSQL) and the ordered list of schema migrations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime, nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.Integer, nullable=False),
    sa.Column("user_data", sa.String(64), nullable=True),
    sa.Column("locked", sa.Boolean, nullable=False, default=False),
    sa.Column("do_not_call", sa.Boolean, nullable=False, default=False),
    sa.Column("finished", sa.Boolean, nullable=False, default=False),
    sa.Column("result_code_id", sa.Integer, nullable=True),
    sa.Column("next_try_at", sa.DateTime, nullable=True),
    sa.Column("reserved_by", sa.String(64), nullable=True),
    sa.Column("reserved_at", sa.DateTime, nullable=True),
    sa.Column("personal_agent", sa.String(64), nullable=True),
    sa.Column("imported_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # The client's jtel fields (PascalCase, as posted), kept whole so they round-trip exactly.
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_contacts_campaign", "campaign_id", "id"),
    sa.Index("ix_contacts_user_data", "user_data", "id"),
)

contact_history = sa.Table(
    "contact_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contact_id", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("result_code_id", sa.Integer, nullable=True),
    sa.Column("phone_number", sa.String(32), nullable=True),
    sa.Column("phone_offset", sa.Integer, nullable=True),
    sa.Column("user_name", sa.String(64), nullable=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_history_contact", "contact_id", "id"),
)


def _v1(conn: Connection) -> None:
    # The tables as version 1 defined them; later versions alter them with their own steps.
    for table in (contacts, contact_history):
        table.create(conn)


# Append only: each step runs once, in its own transaction, and its number is recorded.
MIGRATIONS: Final[tuple[tuple[int, str, Callable[[Connection], None]], ...]] = (
    (1, "contacts and contact history", _v1),
)
