"""The Redis client the shared registries use (a bounded pool whose callers wait for a connection), its
readiness probe, and URLs fit for logs."""

from __future__ import annotations

import asyncio
from typing import Final

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

# Enough for a node's concurrent REST operations; beyond it callers queue for up to WAIT_S.
MAX_CONNECTIONS: Final = 64
WAIT_S: Final = 5.0
# A /readyz probe answers within this, whatever Redis does: a load balancer's check must not hang on it.
PING_TIMEOUT_S: Final = 1.0


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


async def answers(client: Redis, timeout_s: float = PING_TIMEOUT_S) -> bool:
    """True when `client`'s Redis answers a PING within `timeout_s` (a /readyz probe)."""
    try:
        async with asyncio.timeout(timeout_s):
            return bool(await client.ping())
    except (RedisError, OSError):  # TimeoutError is an OSError
        return False


def masked(url: str) -> str:
    """The URL without its password (redis://user:secret@host -> redis://user:***@host), for logs."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
