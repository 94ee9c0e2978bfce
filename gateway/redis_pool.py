"""The Redis client the shared registries use: a bounded pool whose callers wait for a connection."""

from __future__ import annotations

from typing import Final

from redis.asyncio import BlockingConnectionPool, Redis

# Enough for a node's concurrent REST operations; beyond it callers queue for up to WAIT_S.
MAX_CONNECTIONS: Final = 64
WAIT_S: Final = 5.0


def pooled(url: str) -> Redis:
    """A client on a blocking pool.

    redis-py's default asyncio pool raises `MaxConnectionsError` once 100 calls are in flight: under load a
    registry call failed after its operation had been applied (no acknowledgement, a 500, the entry left
    pending). A blocking pool makes the extra callers wait instead, with a bounded number of sockets.
    """
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_S, socket_connect_timeout=2.0, socket_timeout=5.0
    )
    return Redis.from_pool(pool)  # the client owns the pool: closing it closes the sockets
