"""Gap fill: what a node's sessions missed while its broker connection was away, read back from the durable log.

Sits between the broker and the hub (it is the broker's sink). Every logged envelope (one with `log` and
`replay_id`) passes a per-log cursor: `floor` (every id up to it was dispatched here, or read back) and the
ids above it seen out of order (two nodes' envelopes may cross on the wire). An envelope already seen is
dropped, so a notification reaches this node's sessions once, whichever way it came.

A `Kind.FILL` envelope asks for a fill: the broker hands one to the sink when its subscription is back
after a loss (and only once Redis confirmed it, so what is published from then on arrives live), and
another node publishes one when its own publishing connection is back or its queue overflowed (what it
dropped never reached anyone). A fill reads, for every log that this node's sessions subscribe to, the
entries after the cursor's floor and dispatches the ones not seen, in id order, as if they came live;
live envelopes of that log are held back during the read and follow it (no gap, no duplicate, in order).

Cursors start from the first envelope of a log the node sees, or, when a session subscribes to a log no
envelope has passed yet, from the log's last id at that moment. Ids below a cursor's start are history
from before this node watched the log: delivered when they arrive, never read back. Sessions that did not
opt into replay are filled too: the node knows the replayIds from the envelopes, not from the clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Final

import structlog

from gateway.broker.base import Envelope, Kind
from gateway.wire.replay import created_date

if TYPE_CHECKING:
    from gateway.bayeux.logs import LogPolicy
    from gateway.hub.hub import Hub
    from gateway.hub.session import Session
    from gateway.store.log import NotificationLog
    from gateway.wire.notification import Notification

log = structlog.get_logger("gateway.broker")

_CHUNK: Final = 5000
_READERS: Final = 4  # logs read at the same time by one fill
# Ids seen above a stuck floor: a hole that long is an envelope lost on the way (no notice came): fill.
_HOLE_LIMIT: Final = 1000
FILL_ORIGIN: Final = "gap-fill"


class Cursor:
    """How far one log has reached this node: everything up to `floor`, and `seen` above it."""

    __slots__ = ("floor", "seen", "start")

    def __init__(self) -> None:
        self.floor: int | None = None  # None: not known yet (no envelope, the log's last id not read yet)
        self.start = 0
        self.seen: set[int] = set()

    def begin(self, floor: int) -> None:
        """Watch from after `floor` (ids up to it are history)."""
        if self.floor is None:
            self.floor, self.start = floor, floor + 1

    def has(self, replay_id: int) -> bool:
        """True if the id was dispatched here already (a duplicate)."""
        floor = self.floor
        return floor is not None and (self.start <= replay_id <= floor or replay_id in self.seen)

    def add(self, replay_id: int) -> None:
        """Note a dispatched id; the floor moves up over every id seen without a hole."""
        if self.floor is None:
            self.begin(replay_id - 1)
        assert self.floor is not None
        if replay_id < self.start:
            return  # history: delivered, not tracked
        self.seen.add(replay_id)
        while self.floor + 1 in self.seen:
            self.floor += 1
            self.seen.discard(self.floor)

    def read_through(self, last: int) -> None:
        """The log was read up to `last`: every id up to it is accounted for (ids are given in commit order)."""
        if self.floor is not None and last > self.floor:
            self.floor = last
            self.seen = {i for i in self.seen if i > last}


class GapFill:
    """The broker's sink: drops logged envelopes seen already, and fills gaps from the log when asked."""

    def __init__(self, *, hub: Hub, log: NotificationLog | None, logs: LogPolicy) -> None:
        self._hub = hub
        self._log = log
        self._logs = logs
        self._cursors: dict[str, Cursor] = {}
        # Logs whose live envelopes are held back until their read is done; `_due`: those still to be read
        # (again, when a request came during their read).
        self._holding: dict[str, list[Envelope]] = {}
        self._due: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._began = 0.0
        self._delivered = 0
        self._starting: set[asyncio.Task[None]] = set()
        self.fills = 0  # fills run
        self.filled = 0  # entries dispatched from the log by a fill
        self.duplicates = 0  # logged envelopes dropped as seen already
        if log is not None and logs.enabled:
            hub.on_subscribed(self._subscribed)

    def dispatch(self, envelope: Envelope) -> int:
        """Hand an envelope to the hub (once per logged id); a FILL envelope starts a fill."""
        if envelope.kind is Kind.FILL:
            self.request()
            return 0
        name, replay_id = envelope.log, envelope.replay_id
        if name is None or replay_id is None or self._log is None:
            return self._hub.dispatch(envelope)
        held = self._holding.get(name)
        if held is not None:
            held.append(envelope)  # its log is being read back: it follows what the read finds
            return 0
        return self._admit(name, replay_id, envelope)

    def request(self) -> None:
        """Fill every subscribed log from the durable log: from now on their live envelopes wait for the read."""
        if self._log is None:
            return
        watched = self._watched()
        # A log no session here subscribes to needs no fill; its cursor starts afresh with its next envelope.
        for name in [n for n in self._cursors if n not in watched and n not in self._holding]:
            del self._cursors[name]
        for name in watched:
            cursor = self._cursors.get(name)
            if cursor is not None and cursor.floor is not None:
                # Held at once, not when the read starts: a live envelope dispatched before the read's older
                # ones would reach its sessions out of order.
                self._holding.setdefault(name, [])
                self._due.add(name)
        if self._task is None or self._task.done():
            self._began, self._delivered = time.monotonic(), 0
            self._task = asyncio.get_running_loop().create_task(self._fill(), name="broker-gap-fill")

    async def close(self) -> None:
        """Stop a fill in progress."""
        for task in [self._task, *self._starting]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._due.clear()
        self._holding.clear()

    def _admit(self, name: str, replay_id: int, envelope: Envelope) -> int:
        cursor = self._cursors.get(name)
        if cursor is None:
            cursor = self._cursors[name] = Cursor()
        if cursor.has(replay_id):
            self.duplicates += 1
            return 0
        cursor.add(replay_id)
        if len(cursor.seen) > _HOLE_LIMIT:
            self.request()
        return self._hub.dispatch(envelope)

    def _subscribed(self, session: Session, pattern: str) -> None:
        # A log no envelope has passed yet: watch it from its last id now (what comes later may need a fill).
        name = self._logs.log_for(pattern, session.user)
        if name is None or name in self._cursors:
            return
        cursor = self._cursors[name] = Cursor()
        task = asyncio.get_running_loop().create_task(self._begin(name, cursor))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _begin(self, name: str, cursor: Cursor) -> None:
        assert self._log is not None
        try:
            cursor.begin((await self._log.bounds(name)).last_id)
        except Exception as exc:  # the store away: the first envelope will start the cursor instead
            log.warning("gap_fill_cursor_unknown", log=name, error=str(exc))

    def _watched(self) -> set[str]:
        names: set[str] = set()
        for session in list(self._hub.sessions.values()):
            for pattern in session.subscriptions:
                name = self._logs.log_for(pattern, session.user)
                if name is not None:
                    names.add(name)
        return names

    async def _fill(self) -> None:
        logs = 0
        while self._due:
            # A few reads at a time: each held log waits for its own read only, and the store's readers stay
            # free for the REST calls.
            batch = sorted(self._due)[:_READERS]
            self._due.difference_update(batch)
            logs += len(batch)
            await asyncio.gather(*(self._fill_one(name) for name in batch))
        self.fills += 1
        log.info(
            "broker_gap_filled",
            logs=logs,
            delivered=self._delivered,
            duration_s=round(time.monotonic() - self._began, 3),
        )

    async def _fill_one(self, name: str) -> None:
        try:
            await self._fill_log(name)
        except Exception:  # never die silently: what it held goes out, the next request reads again
            log.exception("gap_fill_failed", log=name)
            self._release(name)

    async def _fill_log(self, name: str) -> None:
        cursor = self._cursors.get(name)
        if cursor is None or cursor.floor is None:
            self._release(name)
            return
        entries = await self._read(name, cursor.floor)
        for note in entries:
            assert note.replay_id is not None
            if not cursor.has(note.replay_id):
                self._delivered += 1
                self.filled += 1
                self._admit(name, note.replay_id, _envelope(note))
        if entries and entries[-1].replay_id is not None:
            cursor.read_through(entries[-1].replay_id)
        if name not in self._due:  # asked again during the read: it stays held until read again
            self._release(name)

    def _release(self, name: str) -> None:
        """Dispatch what was held back for `name` (each id once) and stop holding it."""
        for envelope in self._holding.pop(name, []):
            assert envelope.replay_id is not None
            self._admit(name, envelope.replay_id, envelope)

    async def _read(self, name: str, after: int) -> list[Notification]:
        assert self._log is not None
        entries: list[Notification] = []
        while True:
            chunk = await self._log.read(name, after, _CHUNK)
            entries.extend(chunk)
            if len(chunk) < _CHUNK:
                return entries
            after = chunk[-1].replay_id or after


def _envelope(note: Notification) -> Envelope:
    """A logged notification read back, as the envelope its relay sent."""
    kind = Kind.BROADCAST if note.user is None else Kind.USER
    created = created_date(note.created) if note.created is not None else None
    return Envelope(
        kind, note.message(), FILL_ORIGIN, user=note.user, log=note.log, replay_id=note.replay_id, created=created
    )
