"""Pooled PostgreSQL connections: replaced when the server went away, without a round trip per checkout."""

from __future__ import annotations

import select
import time
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
IDLE_PING_S: Final = 1.0


def ping_when_idle(engine: Engine) -> None:
    """A server restarted under us: a dead pooled connection is replaced, not handed out (as pool_pre_ping).

    pool_pre_ping pings at every checkout, a round trip per transaction and per read, as costly as a
    statement. Here a connection is pinged only when it sat idle for IDLE_PING_S, or when its socket has
    something to read while idle: a server that ends a connection (a restart, pg_terminate_backend) sends
    its FATAL message and closes the socket, so a dead connection shows without a round trip.
    """

    @sa.event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        # `info` is cleared with its connection: a new connection has no idle_since and needs no ping.
        since = record.info.get("idle_since")
        if since is None or (time.monotonic() - since < IDLE_PING_S and not _readable(dbapi_conn)):
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # As pool_pre_ping: the server went away, so every connection opened before now is replaced.
            raise sa.exc.InvalidatePoolError(str(exc)) from exc


def _readable(dbapi_conn: Any) -> bool:
    """True when an idle connection's socket has data or EOF waiting (or cannot be polled)."""
    try:
        readable, _, _ = select.select([dbapi_conn.fileno()], [], [], 0)
    except Exception:  # a closed connection has no descriptor: let the ping tell
        return True
    return bool(readable)
