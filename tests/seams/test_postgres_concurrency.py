"""Concurrent transactions on PostgreSQL: several stores on one database (each its own engine, writer thread
and connections, as several gateway nodes) never reserve a record twice nor give a replay id twice."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from gateway.store.base import HoldLimitReached
from gateway.store.sql import SqlContactStore
from gateway.store.sql_log import SqlNotificationLog
from gateway.store.waitfield import SqlWaitfieldStore, WaitRow
from gateway.wire.notification import Notification
from tests.seams.test_waitfield_store_contract import row
from tests.servers.postgres import PostgresServer

NOW = datetime(2025, 3, 1, 12, 0, 0)
NODES = 8


@pytest.fixture
async def nodes(postgres_server: PostgresServer) -> AsyncIterator[list[SqlContactStore]]:
    """Eight stores on one fresh database (migrated by the first, found migrated by the others)."""
    url = postgres_server.create_database()
    stores = [SqlContactStore(url=url, readers=1) for _ in range(NODES)]
    await asyncio.gather(*(s.open() for s in stores))  # concurrent starts: the migrations take turns
    yield stores
    await asyncio.gather(*(s.close() for s in stores))


async def test_eight_agents_five_records(nodes: list[SqlContactStore]) -> None:
    """8 agents ask at once for the next of 5 records: 5 distinct records, 3 empty answers; ten rounds."""
    for round_ in range(10):
        campaign = 100 + round_
        for i in range(5):
            await nodes[0].upsert(campaign_id=campaign, user_data=f"r{i}", data={}, overwrite=False, now=NOW)
        got = await asyncio.gather(
            *(node.reserve_next(campaign_id=campaign, agent=f"agent{n}", now=NOW) for n, node in enumerate(nodes))
        )
        taken = [row for row in got if row is not None]
        assert len(taken) == 5 and got.count(None) == 3, got
        assert len({row.id for row in taken}) == 5
        held = await nodes[0].list_contacts(None, campaign)
        assert sorted(row.reserved_by or "" for row in held) == sorted(row.reserved_by or "" for row in taken)
        assert all(row.reserved_by for row in held)


async def test_one_record_asked_by_eight(nodes: list[SqlContactStore]) -> None:
    """8 agents reserve the same record by id at once: exactly one gets it."""
    for _ in range(10):
        row, _ = await nodes[0].upsert(campaign_id=1, user_data=None, data={}, overwrite=False, now=NOW)
        got = await asyncio.gather(*(node.reserve(row.id, agent=f"agent{n}", now=NOW) for n, node in enumerate(nodes)))
        winners = [r for r in got if r is not None]
        assert len(winners) == 1
        assert (await nodes[0].get(row.id, None)).reserved_by == winners[0].reserved_by  # type: ignore[union-attr]


async def test_one_agent_on_eight_nodes_holds_its_limit(nodes: list[SqlContactStore]) -> None:
    """One agent asks 8 nodes at once for a record with max_held 2 (outbound.max_records_per_agent): it holds
    2, never more; the other 6 are refused; ten rounds."""
    for round_ in range(10):
        campaign, agent = 200 + round_, f"solo{round_}"
        for i in range(8):
            await nodes[0].upsert(campaign_id=campaign, user_data=f"r{i}", data={}, overwrite=False, now=NOW)

        async def ask(node: SqlContactStore, campaign: int, agent: str) -> str:
            try:
                row = await node.reserve_next(campaign_id=campaign, agent=agent, now=NOW, max_held=2)
            except HoldLimitReached:
                return "refused"
            return "record" if row is not None else "none"

        got = await asyncio.gather(*(ask(node, campaign, agent) for node in nodes))
        assert sorted(got) == ["record"] * 2 + ["refused"] * 6, got
        assert len(await nodes[0].reserved_by(agent)) == 2


async def test_a_waiting_contact_routed_by_eight_nodes_is_routed_once(nodes: list[SqlContactStore]) -> None:
    """8 nodes route one waiting-field contact at once (each armed its timer): one claim, one callback record;
    the waiting field's compare-and-set steps the same way (one elapse of 8)."""
    for round_ in range(5):
        contact = row(f"w{round_}")
        await SqlWaitfieldStore(nodes[0]).insert(contact)

        def routed(record_id: int, contact: WaitRow = contact) -> WaitRow:
            return dataclasses.replace(contact, state="routed", record_id=record_id)

        got = await asyncio.gather(
            *(SqlWaitfieldStore(node).route(contact, campaign_id=9, data={}, now=NOW, routed=routed) for node in nodes)
        )
        winners = [g for g in got if g is not None]
        assert len(winners) == 1
        assert len(await nodes[0].list_contacts(None, 9)) == round_ + 1
        elapsed = dataclasses.replace(winners[0], state="elapsed")
        saved = await asyncio.gather(*(SqlWaitfieldStore(node).save(elapsed, expected="routed") for node in nodes))
        assert saved.count(True) == 1


async def test_replay_ids_are_given_once(nodes: list[SqlContactStore]) -> None:
    """Appends to one new log from 8 nodes at once (its head row created by whichever comes first): every id
    once, 1..N without a gap, each entry readable under its id."""
    log = "user:agent1:/v2/me/outbound"

    async def append(n: int, i: int) -> None:
        await nodes[n].log([Notification("/v2/me/outbound", {"n": n, "i": i}, user="agent1", log=log)])

    await asyncio.gather(*(append(n, i) for i in range(5) for n in range(NODES)))
    entries = await SqlNotificationLog(nodes[0]).read(log, 0, 1000)
    assert [e.replay_id for e in entries] == list(range(1, 5 * NODES + 1))
    assert sorted((e.data["n"], e.data["i"]) for e in entries) == [(n, i) for n in range(NODES) for i in range(5)]
    assert (await SqlNotificationLog(nodes[3]).bounds(log)).last_id == 5 * NODES


async def test_overwrite_imports_of_one_key_make_one_contact(nodes: list[SqlContactStore]) -> None:
    """The same (campaign, UserData) imported with overwrite on 8 nodes at once: one contact, 7 overwrites."""
    results = await asyncio.gather(
        *(
            node.upsert(campaign_id=7, user_data="same", data={"n": n}, overwrite=True, now=NOW)
            for n, node in enumerate(nodes)
        )
    )
    assert [created for _, created in results].count(True) == 1
    assert len({row.id for row, _ in results}) == 1
    assert len(await nodes[0].find_by_user_data("same", None)) == 1
