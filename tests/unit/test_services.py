"""The outbound and waiting-field services on a real SQLite store, with injected clocks (no server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.bayeux.logs import LogPolicy
from gateway.bayeux.server import BayeuxServer
from gateway.broker.memory import MemoryBroker
from gateway.broker.relay import Relay
from gateway.events.outbound import OutboundNotifier
from gateway.events.publisher import WAITFIELD_CHANNEL, EventPublisher
from gateway.hub.hub import Hub
from gateway.hub.session import Session
from gateway.services.campaigns import Campaigns
from gateway.services.errors import Forbidden, InvalidInput, InvalidState, NotFound
from gateway.services.outbound import OutboundService
from gateway.services.records import Request, campaign_ref
from gateway.services.waitfield import Waitfield, sntial_time
from gateway.settings import CampaignSettings, QueueTimes, ReplaySettings, WaitQueueSettings
from gateway.store.preview import MemoryPreviewSessions
from gateway.store.sql import SqlContactStore
from gateway.store.sql_log import SqlNotificationLog
from gateway.store.waitfield import SqlWaitfieldStore

T0 = datetime(2025, 3, 1, 12, 0, 0)
RETENTION = ReplaySettings()
CAMPAIGNS = (
    CampaignSettings(id=1, name="Retention", calling_list="ret", application_id=101, agent_group="g1"),
    CampaignSettings(id=2, name="Callbacks", calling_list="cb", application_id=102, agent_group="g2"),
)
QUEUE = WaitQueueSettings(
    name="q1", skills=("english",), campaign=2, settings=QueueTimes(minimumWaitingTime=60, maximumWaitingTime=120)
)


class WallClock:
    """A wall clock (naive UTC) the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move on."""
        self.now += timedelta(seconds=seconds)


class World:
    """The domain as app.py wires it: store -> relay -> memory broker -> hub; services with one clock."""

    def __init__(self, folder: Path) -> None:
        self.clock = WallClock()
        self.hub = Hub(max_queue=1000, overflow="drop_oldest", max_interval_s=600.0)
        self.broker = MemoryBroker()
        relay = Relay(self.broker)
        self.db = SqlContactStore(url=f"sqlite:///{folder / 'gateway.db'}", relay=relay)
        logs = LogPolicy(channels=RETENTION.channels, enabled=True)
        self.log = SqlNotificationLog(self.db)
        server = BayeuxServer(broker=self.broker, relay=relay, logs=logs, journal=self.db.log)
        self.events = EventPublisher(
            server=server,
            outbound=OutboundNotifier(server=server, device_of=lambda name: None),
            campaign_of=lambda campaign_id: campaign_ref(Campaigns(CAMPAIGNS).get(campaign_id)),
        )
        self.present: set[str] = set()
        self.previews = MemoryPreviewSessions()
        self.outbound = self._outbound()
        self.waitfield: Waitfield | None = None

    async def _is_present(self, name: str) -> bool:
        return name in self.present

    def _outbound(self) -> OutboundService:
        return OutboundService(
            store=self.db,
            campaigns=Campaigns(CAMPAIGNS),
            events=self.events,
            previews=self.previews,
            clock=self.clock,
            skills_of=lambda name: ("english",),
            present=self._is_present,
        )

    async def open(self) -> None:
        """Open the store and start delivering into the hub."""
        await self.db.open()
        await self.broker.start(self.hub.dispatch)

    async def start_waitfield(self, *queues: WaitQueueSettings, previews: tuple[Request, ...] = ()) -> Waitfield:
        """The services as after a (re)start of the process: a new outbound service with `previews`
        started, and a waiting field observing it, started from the store."""
        if self.waitfield is not None:
            self.waitfield.close()
        # A restart: preview sessions kept in memory are gone.
        self.previews = MemoryPreviewSessions()
        self.outbound = self._outbound()
        for preview in previews:
            await self.outbound.start_preview(preview)
        self.waitfield = Waitfield(
            store=SqlWaitfieldStore(self.db),
            records=self.db,
            outbound=self.outbound,
            events=self.events,
            queues=queues or (QUEUE,),
            max_additional_entries=5,
            max_additional_bytes=200,
            clock=self.clock,
        )
        self.outbound.observe(self.waitfield)
        await self.waitfield.start()
        return self.waitfield

    def listen(self, user: str, pattern: str) -> Session:
        """A Bayeux session of `user` subscribed to `pattern`."""
        session = self.hub.create_session(transport="websocket", user=user, identity=None, browser_id=None)
        self.hub.subscribe(session, pattern)
        return session

    async def close(self) -> None:
        """Stop timers and the store."""
        if self.waitfield is not None:
            self.waitfield.close()
        await self.db.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """An open world."""
    w = World(tmp_path)
    await w.open()
    yield w
    await w.close()


def req(agent: str = "agent1", campaign: str = "Retention", application: int = 101, **kw: Any) -> Request:
    """An outbound request."""
    return Request(agent=agent, campaign_name=campaign, application_id=application, **kw)


def kinds(session: Session) -> list[str]:
    """notificationType of the outbound messages a session got."""
    return [m["data"]["notificationType"] for m in session.drain() if m["channel"] == "/v2/me/outbound"]


async def until(predicate: Callable[[], Awaitable[bool]]) -> None:
    """Let timers and tasks run until `predicate()` holds (at most a second)."""
    for _ in range(200):
        if await predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


# -- outbound --------------------------------------------------------------------------------------


async def test_preview_needs_a_started_session_and_reserves_in_order(world: World) -> None:
    """GetPreviewRecord before StartPreviewSession is refused; after it, records are reserved one by one
    (at the service's clock) and pushed to the agent only; an empty pool says so."""
    agent = world.listen("agent1", "/v2/me/**")
    other = world.listen("agent2", "/v2/me/**")
    for n in (1, 2):
        await world.db.upsert(
            campaign_id=1, user_data=f"u{n}", data={"PhoneNumber1": f"10{n}"}, overwrite=False, now=T0
        )
    with pytest.raises(InvalidState, match="No preview session"):
        await world.outbound.get_preview(req())
    await world.outbound.start_preview(req())
    world.clock.advance(30)
    first = await world.outbound.get_preview(req(reference_id="ref1"))
    handle = first[0]["data"]["record"]["recordHandle"]
    assert first[0]["data"]["referenceId"] == "ref1"
    row = await world.db.get(handle, None)
    assert row is not None and row.reserved_by == "agent1" and row.reserved_at == T0 + timedelta(seconds=30)
    await world.outbound.get_preview(req())
    empty = await world.outbound.get_preview(req())
    assert empty[0]["data"]["notificationType"] == "PreviewRecordEmpty"
    assert kinds(agent) == ["PreviewSessionStarted", "PreviewRecord", "PreviewRecord", "PreviewRecordEmpty"]
    assert kinds(other) == []
    # Each of them is in agent1's durable log, in order (the store wrote them with the reservations).
    logged = await world.log.read("user:agent1", 0, 100)
    assert [n.data["notificationType"] for n in logged if n.channel == "/v2/me/outbound"] == [
        "PreviewSessionStarted",
        "PreviewRecord",
        "PreviewRecord",
        "PreviewRecordEmpty",
    ]


async def test_campaign_checks(world: World) -> None:
    """An unknown campaign is not found; a mismatching applicationId or callingList is invalid input."""
    with pytest.raises(NotFound):
        await world.outbound.start_preview(req(campaign="Nope"))
    with pytest.raises(InvalidInput, match="applicationId"):
        await world.outbound.start_preview(req(application=999))
    with pytest.raises(InvalidInput, match="callingList"):
        await world.outbound.start_preview(req(calling_list="other"))


async def test_only_the_holder_completes_a_record(world: World) -> None:
    """Another agent is forbidden, a record nobody holds is in the wrong state; the holder's completion
    finishes it, writes its history and acknowledges."""
    row, _ = await world.db.upsert(campaign_id=1, user_data="u", data={"PhoneNumber1": "555"}, overwrite=False, now=T0)
    await world.outbound.start_preview(req())
    with pytest.raises(InvalidState, match="not reserved"):
        await world.outbound.complete(req(), row.id, None, None)
    await world.outbound.get_preview(req())
    with pytest.raises(Forbidden):
        await world.outbound.complete(req("agent2"), row.id, None, None)
    with pytest.raises(NotFound):
        await world.outbound.complete(req(), 9999, None, None)
    sent = await world.outbound.complete(req(), row.id, None, "555")
    assert sent[0]["data"]["notificationType"] == "RecordProcessedAcknowledge"
    done = await world.db.get(row.id, None)
    assert done is not None and done.finished and done.reserved_by is None and done.attempts == 1
    (entry,) = (await world.db.history([row.id]))[row.id]
    assert entry.user_name == "agent1" and entry.phone_number == "555" and entry.phone_offset == 1


async def test_records_per_agent_are_bounded(world: World) -> None:
    """With max_records_per_agent, an agent holding that many gets no more."""
    bounded = OutboundService(
        store=world.db,
        campaigns=Campaigns(CAMPAIGNS),
        events=world.events,
        previews=MemoryPreviewSessions(),
        max_records_per_agent=1,
        clock=world.clock,
    )
    for n in (1, 2):
        await world.db.upsert(campaign_id=1, user_data=f"u{n}", data={}, overwrite=False, now=T0)
    await bounded.start_preview(req())
    await bounded.get_preview(req())
    with pytest.raises(InvalidState, match="already holds 1"):
        await bounded.get_preview(req())
    assert len(await world.db.reserved_by("agent1")) == 1


async def test_reschedule_personal_keeps_the_record_for_the_agent(world: World) -> None:
    """A personal reschedule frees the record for its agent alone, from the given moment."""
    row, _ = await world.db.upsert(campaign_id=1, user_data="u", data={}, overwrite=False, now=T0)
    await world.outbound.start_preview(req())
    await world.outbound.get_preview(req())
    with pytest.raises(InvalidInput, match="timestamp"):
        await world.outbound.reschedule(req(), row.id, "Personal", 10**20)
    when = T0 + timedelta(hours=1)
    await world.outbound.reschedule(req(), row.id, "Personal", int(when.replace(tzinfo=UTC).timestamp()))
    stored = await world.db.get(row.id, None)
    assert stored is not None and stored.reserved_by is None and stored.personal_agent == "agent1"
    assert stored.next_try_at == when and stored.result_code_id == 5 and stored.attempts == 1
    assert [r.id for r in await world.db.pending_personal()] == [row.id]
    # Not for another agent, not before its moment; for its agent once due.
    await world.outbound.start_preview(req("agent2"))
    assert (await world.outbound.get_preview(req("agent2")))[0]["data"]["notificationType"] == "PreviewRecordEmpty"
    assert await world.outbound.offer_scheduled(row.id, "agent2") is False
    assert await world.outbound.offer_scheduled(row.id, "agent1") is True


# -- waiting field ---------------------------------------------------------------------------------


async def test_create_validates_and_estimates_from_the_contacts_ahead(world: World) -> None:
    """Bad bodies are invalid input; each new contact waits multiplier x contacts ahead, clamped to
    [minimum, maximum], from the service's clock; the change is broadcast and logged."""
    queue = WaitQueueSettings(
        name="q1",
        campaign=2,
        settings=QueueTimes(waitingFieldMultiplier=10, minimumWaitingTime=5, maximumWaitingTime=25),
    )
    waitfield = await world.start_waitfield(queue)
    supervisor = world.listen("sup", "/v2/waitfield/**")
    body = {"queue": "q1", "externalId": "e", "callingNumber": "+4930123", "calledNumber": "0800123"}
    for bad, message in (
        ({**body, "queue": None}, "queue is mandatory"),
        ({**body, "queue": "nope"}, "unknown queue"),
        ({**body, "callingNumber": "12"}, "callingNumber"),
        ({**body, "externalId": None}, "externalId is mandatory"),
        ({**body, "priority": 101}, "priority"),
        ({**body, "additional": {f"k{n}": n for n in range(6)}}, "more than 5 entries"),
    ):
        with pytest.raises(InvalidInput, match=message):
            await waitfield.create(bad, None)
    items = [await waitfield.create(body, f"ref{n}") for n in range(4)]
    assert [i["estimatedWaitingTime"] for i in items] == [5, 10, 20, 25]
    assert items[1]["willBeRoutedAt"] == sntial_time(T0 + timedelta(seconds=10))
    assert items[0]["state"] == "waiting" and items[0]["createdAt"] == sntial_time(T0)
    events = [m["data"] for m in supervisor.drain() if m["channel"] == WAITFIELD_CHANNEL]
    assert [(e["type"], e["referenceId"], e["id"]) for e in events] == [
        ("ContactCreated", f"ref{n}", items[n]["id"]) for n in range(4)
    ]
    assert len(await world.log.read("channel:/v2/waitfield/**", 0, 100)) == 4
    assert await waitfield.get(items[0]["id"]) == items[0]


async def test_an_overdue_contact_is_routed_at_start_and_connected_by_an_agent(world: World) -> None:
    """After a restart past its moment the contact is routed at once: a record in the queue's campaign,
    offered to a present agent with the skills, whose reservation connects the contact; completing the
    record handles it."""
    waitfield = await world.start_waitfield()
    body = {"queue": "q1", "externalId": "e1", "callingNumber": "+4930123", "calledNumber": "0800123"}
    created = await waitfield.create(body, None)
    assert created["willBeRoutedAt"] == sntial_time(T0 + timedelta(seconds=60))
    world.present.add("agent1")
    world.clock.advance(61)
    waitfield = await world.start_waitfield(previews=(req(campaign="Callbacks", application=102),))

    async def connected() -> bool:
        return bool((await waitfield.get(created["id"]))["state"] == "connected")

    await until(connected)
    item = await waitfield.get(created["id"])
    routing = item["routingObject"]
    assert item["routedAt"] == sntial_time(T0 + timedelta(seconds=61))
    assert routing["agent"] == "agent1" and routing["connectedAt"] == sntial_time(T0 + timedelta(seconds=61))
    record = await world.db.get(routing["recordHandle"], None)
    assert record is not None and record.campaign_id == 2 and record.reserved_by == "agent1"
    assert record.data["PhoneNumber1"] == "+4930123"
    await world.outbound.complete(req(campaign="Callbacks", application=102), record.id, None, None)
    assert (await waitfield.get(created["id"]))["state"] == "handled"


async def test_a_routed_contact_nobody_takes_elapses(world: World) -> None:
    """Routed with no agent waiting, the contact elapses once willElapseAt passed; its record is finished."""
    waitfield = await world.start_waitfield()
    body = {"queue": "q1", "externalId": "e1", "callingNumber": "+4930123", "calledNumber": "0800123"}
    created = await waitfield.create(body, None)
    world.clock.advance(61)
    waitfield = await world.start_waitfield()

    async def state_is(state: str) -> bool:
        # The store's copy: the service's own is updated before its write commits.
        row = await SqlWaitfieldStore(world.db).get(created["id"])
        return row is not None and row.state == state

    await until(lambda: state_is("routed"))
    record_id = (await waitfield.get(created["id"]))["routingObject"]["recordHandle"]
    world.clock.advance(121)
    waitfield = await world.start_waitfield()

    async def record_finished() -> bool:
        record = await world.db.get(record_id, None)
        return record is not None and record.finished

    # The step saves the contact, then withdraws its record: wait for both.
    await until(lambda: state_is("elapsed"))
    await until(record_finished)
    item = await waitfield.get(created["id"])
    assert item["removedAt"] == sntial_time(T0 + timedelta(seconds=182)) and item["routingObject"]["state"] == 4


async def test_remove_is_idempotent(world: World) -> None:
    """RemoveContact withdraws a waiting contact (removedAt set, the queue's count drops) and answers the
    same afterwards; unknown contacts are not found."""
    waitfield = await world.start_waitfield()
    body = {"queue": "q1", "externalId": "e1", "callingNumber": "+4930123", "calledNumber": "0800123"}
    first = await waitfield.create(body, None)
    world.clock.advance(5)
    removed = await waitfield.remove(first["id"], "r1")
    assert removed["state"] == "removed" and removed["removedAt"] == sntial_time(T0 + timedelta(seconds=5))
    assert await waitfield.remove(first["id"], "r2") == removed
    assert [i["id"] for i in await waitfield.find(queue="q1", state="removed", external_id=None)] == [first["id"]]
    second = await waitfield.create(body, None)
    assert second["estimatedWaitingTime"] == 60  # nobody ahead any more (minimum)
    with pytest.raises(NotFound):
        await waitfield.remove("00000000-0000-0000-0000-000000000000", None)


async def test_queue_settings_are_checked_kept_and_reloaded(world: World) -> None:
    """put_settings refuses out-of-range values, keeps valid ones in the store, and a restart loads them."""
    waitfield = await world.start_waitfield()
    with pytest.raises(NotFound):
        waitfield.settings("nope")
    with pytest.raises(InvalidInput, match="minimumWaitingTime"):
        await waitfield.put_settings("q1", {"minimumWaitingTime": -1})
    with pytest.raises(InvalidInput, match="above maximumWaitingTime"):
        await waitfield.put_settings("q1", {"minimumWaitingTime": 500})
    updated = await waitfield.put_settings("q1", {"minimumWaitingTime": 7, "maximumWaitingTime": 9})
    assert (updated["minimumWaitingTime"], updated["maximumWaitingTime"]) == (7, 9)
    restarted = await world.start_waitfield()
    assert restarted.settings("q1") == updated
