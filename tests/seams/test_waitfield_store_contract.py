"""The WaitfieldStore contract (gateway/store/waitfield.py), run against every store back end."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.store.waitfield import WaitRow
from gateway.wire.notification import Notification
from tests.seams.conftest import Open, Stores

NOW = datetime(2025, 3, 1, 12, 0, 0)
LOG = "channel:/v2/waitfield/**"


def row(contact_id: str, *, queue: str = "q1", state: str = "waiting", minute: int = 0, **kw: Any) -> WaitRow:
    """A waiting-field contact created `minute` minutes after NOW."""
    created = NOW + timedelta(minutes=minute)
    item = {
        "id": contact_id,
        "state": state,
        "queue": queue,
        "additional": {"Name": "Ada", "n": "1"},
        "list": [1, None],
    }
    values: dict[str, Any] = {
        "id": contact_id,
        "queue": queue,
        "state": state,
        "external_id": f"ext-{contact_id}",
        "created_at": created,
        "will_be_routed_at": created + timedelta(minutes=1),
        "routed_at": None,
        "will_elapse_at": None,
        "removed_at": None,
        "record_id": None,
        "item": item,
        **kw,
    }
    return WaitRow(**values)


def event(text: str) -> Notification:
    """A notification of the waiting field's log."""
    return Notification("/v2/waitfield/contacts", {"text": text}, log=LOG)


async def test_insert_and_get_round_trip(stores: Stores) -> None:
    """A stored contact reads back equal, every column and the whole item; unknown ids are None."""
    store = stores.waitfield
    original = row("c1", record_id=None)
    await store.insert(original)
    assert await store.get("c1") == original
    assert await store.get("nope") is None


async def test_save_replaces_every_column(stores: Stores) -> None:
    """save stores the contact's new state: columns and item."""
    store = stores.waitfield
    await store.insert(row("c1"))
    routed = dataclasses.replace(
        row("c1"),
        state="routed",
        routed_at=NOW + timedelta(minutes=1),
        will_elapse_at=NOW + timedelta(minutes=3),
        record_id=42,
        item={"id": "c1", "state": "routed", "routingObject": {"recordHandle": 42}},
    )
    await store.save(routed)
    assert await store.get("c1") == routed
    assert await store.by_record(42) == routed
    assert await store.by_record(43) is None


async def test_find_filters_oldest_first(stores: Stores) -> None:
    """find narrows by queue, state and externalId (None: any), oldest first."""
    store = stores.waitfield
    for contact in (
        row("b", minute=2),
        row("a", minute=1, state="routed"),
        row("c", minute=3, queue="q2"),
        row("d", minute=0, state="removed", external_id="shared"),
        row("e", minute=4, queue="q2", external_id="shared"),
    ):
        await store.insert(contact)

    async def ids(**filters: str | None) -> list[str]:
        query: dict[str, str | None] = {"queue": None, "state": None, "external_id": None, **filters}
        return [r.id for r in await store.find(**query)]

    assert await ids() == ["d", "a", "b", "c", "e"]
    assert await ids(queue="q1") == ["d", "a", "b"]
    assert await ids(queue="q1", state="waiting") == ["b"]
    assert await ids(external_id="shared") == ["d", "e"]
    assert await ids(queue="q2", external_id="shared", state="waiting") == ["e"]
    assert await ids(queue="q3") == []


async def test_active_is_waiting_and_routed_only(stores: Stores) -> None:
    """active lists the contacts still waiting or routed, oldest first (what a start re-arms)."""
    store = stores.waitfield
    for n, state in enumerate(("routed", "connected", "waiting", "handled", "elapsed", "removed", "waiting")):
        await store.insert(row(f"c{n}", state=state, minute=n))
    assert [r.id for r in await store.active()] == ["c0", "c2", "c6"]


async def test_queue_settings_are_replaced_whole(stores: Stores) -> None:
    """put_queue_settings keeps a queue's settings; a second put replaces them; other queues are untouched."""
    store = stores.waitfield
    assert await store.queue_settings() == {}
    await store.put_queue_settings("q1", {"minimumWaitingTime": 10, "maximumWaitingTime": 20}, NOW)
    await store.put_queue_settings("q2", {"minimumWaitingTime": 1}, NOW)
    await store.put_queue_settings("q1", {"maximumWaitingTime": 30}, NOW + timedelta(seconds=1))
    assert await store.queue_settings() == {"q1": {"maximumWaitingTime": 30}, "q2": {"minimumWaitingTime": 1}}


