"""The notification log in the SQL database: appended inside the store's write transactions (the outbox).

Each log has a head row (notification_heads) whose `last_id` an append increments: the row lock makes
appends to one log follow each other, so ids are given in commit order and a reader that saw id N has
seen everything below it. Ids are contiguous per log; clients must not rely on that (Salesforce's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from gateway.store.log import LogBounds
from gateway.store.schema import notification_heads, notification_log
from gateway.wire.notification import Notification


def upsert_insert(conn: Connection) -> Any:
    """The dialect's INSERT with ON CONFLICT (SQLite 3.24+ and PostgreSQL both have it; Core's portable
    insert does not)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


if TYPE_CHECKING:
    from gateway.store.sql import SqlContactStore

_heads = notification_heads.c
_log = notification_log.c


def append(conn: Connection, notes: Sequence[Notification], now: datetime) -> list[Notification]:
    """Append the notifications that belong to a log, in the caller's transaction; all of them, ids set."""
    by_log: dict[str, list[Notification]] = {}
    for note in notes:
        if note.log is not None:
            by_log.setdefault(note.log, []).append(note)
    if not by_log:
        return list(notes)
    add = _append_postgresql if conn.dialect.name == "postgresql" else _append_portable
    next_id: dict[str, int] = {}
    # Sorted: two transactions appending to the same logs lock their heads in the same order (no deadlock).
    for key in sorted(by_log):
        group = by_log[key]
        next_id[key] = add(conn, key, group, [orjson.dumps(n.message()).decode() for n in group], now) - len(group) + 1
    out: list[Notification] = []
    for note in notes:
        if note.log is None:
            out.append(note)
            continue
        replay_id = next_id[note.log]
        next_id[note.log] = replay_id + 1
        out.append(note.logged(replay_id, now))
    return out


def _append_portable(conn: Connection, key: str, group: list[Notification], messages: list[str], now: datetime) -> int:
    """Append one log's notifications; return the log's new last id."""
    # One statement: the head row is created or incremented, row-locked until the commit, and its new
    # last_id returned. A concurrent append to the same log (another node, on PostgreSQL) waits for the
    # lock, then increments the committed value: ids are never given twice, even for a log's first entry.
    last = int(conn.execute(_bump(conn), {"key": key, "n": len(group)}).scalar_one())
    first = last - len(group) + 1
    rows = [
        {
            "log_key": key,
            "replay_id": first + i,
            "channel": note.channel,
            "audience": note.user,
            "message": message,
            "created_at": now,
        }
        for i, (note, message) in enumerate(zip(group, messages, strict=True))
    ]
    conn.execute(_INSERT, rows)
    return last


def _append_postgresql(
    conn: Connection, key: str, group: list[Notification], messages: list[str], now: datetime
) -> int:
    """_append_portable in one statement (one round trip instead of two, in every logged write)."""
    params = {
        "key": key,
        "n": len(group),
        "channels": [note.channel for note in group],
        "audiences": [note.user for note in group],
        "messages": messages,
        "created_at": now,
    }
    return max(int(r) for r in conn.execute(_APPEND_POSTGRESQL, params).scalars())


# The head's upsert (as _bump's) and the entries' insert, which numbers them from the new last_id, in the order given.
_APPEND_POSTGRESQL: Final = sa.text(
    "WITH head AS ("
    " INSERT INTO notification_heads AS h (log_key, last_id, pruned_through) VALUES (:key, :n, 0)"
    " ON CONFLICT (log_key) DO UPDATE SET last_id = h.last_id + excluded.last_id RETURNING h.last_id)"
    " INSERT INTO notification_log (log_key, replay_id, channel, audience, message, created_at)"
    " SELECT :key, head.last_id - :n + m.ord, m.channel, m.audience, m.message, :created_at FROM head,"
    " unnest(CAST(:channels AS text[]), CAST(:audiences AS text[]), CAST(:messages AS text[]))"
    " WITH ORDINALITY AS m(channel, audience, message, ord)"
    " RETURNING replay_id"
)
_INSERT: Final = sa.insert(notification_log)
_BUMPS: dict[str, Any] = {}


def _bump(conn: Connection) -> Any:
    # Built once per dialect: a statement built per append cost more CPU than the SQLite commit itself.
    statement = _BUMPS.get(conn.dialect.name)
    if statement is None:
        new = upsert_insert(conn)(notification_heads).values(
            log_key=sa.bindparam("key"), last_id=sa.bindparam("n"), pruned_through=0
        )
        statement = new.on_conflict_do_update(
            index_elements=[_heads.log_key], set_={"last_id": _heads.last_id + new.excluded.last_id}
        ).returning(_heads.last_id)
        _BUMPS[conn.dialect.name] = statement
    return statement


