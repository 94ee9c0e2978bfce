"""The ContactStore contract (gateway/store/base.py), run against every store back end on a real database."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.store.base import ContactRow, ContactStore, HoldLimitReached, RecordChange
from gateway.wire.notification import Notification
from tests.seams.conftest import Open, Stores

NOW = datetime(2025, 3, 1, 12, 0, 0)
LOG = "channel:/v2/dialler/**"


async def upsert(
    store: ContactStore, user_data: str | None, *, campaign: int = 1, overwrite: bool = False, **data: Any
) -> ContactRow:
    """Import one contact; return it."""
    row, _ = await store.upsert(campaign_id=campaign, user_data=user_data, data=data, overwrite=overwrite, now=NOW)
    return row


def logged(text: str) -> Notification:
    """A notification that belongs to the dialler's log."""
    return Notification("/v2/dialler/contacts", {"text": text}, log=LOG)


async def test_open_migrates_and_the_data_outlives_the_store(backend: Open, tmp_path: Path) -> None:
    """A fresh database opens empty and answers pings; a write that returned is there after a reopen."""
    first = await backend(tmp_path, None)
    assert await first.contacts.ping() is True
    assert await first.contacts.count() == 0
    row = await upsert(first.contacts, "u1", Name="Ada")
    await first.contacts.close()
    again = await backend(tmp_path, None)  # migrations run again: nothing to do
    try:
        assert await again.contacts.get(row.id, None) == row
        assert await again.contacts.count() == 1
    finally:
        await again.contacts.close()


async def test_upsert_inserts_then_overwrites_the_first_match(stores: Stores) -> None:
    """Without overwrite every import is new; with it the first contact of that campaign and UserData is
    replaced (same ID, new data, not created); other campaigns and UserData None never match."""
    store = stores.contacts
    a, created = await store.upsert(campaign_id=1, user_data="u", data={"Name": "A"}, overwrite=False, now=NOW)
    assert created and a.data == {"Name": "A"} and a.campaign_id == 1 and a.user_data == "u"
    assert (a.locked, a.finished, a.do_not_call, a.reserved_by, a.attempts) == (False, False, False, None, 0)
    b = await upsert(store, "u", Name="B")
    assert b.id != a.id
    later = NOW + timedelta(minutes=1)
    c, created = await store.upsert(campaign_id=1, user_data="u", data={"Name": "C"}, overwrite=True, now=later)
    assert not created and c.id == a.id and c.data == {"Name": "C"} and c.updated_at == later
    other, created = await store.upsert(campaign_id=2, user_data="u", data={}, overwrite=True, now=NOW)
    assert created and other.id not in (a.id, b.id)
    none1 = await upsert(store, None, overwrite=True)
    none2 = await upsert(store, None, overwrite=True)
    assert none1.id != none2.id
    assert await store.count() == 5


async def test_concurrent_overwrites_of_one_key_make_one_contact(stores: Stores) -> None:
    """Imports of the same campaign and UserData at once (one group commit) behave as one after another."""
    store = stores.contacts
    results = await asyncio.gather(
        *(store.upsert(campaign_id=1, user_data="same", data={"n": n}, overwrite=True, now=NOW) for n in range(6))
    )
    assert [created for _, created in results].count(True) == 1
    assert len({row.id for row, _ in results}) == 1
    assert await store.count() == 1
    (row,) = await store.list_contacts(None)
    assert row.data == {"n": 5}


async def test_reads_respect_scope_and_order(stores: Stores) -> None:
    """get, find_by_user_data, list_contacts and get_many see only the campaigns in scope, in ID order."""
    store = stores.contacts
    a = await upsert(store, "x", campaign=1)
    b = await upsert(store, "y", campaign=2)
    c = await upsert(store, "x", campaign=2)
    assert await store.get(a.id, None) == a
    assert await store.get(a.id, {2}) is None
    assert await store.get(9999, None) is None
    assert await store.find_by_user_data("x", None) == [a, c]
    assert await store.find_by_user_data("x", {2}) == [c]
    assert await store.list_contacts(None) == [a, b, c]
    assert await store.list_contacts({1, 2}, campaign_id=2) == [b, c]
    assert await store.list_contacts(set()) == []
    assert await store.get_many([c.id, 9999], ["y"], None) == [b, c]
    assert await store.get_many([a.id], ["x"], {2}) == [c]


