"""Session queue, overflow policies and held-connect wake-up rules."""

from __future__ import annotations

import asyncio

from gateway.bayeux.ext_ack import AckState
from gateway.hub.deadlines import Deadlines
from gateway.hub.session import DeliveryStats, HeldConnect, Session, SessionState, WakeReason


def make(max_queue: int = 3, overflow: str = "drop_oldest") -> Session:
    return Session(
        client_id="c",
        user=None,
        identity=None,
        browser_id=None,
        transport="long-polling",
        max_queue=max_queue,
        overflow=overflow,
        expires_at=0.0,
        stats=DeliveryStats(),
    )  # type: ignore[arg-type]


def test_queue_is_bounded() -> None:
    """No policy lets the queue grow past max_queue."""
    for policy in ("drop_oldest", "drop_newest", "disconnect"):
        s = make(overflow=policy)
        for n in range(100):
            s.enqueue({"channel": "/a", "data": n})
        assert len(s.queue) <= 3
        assert s.stats.dropped == 97


async def test_enqueue_wakes_long_poll_but_not_websocket_held_connect() -> None:
    """A long-polling hold wakes on messages; a WebSocket hold leaves delivery to the pusher."""
    s = make()
    lp = HeldConnect({}, timeout_s=5, wake_on_message=True, deadlines=Deadlines())
    s.hold(lp)
    s.enqueue({"channel": "/a", "data": 1})
    assert await lp.wait() is WakeReason.MESSAGES

    pushed: list[int] = []
    s2 = make()
    s2.pusher = lambda: pushed.append(1)
    ws = HeldConnect({}, timeout_s=0.05, wake_on_message=False, deadlines=Deadlines())
    s2.hold(ws)
    s2.enqueue({"channel": "/a", "data": 1})
    assert pushed == [1]
    assert await ws.wait() is WakeReason.TIMEOUT


async def test_batching_defers_wake() -> None:
    """While the session's own request runs, events wait for its response instead of waking."""
    s = make()
    held = HeldConnect({}, timeout_s=0.05, wake_on_message=True, deadlines=Deadlines())
    s.hold(held)
    with s.batch():
        s.enqueue({"channel": "/a", "data": 1})
        assert held.reason is None
        s.drain()  # the request's own response took the event
    assert await held.wait() is WakeReason.TIMEOUT


async def test_batch_end_wakes_for_what_is_left() -> None:
    """Events queued during a batch and not taken by the response wake the held connect when it ends."""
    s = make()
    held = HeldConnect({}, timeout_s=5, wake_on_message=True, deadlines=Deadlines())
    s.hold(held)
    with s.batch():
        s.enqueue({"channel": "/a", "data": 1})
        assert held.reason is None
    assert await held.wait() is WakeReason.MESSAGES


def test_state_and_expiry() -> None:
    """NEW until the first connect; a held connect never expires; release starts the clock again."""
    s = make()
    assert s.state is SessionState.NEW and not s.connected
    assert s.expired(1.0)  # created with expires_at 0
    assert s.connect("websocket") is True and s.connect("websocket") is False
    assert s.state is SessionState.IDLE and s.transport == "websocket"

    async def hold_and_release() -> None:
        held = HeldConnect({}, timeout_s=5, wake_on_message=True, deadlines=Deadlines())
        s.hold(held)
        assert s.state is SessionState.HELD and not s.expired(1e9)
        s.extend_expiration(100.0)  # ignored while held
        s.release(held, expires_at=50.0)
        held.wake()

    asyncio.run(hold_and_release())
    assert s.state is SessionState.IDLE and s.expires_at == 50.0
    assert not s.expired(49.0) and s.expired(51.0)
    s.extend_expiration(60.0)
    assert not s.expired(55.0)
    s.close()
    assert s.closed and not s.expired(1e9) and not s.enqueue({"channel": "/a", "data": 1})


def test_first_wake_reason_wins() -> None:
    """A connect released for one reason keeps it."""

    async def run() -> WakeReason:
        held = HeldConnect({}, timeout_s=1, wake_on_message=True, deadlines=Deadlines())
        held.wake(WakeReason.REPLACED)
        held.wake(WakeReason.MESSAGES)
        return await held.wait()

    assert asyncio.run(run()) is WakeReason.REPLACED


def test_ack_state_forgets_acknowledged_batches() -> None:
    """acknowledge(n) drops every batch up to n, keeps later ones."""
    state = AckState()
    state.unacked = [(1, {"a": 1}), (2, {"b": 2}), (3, {"c": 3})]
    state.acknowledge(2)
    assert state.unacked == [(3, {"c": 3})]