async def test_writes_log_their_notifications(stores: Stores) -> None:
    """insert and save log what `notify` renders in their own transaction, and relay it after the commit."""
    store = stores.waitfield
    await store.insert(row("c1"), notify=lambda _: [event("created")])
    await store.save(row("c1", state="routed"), notify=lambda _: [event("routed")])
    assert [n.data["text"] for n in await stores.log.read(LOG, 0, 10)] == ["created", "routed"]
    assert [n.data["text"] for n in stores.notifications()] == ["created", "routed"]
    assert all(n.replay_id is not None for n in stores.notifications())


async def test_a_failed_insert_logs_nothing(stores: Stores) -> None:
    """Inserting an id that exists fails: the stored contact is unchanged and nothing is logged or relayed."""
    store = stores.waitfield
    await store.insert(row("c1", queue="q1"))
    with pytest.raises(Exception):  # noqa: B017 - the driver's integrity error, whatever the back end calls it
        await store.insert(row("c1", queue="q2"), notify=lambda _: [event("duplicate")])
    stored = await store.get("c1")
    assert stored is not None and stored.queue == "q1"
    assert await stores.log.read(LOG, 0, 10) == [] and stores.notifications() == []


async def test_contacts_outlive_the_store(backend: Open, tmp_path: Path) -> None:
    """What a write stored is there after the store is closed and opened again."""
    first = await backend(tmp_path, None)
    await first.waitfield.insert(row("c1"))
    await first.waitfield.put_queue_settings("q1", {"minimumWaitingTime": 5}, NOW)
    await first.contacts.close()
    again = await backend(tmp_path, None)
    try:
        assert await again.waitfield.get("c1") == row("c1")
        assert await again.waitfield.queue_settings() == {"q1": {"minimumWaitingTime": 5}}
    finally:
        await again.contacts.close()


async def test_save_with_expected_is_a_compare_and_set(stores: Stores) -> None:
    """save(expected=...) stores only while the stored state is the expected one, and says so; `notify` is
    handed the answer (the service renders nothing for a lost step)."""
    store = stores.waitfield
    await store.insert(row("c1"))
    told: list[bool] = []
    removed = row("c1", state="removed", removed_at=NOW)
    assert await store.save(removed, expected="routed", notify=lambda ok: told.append(ok) or []) is False
    assert (await store.get("c1")) == row("c1")
    assert await store.save(removed, expected="waiting", notify=lambda ok: told.append(ok) or []) is True
    assert await store.get("c1") == removed and told == [False, True]
    assert await store.save(row("c1", state="elapsed"), expected="waiting") is False


async def test_route_claims_creates_the_record_and_stores_once(stores: Stores) -> None:
    """route: claims a waiting contact, inserts its callback record and stores the routed row in one
    transaction; a second route of the same contact (another node) changes and creates nothing."""
    store = stores.waitfield
    await store.insert(row("c1"))

    def routed(record_id: int) -> WaitRow:
        return row("c1", state="routed", record_id=record_id, routed_at=NOW, will_elapse_at=NOW + timedelta(minutes=2))

    data = {"UserData": "ext-c1", "PhoneNumber1": "+4930123"}
    notes = lambda result: [event("routed")] if result is not None else []  # noqa: E731
    done = await store.route(row("c1"), campaign_id=7, data=data, now=NOW, routed=routed, notify=notes)
    assert done is not None and done.record_id is not None
    assert await store.get("c1") == done and await store.by_record(done.record_id) == done
    record = await stores.contacts.get(done.record_id, None)
    assert record is not None and record.campaign_id == 7 and record.data == data and record.user_data == "ext-c1"
    again = await store.route(row("c1"), campaign_id=7, data=data, now=NOW, routed=routed, notify=notes)
    assert again is None and await stores.contacts.count() == 1
    assert [n.data["text"] for n in stores.notifications()] == ["routed"]


async def test_routes_on_many_connections_route_once(stores: Stores) -> None:
    """Eight routes of one contact at once: one record, one routed row."""
    store = stores.waitfield
    await store.insert(row("c1"))
    got = await asyncio.gather(
        *(
            store.route(
                row("c1"),
                campaign_id=7,
                data={"n": n},
                now=NOW,
                routed=lambda record_id: row("c1", state="routed", record_id=record_id),
            )
            for n in range(8)
        )
    )
    assert len([g for g in got if g is not None]) == 1 and await stores.contacts.count() == 1
