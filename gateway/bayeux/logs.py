"""Which durable log a notification, or a subscription, belongs to (replay.channels).

An identity's own channels (/v2/me/**, /me/**: delivered to that identity only) make one log per
identity; every other replayable pattern is one log of the broadcasts on it. A subscription replays the
one log that covers it, so ids are comparable within what one subscription receives.
"""

from __future__ import annotations

from typing import Final

from gateway.bayeux.security import OWN_CHANNELS
from gateway.wire.channel import covers, matches

USER_LOG: Final = "user:"
CHANNEL_LOG: Final = "channel:"


def user_log(name: str) -> str:
    """The log of one identity's own notifications."""
    return USER_LOG + name


class LogPolicy:
    """replay.channels, as log keys."""

    def __init__(self, *, channels: tuple[str, ...], enabled: bool) -> None:
        self.enabled = enabled
        self._own = tuple(p for p in channels if any(covers(p, own) for own in OWN_CHANNELS))
        self._shared = tuple(p for p in channels if p not in self._own)

    def log_of(self, channel: str, user: str | None) -> str | None:
        """The log a notification on `channel` (to `user`, or to everyone when None) is appended to."""
        if not self.enabled:
            return None
        if user is not None:
            return user_log(user) if any(matches(p, channel) for p in self._own) else None
        for pattern in self._shared:
            if matches(pattern, channel):
                return CHANNEL_LOG + pattern
        return None

    def log_for(self, subscription: str, user: str | None) -> str | None:
        """The log a subscription of `user` (None: anonymous) replays; None if it is not replayable."""
        if not self.enabled:
            return None
        if user is not None and any(covers(subscription, p) for p in self._own):
            return user_log(user)
        for pattern in self._shared:
            if covers(subscription, pattern):
                return CHANNEL_LOG + pattern
        return None
