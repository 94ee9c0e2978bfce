"""DueTimers: an action runs at its moment, never before; re-arming replaces, cancelling disarms."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from gateway.clock import utcnow
from gateway.services.due import DueTimers


async def test_runs_at_its_moment_never_before() -> None:
    """Each key's action runs once, at or after its moment; a past moment runs at once."""
    timers: DueTimers[str] = DueTimers()
    ran: dict[str, datetime] = {}

    when = utcnow() + timedelta(milliseconds=80)
    timers.arm("later", when, lambda: _record(ran, "later"))
    timers.arm("past", utcnow() - timedelta(seconds=5), lambda: _record(ran, "past"))
    await asyncio.sleep(0.02)
    assert set(ran) == {"past"}
    await asyncio.sleep(0.2)
    assert ran["later"] >= when


async def test_rearm_replaces_and_cancel_disarms() -> None:
    """A key has one armed action: the newest; a cancelled key runs nothing."""
    timers: DueTimers[str] = DueTimers()
    ran: dict[str, datetime] = {}
    soon = utcnow() + timedelta(milliseconds=30)
    timers.arm("k", soon, lambda: _record(ran, "first"))
    timers.arm("k", soon, lambda: _record(ran, "second"))
    timers.arm("gone", soon, lambda: _record(ran, "gone"))
    timers.cancel("gone")
    await asyncio.sleep(0.15)
    assert set(ran) == {"second"}
    timers.close()


async def _record(ran: dict[str, datetime], key: str) -> None:
    ran[key] = utcnow()
