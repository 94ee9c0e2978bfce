"""Time as the gateway keeps it: UTC wall-clock moments without zone (the store's form)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

WallClock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, in UTC, naive (the store keeps UTC without zone)."""
    return datetime.now(UTC).replace(tzinfo=None)