async def test_delete_returns_the_rows_as_they_were_and_their_history(stores: Stores) -> None:
    """Deleted contacts come back with their reservation; they and their history are gone."""
    store = stores.contacts
    a = await upsert(store, "a")
    b = await upsert(store, "b")
    await store.reserve(a.id, agent="agent1", now=NOW)
    await store.change(
        a.id, agent="agent1", change=RecordChange(release=False, history={"user_name": "agent1"}), now=NOW
    )
    assert len((await store.history([a.id]))[a.id]) == 1
    gone = await store.delete([a.id, 12345])
    assert [r.id for r in gone] == [a.id] and gone[0].reserved_by == "agent1"
    assert await store.get(a.id, None) is None
    assert await store.history([a.id]) == {}
    assert await store.list_contacts(None) == [b]


async def test_set_locked_reports_changes_and_takes_reservations_away(stores: Stores) -> None:
    """Locking says whether it changed anything and whose reservation it took; unknown contacts are None."""
    store = stores.contacts
    a = await upsert(store, "a")
    result = await store.set_locked(a.id, True, NOW)
    assert result is not None and result[0].locked and result[1:] == (True, None)
    result = await store.set_locked(a.id, True, NOW)
    assert result is not None and result[1:] == (False, None)
    b = await upsert(store, "b")
    await store.reserve(b.id, agent="agent1", now=NOW)
    result = await store.set_locked(b.id, True, NOW)
    assert result is not None and result[1:] == (True, "agent1") and result[0].reserved_by is None
    stored = await store.get(b.id, None)
    assert stored is not None and stored.locked and stored.reserved_by is None
    result = await store.set_locked(a.id, False, NOW)
    assert result is not None and not result[0].locked and result[1] is True
    assert await store.set_locked(9999, True, NOW) is None


async def test_reserve_next_takes_only_callable_contacts(stores: Stores) -> None:
    """Locked, finished, do-not-call, reserved, not yet due or other agents' callbacks are skipped; this
    agent's due personal callbacks come first; then the pool by ID; then None."""
    store = stores.contacts
    locked = await upsert(store, "locked")
    await store.set_locked(locked.id, True, NOW)
    finished = await upsert(store, "finished")
    await store.change(finished.id, agent=None, change=RecordChange(finished=True), now=NOW)
    dnc = await upsert(store, "dnc")
    await store.change(dnc.id, agent=None, change=RecordChange(do_not_call=True), now=NOW)
    later = await upsert(store, "later")
    await store.change(later.id, agent=None, change=RecordChange(next_try_at=NOW + timedelta(hours=1)), now=NOW)
    theirs = await upsert(store, "theirs")
    await store.change(theirs.id, agent=None, change=RecordChange(personal_agent="agent2"), now=NOW)
    pool = await upsert(store, "pool")
    mine = await upsert(store, "mine")
    await store.change(mine.id, agent=None, change=RecordChange(personal_agent="agent1", next_try_at=NOW), now=NOW)
    await upsert(store, "elsewhere", campaign=2)

    first = await store.reserve_next(campaign_id=1, agent="agent1", now=NOW)
    assert first is not None and first.id == mine.id and first.reserved_by == "agent1" and first.reserved_at == NOW
    second = await store.reserve_next(campaign_id=1, agent="agent1", now=NOW)
    assert second is not None and second.id == pool.id
    assert await store.reserve_next(campaign_id=1, agent="agent1", now=NOW) is None
    assert [r.id for r in await store.reserved_by("agent1")] == [pool.id, mine.id]
    assert await store.reserved_by("agent1", campaign_id=2) == []
    # Once due, the later contact is callable too.
    due = await store.reserve_next(campaign_id=1, agent="agent3", now=NOW + timedelta(hours=2))
    assert due is not None and due.id == later.id


async def test_one_contact_is_reserved_once(stores: Stores) -> None:
    """Agents racing for the last contact: exactly one gets it."""
    store = stores.contacts
    only = await upsert(store, "only")
    rows = await asyncio.gather(*(store.reserve_next(campaign_id=1, agent=f"a{n}", now=NOW) for n in range(5)))
    assert [r.id for r in rows if r is not None] == [only.id]
    assert await store.reserve(only.id, agent="late", now=NOW) is None


async def test_max_held_is_counted_with_the_reservation(stores: Stores) -> None:
    """max_held: past the agent's limit nothing is reserved and nothing notified (HoldLimitReached); others
    are not affected, and releasing one lets the agent reserve again."""
    store = stores.contacts
    rows = [await upsert(store, f"h{n}") for n in range(4)]
    first = await store.reserve_next(campaign_id=1, agent="agent1", now=NOW, max_held=2)
    second = await store.reserve(rows[3].id, agent="agent1", now=NOW, max_held=2)
    assert first is not None and second is not None
    before = len(stores.notifications())
    with pytest.raises(HoldLimitReached):
        await store.reserve_next(
            campaign_id=1, agent="agent1", now=NOW, max_held=2, notify=lambda row: [Notification("/x", {})]
        )
    with pytest.raises(HoldLimitReached):
        await store.reserve(rows[1].id, agent="agent1", now=NOW, max_held=2)
    assert len(stores.notifications()) == before
    assert len(await store.reserved_by("agent1")) == 2
    assert await store.reserve_next(campaign_id=1, agent="agent2", now=NOW, max_held=1) is not None
    await store.change(first.id, agent="agent1", change=RecordChange(), now=NOW)
    assert await store.reserve_next(campaign_id=1, agent="agent1", now=NOW, max_held=2) is not None


