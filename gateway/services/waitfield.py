"""The SNtial Wait waiting field: callers wait off-line, are routed to agents when due, elapse when nobody
takes them.

Timeline (dialler-and-waitfield.md §5.4): estimatedWaitingTime = multiplier * contacts ahead, clamped to
[minimum, maximum]; willBeRoutedAt = createdAt + estimate. Routing creates the routingObject and a record in
the queue's callback campaign, offered to a waiting agent with the skills; willElapseAt = routedAt + maximum.
An agent taking the record connects the contact; completing it handles it. Not taken by willElapseAt: elapsed.

Several nodes on one store: each step is a compare-and-set on the contact's stored state (routing is one
transaction that claims the contact and creates its record), so a step runs once however many nodes try
it; every node re-reads the active contacts every `rescan_s` and arms their timers, so a contact created
on a node that died is still routed and elapsed. A node that loses a step re-reads the contact.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from gateway.clock import utcnow
from gateway.events.types import EventSink, WaitfieldEvent
from gateway.services import waitfield_items as items
from gateway.services.due import DueTimers, every
from gateway.services.errors import InvalidInput, NotFound
from gateway.services.outbound import OutboundService
from gateway.services.waitfield_input import additional_map, first_error, number, text
from gateway.services.waitfield_items import ACTIVE, sntial_time
from gateway.settings import MAX_MULTIPLIER, MAX_WAITING_TIME, QueueTimes, WaitQueueSettings
from gateway.store.base import ContactRow, ContactStore
from gateway.store.waitfield import WaitfieldStore, WaitRow
from gateway.wire.notification import Notification

log = structlog.get_logger("gateway.waitfield")

__all__ = ["ACTIVE", "Waitfield", "sntial_time"]


class Waitfield:
    """Creates, routes, elapses and removes waiting contacts; one timer per due moment."""

    def __init__(
        self,
        *,
        store: WaitfieldStore,
        records: ContactStore,
        outbound: OutboundService,
        events: EventSink,
        queues: tuple[WaitQueueSettings, ...],
        max_additional_entries: int,
        max_additional_bytes: int,
        clock: Callable[[], datetime] = utcnow,
        rescan_s: float | None = None,
    ) -> None:
        self._store = store
        self._records = records
        self._outbound = outbound
        self._events = events
        self._queues = {q.name: q for q in queues}
        self._times: dict[str, QueueTimes] = {q.name: q.settings for q in queues}
        self._max_entries = max_additional_entries
        self._max_bytes = max_additional_bytes
        self._clock = clock
        self._rescan_s = rescan_s
        self._waiting: dict[str, int] = dict.fromkeys(self._queues, 0)  # contacts not yet routed, per queue
        self._due: DueTimers[str] = DueTimers(clock=clock)
        # Contacts still waiting or routed, as this node last wrote or read them (reloaded at start, and
        # every rescan_s with several nodes). Steps check the stored state when they write, so a stale copy
        # costs a lost compare-and-set and a re-read, never a wrong write.
        self._active: dict[str, WaitRow] = {}
        self._by_record: dict[int, str] = {}  # callback record -> routed contact
        self._touched: set[str] = set()  # contacts this node changed during the current scan
        # One contact's steps never overlap on this node (a removal racing its routing, say).
        self._locks: dict[str, asyncio.Lock] = {}
        self._scanner: asyncio.Task[None] | None = None

    # -- life cycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load changed settings, count the waiting, re-arm every pending routing and elapse (overdue at once)."""
        for name, stored in (await self._store.queue_settings()).items():
            if name in self._queues:
                try:
                    self._times[name] = QueueTimes.model_validate(stored)
                except ValueError:
                    # Stored before a bound existed: the configured settings apply instead.
                    log.warning("waitfield_stored_settings_ignored", queue=name, settings=stored)
        await self.scan()
        if self._rescan_s is not None:
            self._scanner = asyncio.create_task(
                every(self._rescan_s, self.scan, "waitfield_rescan_failed"), name="waitfield-rescan"
            )

    async def scan(self) -> None:
        """Take the store's active contacts as they are (those other nodes created or stepped too)."""
        self._touched.clear()
        before = set(self._active)
        rows = await self._store.active()
        for row in rows:
            known = self._active.get(row.id)
            if row.id not in self._touched and (known is None or known.state != row.state):
                self._put(row, local=False)
        stored = {row.id for row in rows}
        for contact_id in before - stored - self._touched:
            self._drop(contact_id, local=False)

    def close(self) -> None:
        """Cancel timers, the re-scan and running steps."""
        if self._scanner is not None:
            self._scanner.cancel()
        self._due.close()

    # -- requests --------------------------------------------------------------------------------------

    async def create(self, body: dict[str, Any], reference_id: str | None) -> dict[str, Any]:
        """CreateContact: validate, estimate, store, arm the routing timer."""
        queue = self._queue(body.get("queue"))
        external_id = text(body, "externalId", 128, required=True)
        calling = number(body, "callingNumber")
        called = number(body, "calledNumber")
        additional = additional_map(body.get("additional"), max_entries=self._max_entries, max_bytes=self._max_bytes)
        priority = body.get("priority", queue.priority)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
            raise InvalidInput("priority must be an integer from 0 to 100")
        skills = body.get("skills", list(queue.skills))
        if not isinstance(skills, list) or not all(isinstance(s, str) and 0 < len(s) <= 64 for s in skills):
            raise InvalidInput("skills must be a list of skill names (1 to 64 characters)")
        if len(skills) > 20:
            raise InvalidInput("at most 20 skills")
        estimate = self.estimate(queue.name)
        now = self._clock()
        due = now + timedelta(seconds=estimate)
        contact_id = str(uuid.uuid4())
        fields = {
            "externalId": external_id,
            "callingNumber": calling,
            "calledNumber": called,
            "additional": additional,
            "priority": priority,
            "skills": skills,
        }
        item = items.new_item(
            contact_id=contact_id, queue=queue, times=self._times[queue.name], now=now, estimate=estimate, fields=fields
        )
        row = WaitRow(contact_id, queue.name, "waiting", external_id, now, due, None, None, None, None, item)
        await self._store.insert(row, notify=self._event("ContactCreated", row, reference_id))
        self._put(row)
        return item

    async def get(self, contact_id: str) -> dict[str, Any]:
        """GetContact (with several nodes from the store: another node may have stepped it since our copy)."""
        active = self._active.get(contact_id) if self._rescan_s is None else None
        return active.item if active is not None else (await self._row(contact_id)).item

    async def find(self, *, queue: str | None, state: str | None, external_id: str | None) -> list[dict[str, Any]]:
        """List contacts by queue, state and externalId."""
        if queue is not None and queue not in self._queues:
            raise InvalidInput(f"unknown queue {queue!r}")
        states = ("waiting", "routed", "connected", "handled", "elapsed", "removed")
        if state is not None and state not in states:
            raise InvalidInput(f"state must be one of {', '.join(states)}")
        return [r.item for r in await self._store.find(queue=queue, state=state, external_id=external_id)]

    async def remove(self, contact_id: str, reference_id: str | None) -> dict[str, Any]:
        """RemoveContact: withdrawn wherever it is; the contact stays readable with removedAt. Idempotent."""
        async with self._lock(contact_id):
            row = self._active.get(contact_id) or await self._row(contact_id)
            while row.state not in ("removed", "elapsed", "handled"):
                done = await self._withdraw(row, "removed", "ContactRemoved", reference_id)
                if done is not None:
                    return done.item
                row = await self._row(contact_id)  # stepped by another node meanwhile: as it is now
            return row.item  # already out of the waiting field: nothing more to do

    def estimate(self, queue: str) -> int:
        """The estimatedWaitingTime (seconds) of a caller joining `queue` now."""
        times, ahead = self._times[queue], self._waiting.get(queue, 0)
        return min(times.maximumWaitingTime, max(times.minimumWaitingTime, times.waitingFieldMultiplier * ahead))

    def active(self) -> list[WaitRow]:
        """Contacts waiting or routed and not yet taken by an agent (this process's current copy)."""
        return list(self._active.values())

    def settings(self, queue: str) -> dict[str, Any]:
        """A queue's settings; an unknown queue is not found (the queue is the resource here)."""
        return self._times[self._queue_resource(queue)].model_dump()

    async def put_settings(self, queue: str, body: object) -> dict[str, Any]:
        """Replace a queue's settings (kept in the store; contacts keep the snapshot they were estimated with)."""
        name = self._queue_resource(queue)
        if not isinstance(body, dict):
            raise InvalidInput("settings must be an object")
        limits = {
            "waitingFieldMultiplier": MAX_MULTIPLIER,
            "minimumWaitingTime": MAX_WAITING_TIME,
            "maximumWaitingTime": MAX_WAITING_TIME,
        }
        for key, limit in limits.items():
            value = body.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit):
                raise InvalidInput(f"{key} must be an integer from 0 to {limit}")
        try:
            times = QueueTimes.model_validate({**self._times[name].model_dump(), **body})
        except ValueError as exc:
            raise InvalidInput(first_error(exc)) from None
        await self._store.put_queue_settings(name, times.model_dump(), self._clock())
        self._times[name] = times
        return times.model_dump()

    # -- the outbound flow tells us ----------------------------------------------------------------------

    async def record_reserved(self, record: ContactRow, agent: str) -> None:
        """An agent took a callback record: the contact is connected."""
        contact_id = self._by_record.get(record.id)
        if contact_id is None and self._rescan_s is not None:
            # Routed by another node since our last scan (only a read with several nodes).
            found = await self._store.by_record(record.id)
            contact_id = found.id if found is not None and found.state == "routed" else None
        if contact_id is None:
            return  # not a waiting-field callback (or no longer routed)
        async with self._lock(contact_id):
            row = self._active.get(contact_id) or await self._store.get(contact_id)
            if row is None or row.state != "routed":
                return
            done = items.connected(row, agent=agent, now=self._clock())
            if await self._store.save(done, expected="routed", notify=self._event("ContactConnected", done, None)):
                self._drop(contact_id)
            else:
                await self._refresh(contact_id)

    def callback_scheduled(self, row: ContactRow) -> None:
        """Nothing to do: a rescheduled callback record is the agent's now, not the waiting field's."""

    async def record_completed(self, record: ContactRow, agent: str) -> None:
        """The agent completed the callback: handled."""
        row = await self._store.by_record(record.id)
        if row is None or row.state != "connected":
            return
        async with self._lock(row.id):
            done = items.handled(row, now=self._clock())
            await self._store.save(done, expected="connected", notify=self._event("ContactHandled", done, None))

    # -- timed steps -----------------------------------------------------------------------------------

    async def _route(self, contact_id: str) -> None:
        async with self._lock(contact_id):
            row = self._active.get(contact_id)
            if row is None or row.state != "waiting":
                return
            queue = self._queues[row.queue]
            now = self._clock()
            routing_id = str(uuid.uuid4())

            def routed(record_id: int) -> WaitRow:
                return items.routed(row, record_id=record_id, routing_id=routing_id, now=now)

            done = await self._store.route(
                row,
                campaign_id=queue.campaign,
                data=items.callback_data(row),
                now=now,
                routed=routed,
                notify=lambda result: self._render("ContactRouted", result, None) if result is not None else [],
            )
            if done is None:
                await self._refresh(contact_id)  # another node routed or removed it first
                return
            self._put(done)
        assert done.record_id is not None
        # Outside the lock: the offer reports back through record_reserved, which takes it.
        await self._outbound.offer(done.record_id, queue.campaign, tuple(done.item["skills"]))

    async def _elapse(self, contact_id: str) -> None:
        async with self._lock(contact_id):
            row = self._active.get(contact_id)
            if row is None or row.state != "routed":
                return
            if await self._withdraw(row, "elapsed", "ContactElapsed", None) is None:
                await self._refresh(contact_id)

    async def _withdraw(self, row: WaitRow, state: str, kind: str, reference_id: str | None) -> WaitRow | None:
        """Removed or elapsed, if its stored state is still `row.state`; its record is then withdrawn."""
        done = items.withdrawn(row, state=state, now=self._clock())
        if not await self._store.save(done, expected=row.state, notify=self._event(kind, done, reference_id)):
            return None
        self._drop(row.id)
        if row.record_id is not None:
            await self._outbound.withdraw(row.record_id)
        return done

    # -- this node's copy ------------------------------------------------------------------------------

    def _put(self, row: WaitRow, *, local: bool = True) -> None:
        """Keep an active contact (as stored) and arm its next step; any other state forgets it."""
        if row.state not in ACTIVE:
            self._drop(row.id, local=local)
            return
        old = self._active.get(row.id)
        if old is not None and old.state == "waiting":
            self._waiting[old.queue] = max(0, self._waiting.get(old.queue, 1) - 1)
        if row.state == "waiting":
            self._waiting[row.queue] = self._waiting.get(row.queue, 0) + 1
        self._active[row.id] = row
        if local:
            self._touched.add(row.id)
        if row.record_id is not None:
            self._by_record[row.record_id] = row.id
        if row.state == "waiting":
            self._arm(row.id, row.will_be_routed_at, self._route)
        elif row.will_elapse_at is not None and row.item["routingObject"]["connectedAt"] is None:
            self._arm(row.id, row.will_elapse_at, self._elapse)
        else:
            self._due.cancel(row.id)

    def _drop(self, contact_id: str, *, local: bool = True) -> None:
        """Forget a contact that left the waiting field (and its timer)."""
        self._due.cancel(contact_id)
        if local:
            self._touched.add(contact_id)
        old = self._active.pop(contact_id, None)
        if old is None:
            return
        if old.state == "waiting":
            self._waiting[old.queue] = max(0, self._waiting.get(old.queue, 1) - 1)
        if old.record_id is not None:
            self._by_record.pop(old.record_id, None)

    async def _refresh(self, contact_id: str) -> None:
        """A step lost its compare-and-set: take the contact as it is stored now."""
        row = await self._store.get(contact_id)
        if row is None:
            self._drop(contact_id)
        else:
            self._put(row)

    # -- helpers ---------------------------------------------------------------------------------------

    def _arm(self, contact_id: str, when: datetime, step: Callable[[str], Awaitable[None]]) -> None:
        async def run() -> None:
            try:
                await step(contact_id)
            except Exception:
                log.exception("waitfield_step_failed", contact_id=contact_id, step=getattr(step, "__name__", "?"))

        self._due.arm(contact_id, when, run)

    def _lock(self, contact_id: str) -> asyncio.Lock:
        lock = self._locks.get(contact_id)
        if lock is None:
            lock = self._locks[contact_id] = asyncio.Lock()
            if len(self._locks) > 100_000:  # forget idle locks of long-finished contacts
                for key in [k for k, v in self._locks.items() if not v.locked()][:50_000]:
                    del self._locks[key]
        return lock

    async def _row(self, contact_id: str) -> WaitRow:
        row = await self._store.get(contact_id) if isinstance(contact_id, str) and len(contact_id) <= 64 else None
        if row is None:
            raise NotFound("NotFound")
        return row

    def _queue_resource(self, name: str) -> str:
        if name not in self._queues:
            raise NotFound("NotFound")
        return name

    def _queue(self, name: object) -> WaitQueueSettings:
        if not isinstance(name, str) or not name:
            raise InvalidInput("queue is mandatory (the queue's name)")
        queue = self._queues.get(name)
        if queue is None:
            raise InvalidInput(f"unknown queue {name!r}")
        return queue

    def _event(self, kind: str, row: WaitRow, reference_id: str | None) -> Callable[[object], list[Notification]]:
        """The change's notification, rendered in its write's transaction; none if the write changed nothing
        (a compare-and-set another node won)."""
        return lambda stored: self._render(kind, row, reference_id) if stored is not False else []

    def _render(self, kind: str, row: WaitRow, reference_id: str | None) -> list[Notification]:
        return self._events.waitfield_changed(WaitfieldEvent(kind, row.item, reference_id))
