"""The referenceId correlation registry: referenceId -> identity, operation, fingerprint, state, result.

The registry is a seam (a Redis one serves several nodes): its methods are async and its entries are plain
data, so an entry read on one node says the same as on another. Waiting for an operation in progress is
the registry's job (`wait`), not something carried in the entry.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Protocol

import orjson


def kept_json(value: Any) -> bytes:
    """`value` serialized for keeping: JSON bytes whose allocation is their length."""
    # orjson hands back its whole output buffer with the length set short (4 KiB at least with orjson 3.13):
    # a 16-byte answer kept in the registry held 4 KiB, ~9 KiB per entry with its notifications (measured
    # with bench/rss_probe.py). One copy of a few hundred bytes right-sizes it.
    return bytes(memoryview(orjson.dumps(value)))


class State(Enum):
    """Where a correlated operation is."""

    PENDING = "pending"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Correlation:
    """One correlated operation, as the registry holds it.

    The outcome is kept serialized: bytes are compact, travel to a shared registry as they are, and are
    invisible to the garbage collector, whose full collections otherwise grow with every kept result
    (measured as latency bursts under load).
    """

    user: str
    reference_id: str
    operation: str
    fingerprint: str
    created: float
    state: State = State.PENDING
    status: int | None = None
    result_json: bytes = b"null"
    notification_json: bytes = b"null"

    @property
    def result(self) -> Any:
        """The answer the operation gave (its body)."""
        return orjson.loads(self.result_json)

    @property
    def notification(self) -> Any:
        """Extra data a dialect keeps with the outcome (e.g. the GWS notifications sent)."""
        return orjson.loads(self.notification_json)

    def finished(self, status: int, result: Any, notification: Any = None) -> Correlation:
        """This entry with the operation's outcome."""
        return replace(
            self,
            state=State.DONE,
            status=status,
            result_json=kept_json(result),
            notification_json=kept_json(notification),
        )

    def seen_again(self, operation: str, fingerprint: str) -> Started:
        """What a second request under this entry's referenceId is: the same one again, or another."""
        if self.operation == operation and self.fingerprint == fingerprint:
            return Started.DUPLICATE
        return Started.CONFLICT

    def size(self) -> int:
        """Bytes the entry costs, roughly (its strings and serialized outcome)."""
        return (
            len(self.user)
            + len(self.reference_id)
            + len(self.operation)
            + len(self.fingerprint)
            + len(self.result_json)
            + len(self.notification_json)
        )


class Started(Enum):
    """What `begin` found."""

    NEW = "new"  # run the operation
    DUPLICATE = "duplicate"  # same request seen before: answer with its result (wait if pending)
    CONFLICT = "conflict"  # same referenceId, another request


class CorrelationRegistry(Protocol):
    """Where correlated operations are remembered: memory for one process, shared for several nodes.

    `begin` is atomic: of two requests with the same (user, referenceId), exactly one gets NEW.
    """

    async def begin(
        self, user: str, reference_id: str, operation: str, fingerprint: str
    ) -> tuple[Started, Correlation]:
        """Register an operation, or find the one already registered under this referenceId."""

    async def complete(self, entry: Correlation, status: int, result: Any, notification: Any = None) -> Correlation:
        """Record the outcome, release anyone waiting for it; return the finished entry."""

    async def abandon(self, entry: Correlation) -> None:
        """Forget an operation that failed unexpectedly, so that a retry runs it again."""

    async def get(self, user: str, reference_id: str) -> Correlation | None:
        """The operation `user` registered under `reference_id`, if still kept."""

    async def wait(self, entry: Correlation, timeout_s: float) -> Correlation | None:
        """The entry once finished; None if it was abandoned (or expired) or `timeout_s` passed first."""

    async def count(self) -> int:
        """Entries kept."""


class MemoryCorrelationRegistry:
    """In-process registry, bounded in entries and in bytes (oldest dropped first) and in time (entries expire).

    Bytes are estimated by `Correlation.size` (its strings and serialized outcome), kept as a running total.
    """

    def __init__(
        self,
        *,
        max_entries: int,
        ttl_s: float,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: OrderedDict[tuple[str, str], Correlation] = OrderedDict()
        self._waiters: dict[tuple[str, str], asyncio.Event] = {}
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._ttl = ttl_s
        self._clock = clock

    def bytes_used(self) -> int:
        """The estimated size of the entries kept (what `max_bytes` bounds)."""
        return self._bytes

    async def begin(
        self, user: str, reference_id: str, operation: str, fingerprint: str
    ) -> tuple[Started, Correlation]:
        """Register, or report a duplicate or a conflict."""
        self._expire()
        key = (user, reference_id)
        entry = self._entries.get(key)
        if entry is not None:
            return entry.seen_again(operation, fingerprint), entry
        entry = Correlation(user, reference_id, operation, fingerprint, created=self._clock())
        self._entries[key] = entry
        self._bytes += entry.size()
        self._bound()
        return Started.NEW, entry

    async def complete(self, entry: Correlation, status: int, result: Any, notification: Any = None) -> Correlation:
        """Record the outcome."""
        done = entry.finished(status, result, notification)
        key = (entry.user, entry.reference_id)
        if self._entries.get(key) == entry:
            self._entries[key] = done
            self._bytes += done.size() - entry.size()
            self._bound()
        self._release(key)
        return done

    async def abandon(self, entry: Correlation) -> None:
        """Forget the entry (waiters are released and will run the operation themselves)."""
        key = (entry.user, entry.reference_id)
        if self._entries.get(key) == entry:
            del self._entries[key]
            self._bytes -= entry.size()
        self._release(key)

    async def get(self, user: str, reference_id: str) -> Correlation | None:
        """The entry, if kept and not expired."""
        self._expire()
        return self._entries.get((user, reference_id))

    async def wait(self, entry: Correlation, timeout_s: float) -> Correlation | None:
        """Wait until the entry is finished or forgotten."""
        key = (entry.user, entry.reference_id)
        current = self._entries.get(key)
        if current is None or current.state is State.DONE:
            return current
        event = self._waiters.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return None
        current = self._entries.get(key)
        return current if current is not None and current.state is State.DONE else None

    async def count(self) -> int:
        """Entries kept."""
        return len(self._entries)

    def _release(self, key: tuple[str, str]) -> None:
        event = self._waiters.pop(key, None)
        if event is not None:
            event.set()

    def _expire(self) -> None:
        limit = self._clock() - self._ttl
        entries = self._entries
        while entries:
            oldest = next(iter(entries.values()))
            if oldest.created >= limit:
                break
            self._drop_oldest()

    def _bound(self) -> None:
        """Drop the oldest entries while over `max_entries` or `max_bytes`."""
        entries = self._entries
        while len(entries) > self._max or (self._max_bytes is not None and self._bytes > self._max_bytes and entries):
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, dropped = self._entries.popitem(last=False)
        self._bytes -= dropped.size()
        self._release((dropped.user, dropped.reference_id))
