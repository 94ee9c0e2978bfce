"""GWS's HTTP sessions: the JSESSIONID cookie a Basic-authenticated request is answered with, and its CSRF token.

The seam (WebSessionStore) and its memory implementation (one node); redis_web_sessions.py keeps them in
Redis, so a cookie obtained on one node is accepted by the others.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from gateway.identity import Identity

MAX_WEB_SESSIONS: Final = 100_000


@dataclass(frozen=True, slots=True)
class WebSession:
    """An authenticated HTTP session (the JSESSIONID cookie) and its CSRF token."""

    identity: Identity
    csrf: str


def new_ids() -> tuple[str, str]:
    """A new session id and CSRF token (192 random bits each)."""
    return secrets.token_urlsafe(24), secrets.token_urlsafe(24)


class WebSessionStore(Protocol):
    """JSESSIONID -> session; a session unused for the TTL (gws.session_ttl_s) is gone."""

    async def create(self, identity: Identity) -> tuple[str, WebSession]:
        """A new session for `identity`, and its id."""

    async def get(self, session_id: str | None) -> WebSession | None:
        """The live session with this id (its idle timer restarts), or None."""

    async def close(self) -> None:
        """Release connections."""


class MemoryWebSessions:
    """WebSessionStore in this process; bounded in number (the least recently used go first)."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._by_id: OrderedDict[str, tuple[WebSession, float]] = OrderedDict()

    async def create(self, identity: Identity) -> tuple[str, WebSession]:
        """Kept with its expiry."""
        session_id, csrf = new_ids()
        session = WebSession(identity, csrf)
        self._by_id[session_id] = (session, self._clock() + self._ttl)
        while len(self._by_id) > MAX_WEB_SESSIONS:
            self._by_id.popitem(last=False)
        return session_id, session

    async def get(self, session_id: str | None) -> WebSession | None:
        """Looked up, expired ones dropped."""
        if not session_id:
            return None
        found = self._by_id.get(session_id)
        if found is None:
            return None
        session, expires = found
        now = self._clock()
        if expires < now:
            del self._by_id[session_id]
            return None
        self._by_id[session_id] = (session, now + self._ttl)
        self._by_id.move_to_end(session_id)
        return session

    async def close(self) -> None:
        """Nothing to release."""
