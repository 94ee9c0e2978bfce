"""Deadlines: held connects time out never early, at most a tick late, and released ones never fire."""

from __future__ import annotations

import asyncio

from gateway.hub.deadlines import RESOLUTION_S, Deadlines
from gateway.hub.session import HeldConnect, WakeReason


async def _timed_out_after(held: HeldConnect) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await held.wait() is WakeReason.TIMEOUT
    return loop.time() - start


async def test_timeouts_are_never_early_and_at_most_a_tick_late() -> None:
    """Each connect times out after its own timeout, whatever order they were added in."""
    deadlines = Deadlines()
    late = HeldConnect({}, timeout_s=0.3, wake_on_message=True, deadlines=deadlines)
    early = HeldConnect({}, timeout_s=0.1, wake_on_message=True, deadlines=deadlines)  # re-arms the timer
    waited_early, waited_late = await asyncio.gather(_timed_out_after(early), _timed_out_after(late))
    assert 0.1 - 0.005 <= waited_early <= 0.1 + RESOLUTION_S + 0.05
    assert 0.3 - 0.005 <= waited_late <= 0.3 + RESOLUTION_S + 0.05
    assert len(deadlines) == 0


async def test_a_released_connect_is_forgotten() -> None:
    """A connect answered before its timeout leaves the deadlines and keeps its reason."""
    deadlines = Deadlines()
    held = HeldConnect({}, timeout_s=0.05, wake_on_message=True, deadlines=deadlines)
    other = HeldConnect({}, timeout_s=0.05, wake_on_message=True, deadlines=deadlines)
    held.wake(WakeReason.MESSAGES)
    assert len(deadlines) == 1
    assert await other.wait() is WakeReason.TIMEOUT
    assert held.reason is WakeReason.MESSAGES
    assert len(deadlines) == 0
