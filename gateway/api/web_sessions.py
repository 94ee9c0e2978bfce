"""GWS's HTTP sessions: the JSESSIONID cookie a Basic-authenticated request is answered with, and its CSRF token.

Per node today (in memory): a cookie obtained on one node is not known to another.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gateway.identity import Identity

MAX_WEB_SESSIONS: Final = 100_000


@dataclass(slots=True)
class WebSession:
    """An authenticated HTTP session (the JSESSIONID cookie) and its CSRF token."""

    identity: Identity
    csrf: str
    expires: float


class WebSessions:
    """JSESSIONID -> session; idle sessions expire after gws.session_ttl_s; bounded in number."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._by_id: OrderedDict[str, WebSession] = OrderedDict()

    def create(self, identity: Identity) -> tuple[str, WebSession]:
        """A new session for `identity`."""
        session_id = secrets.token_urlsafe(24)
        session = WebSession(identity, secrets.token_urlsafe(24), self._clock() + self._ttl)
        self._by_id[session_id] = session
        while len(self._by_id) > MAX_WEB_SESSIONS:
            self._by_id.popitem(last=False)
        return session_id, session

    def get(self, session_id: str | None) -> WebSession | None:
        """The live session with this id (its idle timer restarts)."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if session.expires < now:
            del self._by_id[session_id]
            return None
        session.expires = now + self._ttl
        self._by_id.move_to_end(session_id)
        return session
