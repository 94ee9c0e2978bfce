"""The SNtial Wait waiting field: callers wait off-line, are routed to agents when due, elapse when nobody
takes them.

Timeline (dialler-and-waitfield.md §5.4): estimatedWaitingTime = multiplier * contacts ahead, clamped to
[minimum, maximum]; willBeRoutedAt = createdAt + estimate. Routing creates the routingObject and a record in
the queue's callback campaign, offered to a waiting agent with the skills; willElapseAt = routedAt + maximum.
An agent taking the record connects the contact; completing it handles it. Not taken by willElapseAt: elapsed.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Final

import structlog

from gateway.clock import utcnow
from gateway.events.types import EventSink, WaitfieldEvent
from gateway.services.due import DueTimers
from gateway.services.errors import InvalidInput, NotFound
from gateway.services.outbound import OutboundService
from gateway.services.waitfield_input import additional_map, first_error, number, text
from gateway.settings import MAX_MULTIPLIER, MAX_WAITING_TIME, QueueTimes, WaitQueueSettings
from gateway.store.base import ContactRow, ContactStore
from gateway.store.waitfield import WaitfieldStore, WaitRow
from gateway.wire.notification import Notification

log = structlog.get_logger("gateway.waitfield")

# routingObject.state (the seed shows 2 with connectedAt set): 1 waiting in the queue, 2 connected, 3 handled,
# 4 withdrawn (removed or elapsed).
RO_WAITING, RO_CONNECTED, RO_HANDLED, RO_WITHDRAWN = 1, 2, 3, 4
ACTIVE: Final = ("waiting", "routed")


def sntial_time(value: datetime | None) -> str | None:
    """SNtial's timestamp form: ISO 8601, 7 fraction digits, with offset (`2025-09-19T08:28:20.7506288+00:00`)."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # an identifier, not a secret


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
        self._waiting: dict[str, int] = dict.fromkeys(self._queues, 0)  # contacts not yet routed, per queue
        self._due: DueTimers[str] = DueTimers(clock=clock)
        # Contacts still waiting or routed: this process is their only writer, so this copy is current
        # (the store keeps it durable and reloads it at start). Routing then needs no read.
        self._active: dict[str, WaitRow] = {}
        self._by_record: dict[int, str] = {}  # callback record -> routed contact
        # One contact's steps never overlap (a removal racing its routing, say).
        self._locks: dict[str, asyncio.Lock] = {}

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
        for row in await self._store.active():
            self._active[row.id] = row
            if row.record_id is not None:
                self._by_record[row.record_id] = row.id
            if row.state == "waiting":
                self._waiting[row.queue] = self._waiting.get(row.queue, 0) + 1
                self._arm(row.id, row.will_be_routed_at, self._route)
            elif row.will_elapse_at is not None and row.item["routingObject"]["connectedAt"] is None:
                self._arm(row.id, row.will_elapse_at, self._elapse)

    def close(self) -> None:
        """Cancel timers and running steps."""
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
        times = self._times[queue.name]
        ahead = self._waiting.get(queue.name, 0)
        estimate = self.estimate(queue.name)
        now = self._clock()
        due = now + timedelta(seconds=estimate)
        contact_id = str(uuid.uuid4())
        item: dict[str, Any] = {
            "id": contact_id,
            "state": "waiting",
            "createdAt": sntial_time(now),
            "externalId": external_id,
            "callingNumber": calling,
            "calledNumber": called,
            "additional": additional,
            "priority": priority,
            "routingObjectId": None,
            "routingObject": None,
            "willBeRoutedAt": sntial_time(due),
            "routedAt": None,
            "waitingSince": sntial_time(now),
            "removedAt": None,
            "willElapseAt": None,
            "estimatedWaitingTime": estimate,
            "estimatedWaitingTimeMinutes": math.ceil(estimate / 60),
            "settings": times.model_dump(),
            "skills": skills,
            "queue": queue.name,
            "queueId": _sha1(queue.name),
            "queueSkillsId": _sha1(",".join([queue.name, *queue.skills])),
            "queueSkills": ",".join([queue.name, *queue.skills]),
        }
        row = WaitRow(contact_id, queue.name, "waiting", external_id, now, due, None, None, None, None, item)
        await self._store.insert(row, notify=self._event("ContactCreated", row, reference_id))
        self._active[contact_id] = row
        self._waiting[queue.name] = ahead + 1
        self._arm(contact_id, due, self._route)
        return item

    async def get(self, contact_id: str) -> dict[str, Any]:
        """GetContact."""
        active = self._active.get(contact_id)
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
            if row.state in ("removed", "elapsed", "handled"):
                return row.item  # already out of the waiting field: nothing more to do
            await self._withdraw(row, "removed", "ContactRemoved", reference_id)
            return row.item

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
        if contact_id is None:
            return  # not a waiting-field callback (or no longer routed)
        async with self._lock(contact_id):
            row = self._active.get(contact_id)
            if row is None or row.state != "routed":
                return
            now = self._clock()
            row.state = "connected"
            row.item["state"] = "connected"
            self._active.pop(row.id, None)
            self._by_record.pop(record.id, None)
            routing = row.item["routingObject"]
            routing["state"] = RO_CONNECTED
            routing["connectedAt"] = sntial_time(now)
            routing["agent"] = agent
            await self._store.save(row, notify=self._event("ContactConnected", row, None))
            self._due.cancel(row.id)

    def callback_scheduled(self, row: ContactRow) -> None:
        """Nothing to do: a rescheduled callback record is the agent's now, not the waiting field's."""

    async def record_completed(self, record: ContactRow, agent: str) -> None:
        """The agent completed the callback: handled."""
        row = await self._store.by_record(record.id)
        if row is None or row.state != "connected":
            return
        async with self._lock(row.id):
            now = self._clock()
            row.state = "handled"
            row.item["state"] = "handled"
            routing = row.item["routingObject"]
            routing["state"] = RO_HANDLED
            routing["handledAt"] = routing["disconnectedAt"] = sntial_time(now)
            await self._store.save(row, notify=self._event("ContactHandled", row, None))

    # -- timed steps -----------------------------------------------------------------------------------

    async def _route(self, contact_id: str) -> None:
        async with self._lock(contact_id):
            row = self._active.get(contact_id)
            if row is None or row.state != "waiting":
                return
            queue = self._queues[row.queue]
            item = row.item
            now = self._clock()
            maximum = int(item["settings"]["maximumWaitingTime"])
            routing_id = str(uuid.uuid4())
            additional = item["additional"] or {}
            record = await self._records.add(
                campaign_id=queue.campaign,
                data={
                    "Name": additional.get("Nachname") or additional.get("Name") or item["externalId"],
                    "FirstName": additional.get("Vorname") or additional.get("FirstName"),
                    "PhoneNumber1": item["callingNumber"],
                    "UserData": item["externalId"],
                    "Comment": f"SNtial Wait callback {contact_id}",
                    "_sntial": {"contactId": contact_id, "calledNumber": item["calledNumber"], **additional},
                },
                chain_id=None,
                now=now,
            )
            item["routingObjectId"] = routing_id
            item["routingObject"] = {
                "state": RO_WAITING,
                "url": None,
                "id": routing_id,
                "type": "CCOBJECTIN",
                "from": item["callingNumber"],
                "to": item["calledNumber"],
                "queue": row.queue,
                "priority": item["priority"],
                "properties": [{"name": k, "value": v, "hidden": False, "url": None} for k, v in additional.items()],
                "skills": item["skills"],
                "createdAt": sntial_time(now),
                "waitingSince": item["waitingSince"],
                "connectedAt": None,
                "handledAt": None,
                "disconnectedAt": None,
                "recordHandle": record.id,
            }
            row.state = item["state"] = "routed"
            row.routed_at = now
            row.will_elapse_at = now + timedelta(seconds=maximum)
            row.record_id = record.id
            item["routedAt"] = sntial_time(now)
            item["willElapseAt"] = sntial_time(row.will_elapse_at)
            await self._store.save(row, notify=self._event("ContactRouted", row, None))
            self._by_record[record.id] = contact_id
            self._waiting[row.queue] = max(0, self._waiting.get(row.queue, 1) - 1)
            self._arm(contact_id, row.will_elapse_at, self._elapse)
        # Outside the lock: the offer reports back through record_reserved, which takes it.
        await self._outbound.offer(record.id, queue.campaign, tuple(item["skills"]))

    async def _elapse(self, contact_id: str) -> None:
        async with self._lock(contact_id):
            row = self._active.get(contact_id)
            if row is None or row.state != "routed":
                return
            await self._withdraw(row, "elapsed", "ContactElapsed", None)

    async def _withdraw(self, row: WaitRow, state: str, kind: str, reference_id: str | None) -> None:
        now = self._clock()
        if row.state == "waiting":
            self._waiting[row.queue] = max(0, self._waiting.get(row.queue, 1) - 1)
        self._due.cancel(row.id)
        row.state = row.item["state"] = state
        self._active.pop(row.id, None)
        if row.record_id is not None:
            self._by_record.pop(row.record_id, None)
        row.removed_at = now
        row.item["removedAt"] = sntial_time(now)
        routing = row.item.get("routingObject")
        if routing is not None:
            routing["state"] = RO_WITHDRAWN
            routing["disconnectedAt"] = routing["disconnectedAt"] or sntial_time(now)
        await self._store.save(row, notify=self._event(kind, row, reference_id))
        if row.record_id is not None:
            await self._outbound.withdraw(row.record_id)

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
        """The change's notification, rendered in its write's transaction (the item as it is then)."""
        return lambda _: self._events.waitfield_changed(WaitfieldEvent(kind, row.item, reference_id))