class SqlNotificationLog:
    """NotificationLog over the gateway's SQL database (reads on the store's readers, prunes on its writer)."""

    def __init__(self, db: SqlContactStore) -> None:
        self._db = db

    async def read(self, log: str, after: int, limit: int) -> list[Notification]:
        """Entries after `after`, oldest first."""
        query = (
            sa.select(_log.replay_id, _log.message, _log.audience, _log.created_at)
            .where(_log.log_key == log, _log.replay_id > after)
            .order_by(_log.replay_id)
            .limit(limit)
        )

        def fetch(conn: Connection) -> list[Notification]:
            out = []
            for r in conn.execute(query):
                message = orjson.loads(r.message)
                out.append(
                    Notification(
                        message["channel"],
                        message.get("data"),
                        user=r.audience,
                        log=log,
                        replay_id=r.replay_id,
                        created=r.created_at,
                        ext=message.get("ext"),
                    )
                )
            return out

        return await self._db.read(fetch)

    async def bounds(self, log: str) -> LogBounds:
        """The head row, or an empty log."""
        query = sa.select(_heads.last_id, _heads.pruned_through).where(_heads.log_key == log)

        def fetch(conn: Connection) -> LogBounds:
            row = conn.execute(query).one_or_none()
            return LogBounds(0, 0) if row is None else LogBounds(int(row.last_id), int(row.pruned_through))

        return await self._db.read(fetch)

    async def prune(self, *, before: datetime, keep: int) -> int:
        """Cut each log at the newer of its age limit and its length limit."""

        def op(conn: Connection) -> int:
            cuts: dict[str, int] = {}
            aged = (
                sa.select(_log.log_key, sa.func.max(_log.replay_id))
                .where(_log.created_at < before)
                .group_by(_log.log_key)
            )
            for key, newest_old in conn.execute(aged):
                cuts[key] = int(newest_old)
            long_logs = sa.select(_heads.log_key, _heads.last_id).where(_heads.last_id - keep > _heads.pruned_through)
            for key, last in conn.execute(long_logs):
                cuts[key] = max(cuts.get(key, 0), int(last) - keep)
            removed = 0
            for key, cut in cuts.items():
                result = conn.execute(sa.delete(notification_log).where(_log.log_key == key, _log.replay_id <= cut))
                removed += result.rowcount or 0
                conn.execute(
                    sa.update(notification_heads)
                    .where(_heads.log_key == key, _heads.pruned_through < cut)
                    .values(pruned_through=cut)
                )
            return removed

        result: int = await self._db.write(op)
        return result


class SqlOutbox(SqlNotificationLog):
    """The SQL log as the stream relay's outbox: entries stay until relayed and older than its keep time."""

    async def pending(self, *, older_than: datetime) -> dict[str, int]:
        """The logs with entries appended before `older_than`, and the newest such id of each."""
        query = _newest_before(older_than)

        def fetch(conn: Connection) -> dict[str, int]:
            return {key: int(top) for key, top in conn.execute(query)}

        return await self._db.read(fetch)

    async def discard(self, relayed: dict[str, int], *, before: datetime) -> int:
        """Drop each log's entries up to its relayed id that were appended before `before`; how many.

        A prefix of each log goes (up to the newest such entry), and its head's `pruned_through` follows: were
        the SQL log read again (replay.backend back to sql), an id in the dropped range is refused, not
        silently resumed past a hole.
        """
        if not relayed:
            return 0
        aged = _newest_before(before, _log.log_key.in_(sa.bindparam("keys", expanding=True)))
        delete = sa.delete(notification_log).where(
            _log.log_key == sa.bindparam("k"), _log.replay_id <= sa.bindparam("cut")
        )
        advance = (
            sa.update(notification_heads)
            .where(_heads.log_key == sa.bindparam("k"), _heads.pruned_through < sa.bindparam("cut"))
            .values(pruned_through=sa.bindparam("cut"))
        )

        # The heads this discard may advance, locked without waiting (PostgreSQL; SQLite has one writer): it runs
        # in a group commit beside other writes, whose appends lock heads too, so waiting for a head could
        # deadlock (seen in the cluster chaos run). A head locked elsewhere is discarded at a later sweep.
        heads = (
            sa.select(_heads.log_key)
            .where(_heads.log_key.in_(sa.bindparam("keys", expanding=True)))
            .order_by(_heads.log_key)
            .with_for_update(skip_locked=True)
        )

        def op(conn: Connection) -> int:
            free = set(conn.execute(heads, {"keys": sorted(relayed)}).scalars())
            cuts = [
                {"k": key, "cut": cut}
                for key, newest in conn.execute(aged, {"keys": sorted(free)})
                if (cut := min(int(newest), relayed[key])) > 0
            ]
            if not cuts:
                return 0
            removed = conn.execute(delete, cuts).rowcount or 0
            conn.execute(advance, cuts)
            return removed

        result: int = await self._db.write(op)
        return result


def _newest_before(before: datetime, *where: Any) -> Any:
    """Per log with entries appended before `before` (and matching `where`): its key and newest such id."""
    return (
        sa.select(_log.log_key, sa.func.max(_log.replay_id))
        .where(_log.created_at < before, *where)
        .group_by(_log.log_key)
    )
