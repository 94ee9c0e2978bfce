"""The stream relay: outbox entries committed in SQL become Redis stream entries, then live envelopes, once each.

A store write appends its notifications to the SQL log in its own transaction (the outbox: the change and
its notifications commit together, with their replay ids). After the commit the writing node's relay
appends them to the log's stream with a compare-and-set on the stream's last id (store/redis_log.py): if
another relay moved it first (another node's commit, or a sweep), the relay reads the committed outbox
entries after the stream's last id and appends those, its own among them. Whoever appends an entry
delivers it live, so a session gets it once, and never before it is in the stream (the replay reads the
stream: an entry is either in a replay's read or delivered after it).

What a relay could not append (Redis away, the node killed between commit and relay) waits in the outbox:
every node sweeps it each `period`, appending what the streams lack. Entries stay in the outbox for
`keep_s` after they are relayed, so a Redis that lost its last writes in a crash (AOF `everysec`) gets them
again. A relay that failed without knowing whether its append ran asks the nodes for a gap fill once a
sweep succeeds (the entries may be in the stream without having been delivered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

import structlog

from gateway.clock import WallClock, utcnow
from gateway.wire.notification import Notification

if TYPE_CHECKING:
    from gateway.store.redis_log import RedisStreamLog

log = structlog.get_logger("gateway.store.relay")

_CHUNK: Final = 1000
_TRIES: Final = 50  # compare-and-set rounds lost to other relays before giving up (the sweep goes on)
_TIMEOUT_S: Final = 2.0  # a relay that takes longer leaves its entries to the sweep: writers are not held


class Outbox(Protocol):
    """The committed entries the relay reads and, once relayed and old enough, discards."""

    async def read(self, log: str, after: int, limit: int) -> list[Notification]:
        """Entries of `log` after `after`, oldest first."""

    async def pending(self, *, older_than: datetime) -> dict[str, int]:
        """Logs with entries appended before `older_than`, and the newest such id of each."""

    async def discard(self, relayed: dict[str, int], *, before: datetime) -> int:
        """Drop entries up to each log's relayed id appended before `before`."""


class StreamRelay:
    """The store's relay when the log is in Redis Streams; `sweep` (every node) carries what was left."""

    def __init__(
        self,
        *,
        stream: RedisStreamLog,
        outbox: Outbox,
        deliver: Callable[[Iterable[Notification]], None],
        fill: Callable[[], None],
        keep_s: float,
        grace_s: float = 1.0,
        clock: WallClock = utcnow,
    ) -> None:
        self.stream = stream
        self._outbox = outbox
        self._deliver = deliver
        self._fill = fill
        self._keep = timedelta(seconds=keep_s)
        self._grace = timedelta(seconds=grace_s)
        self._clock = clock
        self._down = False  # the last relay or sweep failed: new commits wait for the sweep
        self._owed = False  # a failed relay may have appended without delivering: fill after the next sweep
        self.failures = 0  # relays and sweeps that failed
        self.swept = 0  # entries appended by sweeps (left by a failed relay or a dead node)
        self.diverged = 0  # commits whose ids the stream holds with other entries (not ours)

    async def __call__(self, notes: list[Notification]) -> None:
        """Relay one commit's notifications: append the logged ones, then deliver, in commit order."""
        by_log: dict[str, list[Notification]] = {}
        for note in notes:
            if note.log is not None:
                by_log.setdefault(note.log, []).append(note)
        carried: dict[str, list[Notification]] = {}
        if by_log and not self._down:
            try:
                async with asyncio.timeout(_TIMEOUT_S):
                    results = await asyncio.gather(*(self._relay(name, entries) for name, entries in by_log.items()))
                carried = dict(zip(by_log, results, strict=True))
            except Exception as exc:  # Redis away or slow: the sweep appends them (and fills)
                self._failed("stream_relay_failed", exc)
                self._owed = True
        self._deliver(_in_commit_order(notes, carried))

    async def _relay(self, name: str, entries: list[Notification]) -> list[Notification]:
        first, last = entries[0].replay_id, entries[-1].replay_id
        assert first is not None and last is not None
        moved = await self.stream.append(name, first - 1, entries, truncate=False)
        if moved is None:
            return entries
        carried = await self._catch_up(name, moved, through=last)
        # The catch-up may carry entries past ours; ours are among them when its range covers our last id.
        ours = bool(carried) and (carried[0].replay_id or 0) <= last <= (carried[-1].replay_id or 0)
        if ours or await self.stream.holds(entries[-1]):
            return carried  # ours were appended (by us, or by the relay that moved the stream: it delivered them)
        # The stream has our ids with other entries: its history is another database's (a second deployment on
        # the same stream_prefix, a database restored from a backup). Said loudly; delivered live all the same.
        self.diverged += 1
        log.error("stream_log_diverged", log=name, replay_id=last, stream_last=moved)
        return carried + [n for n in entries if n not in carried]

    async def _catch_up(self, name: str, last: int, *, through: int | None) -> list[Notification]:
        """Append the outbox's entries after the stream's `last` (up to `through` at least); those appended."""
        carried: list[Notification] = []
        for _ in range(_TRIES):
            if through is not None and last >= through:
                return carried  # another relay appended ours (and delivered them)
            rows = await self._outbox.read(name, last, _CHUNK)
            if not rows:
                return carried
            # Outbox ids are contiguous: a first id past `last + 1` means the ones between were relayed,
            # discarded, and lost by the stream since (a Redis restarted without them): gone for good.
            moved = await self.stream.append(name, last, rows, truncate=rows[0].replay_id != last + 1)
            if moved is None:
                carried += rows
                last = rows[-1].replay_id or last
                if through is None and len(rows) < _CHUNK:
                    return carried
            else:
                last = moved
        raise RuntimeError(f"log {name!r}: the stream kept moving")

    async def sweep(self) -> int:
        """Append what the streams lack, deliver it, and discard what is relayed and older than keep_s."""
        now = self._clock()
        try:
            pending = await self._outbox.pending(older_than=now - self._grace)
            lasts = await self.stream.last_ids(list(pending))
            appended = 0
            for name, top in pending.items():
                if top > lasts[name]:
                    carried = await self._catch_up(name, lasts[name], through=None)
                    if carried:
                        lasts[name] = carried[-1].replay_id or lasts[name]
                        appended += len(carried)
                        self._deliver(carried)
            await self._outbox.discard(lasts, before=now - self._keep)
        except Exception as exc:
            self._failed("stream_sweep_failed", exc)
            return 0
        if self._down:
            log.info("stream_relay_recovered", appended=appended)
        self._down = False
        if self._owed:
            self._owed = False
            self._fill()
        self.swept += appended
        return appended

    async def run(self, period_s: float) -> None:
        """Sweep every `period_s` until cancelled."""
        while True:
            await self.sweep()
            await asyncio.sleep(period_s)

    def _failed(self, event: str, exc: BaseException) -> None:
        self.failures += 1
        if not self._down:  # once per outage, not once per commit
            log.warning(event, error=str(exc) or type(exc).__name__)
        self._down = True


def _in_commit_order(notes: Sequence[Notification], carried: dict[str, list[Notification]]) -> list[Notification]:
    """The commit's notifications as they go live: unlogged ones as they are; each log's appended entries
    (other nodes' ones carried first, in id order) in place of that log's first notification."""
    out: list[Notification] = []
    for note in notes:
        if note.log is None:
            out.append(note)
        elif note.log in carried:
            out.extend(carried.pop(note.log))
    return out
