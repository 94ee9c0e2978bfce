"""GWS web sessions in Redis: one key per JSESSIONID with the idle TTL, so every node accepts every cookie.

Only the identity's name and the CSRF token are kept; the identity itself comes from this node's
configuration (every node has the same users), so a user removed from it loses its sessions.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from redis.asyncio import Redis

from gateway.api.web_sessions import WebSession, new_ids
from gateway.identity import Identity
from gateway.redis_pool import answers, pooled


class RedisWebSessions:
    """WebSessionStore in Redis: `SET key value PX ttl` on create, `GETEX key PX ttl` (idle timer) on use."""

    def __init__(
        self, *, url: str, ttl_s: float, identity_of: Callable[[str], Identity | None], prefix: str = "gateway:"
    ) -> None:
        self._redis: Redis = pooled(url)
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._identity_of = identity_of
        self._prefix = f"{prefix}websession:"

    async def create(self, identity: Identity) -> tuple[str, WebSession]:
        """One SET with its expiry."""
        session_id, csrf = new_ids()
        value = orjson.dumps({"user": identity.name, "csrf": csrf})
        await self._redis.set(self._prefix + session_id, value, px=self._ttl_ms)
        return session_id, WebSession(identity, csrf)

    async def get(self, session_id: str | None) -> WebSession | None:
        """One GETEX: read and restart the idle timer in the same command."""
        # Ids we issue are 32 characters; anything far longer is no id of ours (and no key to build).
        if not session_id or len(session_id) > 128:
            return None
        raw = await self._redis.getex(self._prefix + session_id, px=self._ttl_ms)
        if raw is None:
            return None
        stored = orjson.loads(raw)
        identity = self._identity_of(str(stored.get("user")))
        if identity is None:
            return None
        return WebSession(identity, str(stored.get("csrf")))

    async def ping(self) -> bool:
        """True when this client's Redis answers (for /readyz)."""
        return await answers(self._redis)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
