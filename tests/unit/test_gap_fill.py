"""GapFill's cursor and fill: each logged id once, out-of-order arrivals kept, a gap read back in order."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from gateway.bayeux.gap_fill import Cursor, GapFill
from gateway.bayeux.logs import LogPolicy
from gateway.broker.base import Envelope, Kind
from gateway.hub.hub import Hub
from gateway.store.log import LogBounds
from gateway.wire.notification import Notification


def test_cursor_keeps_ids_that_cross_and_history() -> None:
    """Ids seen out of order raise the floor once the hole closes; ids below the start are history."""
    cursor = Cursor()
    cursor.add(5)
    cursor.add(7)
    assert cursor.floor == 5 and cursor.has(7) and not cursor.has(6)
    cursor.add(6)
    assert cursor.floor == 7 and cursor.seen == set()
    assert not cursor.has(4)  # history: never a duplicate, never read back
    cursor.add(10)
    cursor.read_through(12)
    assert cursor.floor == 12 and cursor.seen == set()


class FakeLog:
    """A NotificationLog of one user's log, held in a list; a read can be made to wait."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []
        self.gate: asyncio.Event | None = None

    def append(self, replay_id: int) -> Envelope:
        note = Notification(
            "/v2/me/outbound", {"n": replay_id}, user="agent1", log="user:agent1", replay_id=replay_id,
            created=datetime(2026, 1, 1),
        )  # fmt: skip
        self.notes.append(note)
        return Envelope(Kind.USER, note.message(), "other", user="agent1", log="user:agent1", replay_id=replay_id)

    async def read(self, log: str, after: int, limit: int) -> list[Notification]:
        if self.gate is not None:
            await self.gate.wait()
        return [n for n in self.notes if (n.replay_id or 0) > after][:limit]

    async def bounds(self, log: str) -> LogBounds:
        return LogBounds(max((n.replay_id or 0 for n in self.notes), default=0), 0)

    async def prune(self, **kwargs: Any) -> int:
        return 0


async def test_a_gap_is_read_back_in_order_without_duplicates() -> None:
    """A session subscribed; ids 3..4 never came live; a fill delivers them; a live 5 arriving during the
    read comes once, after them, and a late live copy of 3 is dropped."""
    hub = Hub(max_queue=100, overflow="drop_oldest", max_interval_s=10)
    log = FakeLog()
    fill = GapFill(hub=hub, log=log, logs=LogPolicy(channels=("/v2/me/**",), enabled=True))  # type: ignore[arg-type]
    log.append(1)
    session = hub.create_session(transport="websocket", user="agent1", identity=None, browser_id=None)
    hub.subscribe(session, "/v2/me/outbound")
    await asyncio.sleep(0)  # the cursor starts at the log's last id (1)
    assert fill.dispatch(log.append(2)) == 1
    log.append(3)
    log.append(4)  # lost on the way
    log.gate = asyncio.Event()
    fill.dispatch(Envelope(Kind.FILL, {}, "node"))
    assert fill.dispatch(log.append(5)) == 0  # held back at once, before the read even starts
    log.gate.set()
    await asyncio.sleep(0.01)
    assert fill.dispatch(Envelope(Kind.USER, log.notes[2].message(), "x", user="agent1", log="user:agent1",
                                  replay_id=3)) == 0  # fmt: skip
    assert [m["data"]["n"] for m in session.drain()] == [2, 3, 4, 5]
    # 5 committed before the read ended: the read has it, and its held live copy is a duplicate, as is 3's.
    assert fill.filled == 3 and fill.duplicates == 2
    await fill.close()
