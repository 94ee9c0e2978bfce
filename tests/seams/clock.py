"""A clock the tests move by hand (monotonic seconds, as the registry and the hub read them)."""

from __future__ import annotations


class FakeClock:
    """Reads `now`; `advance(s)` moves it on."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock `seconds` forward."""
        self.now += seconds
