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
    # v2: call attempts made (GSW_ATTEMPTS) and the chain the record belongs to (GSW_CHAIN_ID).
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("chain_id", sa.Integer, nullable=True),
    sa.Index("ix_contacts_campaign", "campaign_id", "id"),
    sa.Index("ix_contacts_user_data_campaign", "user_data", "campaign_id", "id"),
    sa.Index("ix_contacts_reserved", "reserved_by"),
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


waiting = sa.Table(
    "waitfield_contacts",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("queue", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("external_id", sa.String(128), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("will_be_routed_at", sa.DateTime, nullable=False),
    sa.Column("routed_at", sa.DateTime, nullable=True),
    sa.Column("will_elapse_at", sa.DateTime, nullable=True),
    sa.Column("removed_at", sa.DateTime, nullable=True),
    sa.Column("record_id", sa.Integer, nullable=True),
    # The whole SNtial item (numbers, additional, settings snapshot, routing object, ...).
    sa.Column("item", sa.JSON, nullable=False),
    sa.Index("ix_waiting_state_due", "state", "will_be_routed_at"),
    sa.Index("ix_waiting_queue_state", "queue", "state"),
    sa.Index("ix_waiting_external", "external_id"),
    sa.Index("ix_waiting_record", "record_id"),
)

queue_settings = sa.Table(
    "waitfield_queue_settings",
    metadata,
    sa.Column("queue", sa.String(64), primary_key=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


notification_log = sa.Table(
    "notification_log",
    metadata,
    sa.Column("log_key", sa.String(200), primary_key=True),
    sa.Column("replay_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("channel", sa.String(512), nullable=False),
    sa.Column("audience", sa.String(64), nullable=True),
    # The whole Bayeux event (channel, data, ext) as JSON text: written and read back as it is.
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_log_created", "created_at"),
)

notification_heads = sa.Table(
    "notification_heads",
    metadata,
    sa.Column("log_key", sa.String(200), primary_key=True),
    # The last id given out; the row is updated by every append, so appends to one log are serialized
    # (and committed in id order) on every database.
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("pruned_through", sa.BigInteger, nullable=False),
)

preview_sessions = sa.Table(
    "preview_sessions",
    metadata,
    # v6: which campaigns each agent works (GWS StartPreviewSession), shared by every node of one database.
    sa.Column("agent", sa.String(64), primary_key=True),
    sa.Column("campaign_id", sa.Integer, primary_key=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Index("ix_preview_campaign", "campaign_id", "agent"),
)


# The steps below are written in SQLite's words, as first released. On PostgreSQL the same statements run
# with the two words it spells differently: a timestamp column, and an integer key that numbers itself
# (SQLite's INTEGER PRIMARY KEY is the rowid). Nothing else differs: BOOLEAN, JSON, BIGINT, TEXT and
# VARCHAR mean the same on both.
_POSTGRESQL_WORDS: Final = (
    ("id INTEGER NOT NULL PRIMARY KEY", "id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    ("DATETIME", "TIMESTAMP"),
)


def _ddl(conn: Connection, statement: str) -> None:
    """Run one DDL statement, in the dialect's words."""
    if conn.dialect.name == "postgresql":
        for sqlite_word, postgresql_word in _POSTGRESQL_WORDS:
            statement = statement.replace(sqlite_word, postgresql_word)
    conn.execute(sa.text(statement))


def _v1(conn: Connection) -> None:
    # Version 1 exactly as first released; later versions change it with their own steps.
    _ddl(
        conn,
        "CREATE TABLE contacts ("
        " id INTEGER NOT NULL PRIMARY KEY, campaign_id INTEGER NOT NULL, user_data VARCHAR(64),"
        " locked BOOLEAN NOT NULL, do_not_call BOOLEAN NOT NULL, finished BOOLEAN NOT NULL,"
        " result_code_id INTEGER, next_try_at DATETIME, reserved_by VARCHAR(64), reserved_at DATETIME,"
        " personal_agent VARCHAR(64), imported_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,"
        " data JSON NOT NULL)",
    )
    _ddl(conn, "CREATE INDEX ix_contacts_campaign ON contacts (campaign_id, id)")
    _ddl(conn, "CREATE INDEX ix_contacts_user_data ON contacts (user_data, id)")
    _ddl(
        conn,
        "CREATE TABLE contact_history ("
        " id INTEGER NOT NULL PRIMARY KEY, contact_id INTEGER NOT NULL, created_at DATETIME NOT NULL,"
        " result_code_id INTEGER, phone_number VARCHAR(32), phone_offset INTEGER, user_name VARCHAR(64),"
        " data JSON NOT NULL)",
    )
    _ddl(conn, "CREATE INDEX ix_history_contact ON contact_history (contact_id, id)")


def _v2(conn: Connection) -> None:
    _ddl(conn, "ALTER TABLE contacts ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    _ddl(conn, "ALTER TABLE contacts ADD COLUMN chain_id INTEGER")
    _ddl(conn, "CREATE INDEX ix_contacts_reserved ON contacts (reserved_by)")


def _v3(conn: Connection) -> None:
    _ddl(
        conn,
        "CREATE TABLE waitfield_contacts ("
        " id VARCHAR(36) NOT NULL PRIMARY KEY, queue VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL,"
        " external_id VARCHAR(128), created_at DATETIME NOT NULL, will_be_routed_at DATETIME NOT NULL,"
        " routed_at DATETIME, will_elapse_at DATETIME, removed_at DATETIME, record_id INTEGER,"
        " item JSON NOT NULL)",
    )
    _ddl(conn, "CREATE INDEX ix_waiting_state_due ON waitfield_contacts (state, will_be_routed_at)")
    _ddl(conn, "CREATE INDEX ix_waiting_queue_state ON waitfield_contacts (queue, state)")
    _ddl(conn, "CREATE INDEX ix_waiting_external ON waitfield_contacts (external_id)")
    _ddl(conn, "CREATE INDEX ix_waiting_record ON waitfield_contacts (record_id)")
    _ddl(
        conn,
        "CREATE TABLE waitfield_queue_settings ("
        " queue VARCHAR(64) NOT NULL PRIMARY KEY, settings JSON NOT NULL, updated_at DATETIME NOT NULL)",
    )


def _v4(conn: Connection) -> None:
    # Lookups by UserData are scoped to the caller's campaigns; with (user_data) alone SQLite, lacking
    # statistics, preferred the campaign index and read the whole campaign (500 ms at 1,000,000 contacts).
    _ddl(conn, "DROP INDEX IF EXISTS ix_contacts_user_data")
    _ddl(conn, "CREATE INDEX ix_contacts_user_data_campaign ON contacts (user_data, campaign_id, id)")


def _v5(conn: Connection) -> None:
    _ddl(
        conn,
        "CREATE TABLE notification_log ("
        " log_key VARCHAR(200) NOT NULL, replay_id BIGINT NOT NULL, channel VARCHAR(512) NOT NULL,"
        " audience VARCHAR(64), message TEXT NOT NULL, created_at TIMESTAMP NOT NULL,"
        " PRIMARY KEY (log_key, replay_id))",
    )
    _ddl(conn, "CREATE INDEX ix_log_created ON notification_log (created_at)")
    _ddl(
        conn,
        "CREATE TABLE notification_heads ("
        " log_key VARCHAR(200) NOT NULL PRIMARY KEY, last_id BIGINT NOT NULL, pruned_through BIGINT NOT NULL)",
    )


def _v6(conn: Connection) -> None:
    _ddl(
        conn,
        "CREATE TABLE preview_sessions ("
        " agent VARCHAR(64) NOT NULL, campaign_id INTEGER NOT NULL, started_at DATETIME NOT NULL,"
        " PRIMARY KEY (agent, campaign_id))",
    )
    _ddl(conn, "CREATE INDEX ix_preview_campaign ON preview_sessions (campaign_id, agent)")


# Append only: each step runs once, in its own transaction, and its number is recorded. The DDL is
# written out (not derived from the tables above) so that a step never changes once released.
MIGRATIONS: Final[tuple[tuple[int, str, Callable[[Connection], None]], ...]] = (
    (1, "contacts and contact history", _v1),
    (2, "attempts, chain and reservation index for outbound records", _v2),
    (3, "waiting field contacts and queue settings", _v3),
    (4, "UserData lookups scoped by campaign use one index", _v4),
    (5, "durable notification log (replay) and its per-log heads", _v5),
    (6, "preview sessions shared by the nodes", _v6),
)
