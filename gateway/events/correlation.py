"""The referenceId correlation registry: referenceId -> identity, operation, fingerprint, state, result."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import orjson


class State(Enum):
    """Where a correlated operation is."""

    PENDING = "pending"
    DONE = "done"


@dataclass(slots=True)
class Correlation:
    """One correlated operation.

    The outcome is kept serialized: bytes are compact and invisible to the garbage collector, whose full
    collections otherwise grow with every kept result (measured as latency bursts under load).
    """

    user: str
    reference_id: str
    operation: str
    fingerprint: str
    created: float
    state: State = State.PENDING
    status: int | None = None
    _result: bytes = b"null"
    _notification: bytes = b"null"
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def result(self) -> Any:
        """The answer the operation gave (its body)."""
        return orjson.loads(self._result)

    @property
    def notification(self) -> Any:
        """Extra data a dialect keeps with the outcome (e.g. the GWS notifications sent)."""
        return orjson.loads(self._notification)

    async def wait(self) -> None:
        """Wait until the operation has finished."""
        await self._done.wait()


class Started(Enum):
    """What `begin` found."""

    NEW = "new"  # run the operation
    DUPLICATE = "duplicate"  # same request seen before: answer with its result
    CONFLICT = "conflict"  # same referenceId, another request


class CorrelationRegistry(Protocol):
    """Shared by every node once there is more than one (Redis later); memory for one process."""

    def begin(self, user: str, reference_id: str, operation: str, fingerprint: str) -> tuple[Started, Correlation]:
        """Register an operation, or find the one already registered under this referenceId."""

    def complete(self, entry: Correlation, status: int, result: Any, notification: Any = None) -> None:
        """Record the outcome and release anyone waiting for it."""

    def abandon(self, entry: Correlation) -> None:
        """Forget an operation that failed unexpectedly, so that a retry runs it again."""

    def get(self, user: str, reference_id: str) -> Correlation | None:
        """The operation `user` registered under `reference_id`, if still kept."""

    def __len__(self) -> int:
        """Entries kept."""


class MemoryCorrelationRegistry:
    """In-process registry, bounded in size (oldest dropped first) and in time (entries expire)."""

    def __init__(self, *, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[tuple[str, str], Correlation] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl_s
        self._clock = clock

    def begin(self, user: str, reference_id: str, operation: str, fingerprint: str) -> tuple[Started, Correlation]:
        """Register, or report a duplicate or a conflict."""
        self._expire()
        key = (user, reference_id)
        entry = self._entries.get(key)
        if entry is not None:
            if entry.fingerprint == fingerprint and entry.operation == operation:
                return Started.DUPLICATE, entry
            return Started.CONFLICT, entry
        entry = Correlation(user, reference_id, operation, fingerprint, created=self._clock())
        self._entries[key] = entry
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return Started.NEW, entry

    def complete(self, entry: Correlation, status: int, result: Any, notification: Any = None) -> None:
        """Record the outcome."""
        entry.state, entry.status = State.DONE, status
        entry._result = orjson.dumps(result)
        entry._notification = orjson.dumps(notification)
        entry._done.set()

    def abandon(self, entry: Correlation) -> None:
        """Forget the entry (waiters are released and will run the operation themselves)."""
        key = (entry.user, entry.reference_id)
        if self._entries.get(key) is entry:
            del self._entries[key]
        entry._done.set()

    def get(self, user: str, reference_id: str) -> Correlation | None:
        """The entry, if kept and not expired."""
        self._expire()
        return self._entries.get((user, reference_id))

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self) -> None:
        limit = self._clock() - self._ttl
        entries = self._entries
        while entries:
            oldest = next(iter(entries.values()))
            if oldest.created >= limit:
                break
            entries.popitem(last=False)
