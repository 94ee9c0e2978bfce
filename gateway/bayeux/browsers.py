"""The multiple-clients rule: how many long-polling sessions of one browser (cookie) may hold a connect."""

from __future__ import annotations

from collections import Counter

from gateway.hub.session import HeldConnect, Session


class BrowserHolds:
    """Held long-polling connects per BAYEUX_BROWSER cookie, bounded by `max_sessions_per_browser`."""

    def __init__(self, *, limit: int) -> None:
        self._limit = limit  # -1: unlimited
        self._count: Counter[str] = Counter()
        self._browser_of: dict[int, str] = {}  # id(held connect) -> its browser

    def may_hold(self, session: Session) -> bool:
        """True if the session's browser is under the limit (its own older connect does not count)."""
        browser = session.browser_id
        if self._limit < 0 or browser is None:
            return True
        already = self._count[browser]
        if session.held is not None and self._browser_of.get(id(session.held)) == browser:
            already -= 1  # this session's own older connect is about to be replaced
        return already < self._limit

    def hold(self, held: HeldConnect, session: Session) -> None:
        """Count a connect now held for a session with a browser cookie."""
        if session.browser_id is not None:
            self._count[session.browser_id] += 1
            self._browser_of[id(held)] = session.browser_id

    def release(self, held: HeldConnect) -> None:
        """Stop counting a released connect."""
        browser = self._browser_of.pop(id(held), None)
        if browser is not None:
            self._count[browser] -= 1
            if self._count[browser] <= 0:
                del self._count[browser]