async def test_reserve_one_contact(stores: Stores) -> None:
    """reserve takes a free callable contact, or its own agent's callback; never someone else's."""
    store = stores.contacts
    theirs = await upsert(store, "theirs")
    await store.change(theirs.id, agent=None, change=RecordChange(personal_agent="agent2"), now=NOW)
    assert await store.reserve(theirs.id, agent="agent1", now=NOW) is None
    taken = await store.reserve(theirs.id, agent="agent2", now=NOW)
    assert taken is not None and taken.reserved_by == "agent2"
    assert await store.reserve(9999, agent="agent1", now=NOW) is None


async def test_change_applies_only_for_the_holder(stores: Stores) -> None:
    """A change by an agent who does not hold the contact is None and changes nothing; the holder's is
    applied: release, result, attempts added, data merged, one history entry."""
    store = stores.contacts
    row = await upsert(store, "u", PhoneNumber1="111", Name="A")
    await store.reserve(row.id, agent="agent1", now=NOW)
    change = RecordChange(
        finished=True,
        result_code_id=3,
        attempts=1,
        data={"Name": "B"},
        history={"result_code_id": 3, "phone_number": "111", "phone_offset": 1, "user_name": "agent1", "x": 1},
    )
    assert await store.change(row.id, agent="agent2", change=change, now=NOW) is None
    unchanged = await store.get(row.id, None)
    assert unchanged is not None and unchanged.reserved_by == "agent1" and not unchanged.finished
    done = await store.change(row.id, agent="agent1", change=change, now=NOW + timedelta(seconds=5))
    assert done is not None
    assert (done.reserved_by, done.finished, done.result_code_id, done.attempts) == (None, True, 3, 1)
    assert done.data == {"PhoneNumber1": "111", "Name": "B"} and done.updated_at == NOW + timedelta(seconds=5)
    (entry,) = (await store.history([row.id]))[row.id]
    assert (entry.result_code_id, entry.phone_number, entry.phone_offset, entry.user_name) == (3, "111", 1, "agent1")
    assert entry.data == {"x": 1}
    again = await store.change(row.id, agent=None, change=RecordChange(attempts=2, release=False), now=NOW)
    assert again is not None and again.attempts == 3
    assert await store.change(9999, agent=None, change=RecordChange(), now=NOW) is None


async def test_do_not_call_number_marks_every_contact_with_it(stores: Stores) -> None:
    """Any of the six phone fields matches; the contacts are freed and returned as they were before."""
    store = stores.contacts
    a = await upsert(store, "a", PhoneNumber1="555")
    b = await upsert(store, "b", PhoneNumber1="1", PhoneNumber6="555")
    c = await upsert(store, "c", PhoneNumber1="777")
    await store.reserve(b.id, agent="agent1", now=NOW)
    before = await store.do_not_call_number("555", NOW)
    assert [r.id for r in before] == [a.id, b.id]
    assert not any(r.do_not_call for r in before) and before[1].reserved_by == "agent1"
    after = {r.id: r for r in await store.list_contacts(None)}
    assert after[a.id].do_not_call and after[b.id].do_not_call and after[b.id].reserved_by is None
    assert not after[c.id].do_not_call
    assert await store.do_not_call_number("000", NOW) == []


async def test_add_and_chains(stores: Stores) -> None:
    """An added contact without a chain starts its own; added to it, the chain's members see each other."""
    store = stores.contacts
    root = await store.add(campaign_id=1, data={"PhoneNumber1": "1", "UserData": "ud"}, chain_id=None, now=NOW)
    assert root.chain_id is None and root.user_data == "ud" and root.imported_at == NOW
    member = await store.add(campaign_id=1, data={"PhoneNumber1": "2"}, chain_id=root.id, now=NOW)
    third = await store.add(campaign_id=1, data={"PhoneNumber1": "3"}, chain_id=root.id, now=NOW)
    alone = await store.add(campaign_id=1, data={}, chain_id=None, now=NOW)
    assert [r.id for r in await store.chain(root)] == [member.id, third.id]
    assert [r.id for r in await store.chain(member)] == [root.id, third.id]
    assert await store.chain(alone) == []


async def test_personal_callbacks_due_and_pending(stores: Stores) -> None:
    """Free personal callbacks by due moment: due_personal up to a moment, pending_personal all of them."""
    store = stores.contacts
    soon = await upsert(store, "soon")
    late = await upsert(store, "late")
    held = await upsert(store, "held")
    for row, minutes in ((soon, 1), (late, 60), (held, 2)):
        callback = RecordChange(personal_agent="agent1", next_try_at=NOW + timedelta(minutes=minutes))
        await store.change(row.id, agent=None, change=callback, now=NOW)
    await store.reserve(held.id, agent="agent1", now=NOW + timedelta(minutes=3))
    await upsert(store, "pool")
    assert [r.id for r in await store.due_personal(NOW + timedelta(minutes=5))] == [soon.id]
    assert [r.id for r in await store.pending_personal()] == [soon.id, late.id]


async def test_a_write_logs_its_notifications_in_its_transaction(stores: Stores) -> None:
    """`notify(result)` renders from the write's result; logged ones get replay ids, are readable from the
    log and are relayed once, after the commit and before the write returns; unlogged ones are only relayed."""
    store = stores.contacts
    seen: list[tuple[ContactRow, bool]] = []

    def notify(result: tuple[ContactRow, bool]) -> list[Notification]:
        seen.append(result)
        return [logged(f"imported {result[0].id}"), Notification("/v2/me/x", {"live": True}, user="crm")]

    row, _ = await store.upsert(campaign_id=1, user_data="u", data={}, overwrite=False, now=NOW, notify=notify)
    assert seen == [(row, True)]
    relayed = stores.notifications()
    assert [n.data for n in relayed] == [{"text": f"imported {row.id}"}, {"live": True}]
    assert relayed[0].replay_id is not None and relayed[0].created is not None
    assert relayed[1].replay_id is None and relayed[1].log is None
    (read,) = await stores.log.read(LOG, 0, 10)
    assert (read.channel, read.data, read.replay_id) == (relayed[0].channel, relayed[0].data, relayed[0].replay_id)
    deleted = await store.delete([row.id], notify=lambda rows: [logged(f"deleted {r.id}") for r in rows])
    assert [n.data["text"] for n in await stores.log.read(LOG, 0, 10)] == [f"imported {row.id}", f"deleted {row.id}"]
    assert deleted[0].id == row.id


async def test_a_failing_write_logs_and_relays_nothing(stores: Stores) -> None:
    """A write that fails is rolled back whole: no change, no log entry, nothing relayed; its neighbours
    in the same group commit are unaffected."""
    store = stores.contacts

    def broken(result: object) -> list[Notification]:
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError, match="renderer failed"):
        await store.upsert(campaign_id=1, user_data="x", data={}, overwrite=False, now=NOW, notify=broken)
    unserializable: dict[str, Any] = {"x": object()}
    good, bad = await asyncio.gather(
        store.add(campaign_id=1, data={}, chain_id=None, now=NOW, notify=lambda row: [logged(f"added {row.id}")]),
        store.add(campaign_id=1, data=unserializable, chain_id=None, now=NOW, notify=lambda row: [logged("bad")]),
        return_exceptions=True,
    )
    assert isinstance(good, ContactRow) and isinstance(bad, Exception)
    assert [r.id for r in await store.list_contacts(None)] == [good.id]
    assert [n.data["text"] for n in stores.notifications()] == [f"added {good.id}"]
    assert [n.data["text"] for n in await stores.log.read(LOG, 0, 10)] == [f"added {good.id}"]


async def test_a_write_that_changes_nothing_still_notifies(stores: Stores) -> None:
    """`notify` sees a None result too (no contact reserved), and what it renders is logged."""
    store = stores.contacts
    row = await store.reserve_next(
        campaign_id=1, agent="agent1", now=NOW, notify=lambda r: [logged("empty" if r is None else "found")]
    )
    assert row is None
    assert [n.data["text"] for n in await stores.log.read(LOG, 0, 10)] == ["empty"]


async def test_log_appends_notifications_of_no_change(stores: Stores) -> None:
    """`log` appends and relays notifications in a transaction of their own, in order; empty is a no-op."""
    await stores.contacts.log([logged("one"), logged("two")])
    await stores.contacts.log([])
    relayed = stores.notifications()
    assert [n.data["text"] for n in relayed] == ["one", "two"]
    ids = [n.replay_id for n in relayed]
    assert ids[0] is not None and ids[1] is not None and ids[0] < ids[1]
    assert [n.replay_id for n in await stores.log.read(LOG, 0, 10)] == ids
    assert len(stores.relayed) == 1
