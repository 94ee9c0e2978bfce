"""EngineWait: an engine's start retried with capped backoff until one shared deadline, one warning per
failed attempt (engine, error without passwords); other errors and a zero budget give up at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from gateway.engine_wait import EngineWait, redact


class Flaky:
    """A start that cannot reach its engine `failures` times, then succeeds; records when it was called."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("redis://gw:secret@127.0.0.1:1/0: Connection refused")
        self.calls: list[float] = []

    async def __call__(self) -> None:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise self.error


async def test_retries_with_doubling_capped_pauses_then_starts() -> None:
    """Pauses double from the first to the cap; each failed attempt is one warning; the success is logged."""
    start = Flaky(failures=4)
    wait = EngineWait(budget_s=10, first_s=0.02, max_s=0.05)
    with capture_logs() as logs:
        await wait.start("broker", start)
    assert len(start.calls) == 5
    pauses = [b - a for a, b in zip(start.calls, start.calls[1:], strict=False)]
    assert all(p >= want - 0.005 for p, want in zip(pauses, (0.02, 0.04, 0.05, 0.05), strict=True)), pauses
    warned = [e for e in logs if e["event"] == "engine_unavailable"]
    assert [e["attempt"] for e in warned] == [1, 2, 3, 4]
    assert [e["retry_in_s"] for e in warned] == [0.02, 0.04, 0.05, 0.05]
    assert all(e["engine"] == "broker" and e["log_level"] == "warning" for e in warned)
    assert all("redis://gw:***@127.0.0.1:1/0" in e["error"] and "secret" not in e["error"] for e in warned)
    assert [e for e in logs if e["event"] == "engine_available"] == [
        {"event": "engine_available", "engine": "broker", "attempts": 5, "log_level": "info"}
    ]


async def test_no_budget_gives_up_at_once_without_a_warning() -> None:
    """The default (0 s): the first ConnectionError goes up as it is, as a node always did."""
    start = Flaky(failures=1)
    with capture_logs() as logs, pytest.raises(ConnectionError, match="Connection refused"):
        await EngineWait(budget_s=0).start("store", start)
    assert len(start.calls) == 1 and logs == []


async def test_the_deadline_is_shared_and_the_last_error_goes_up() -> None:
    """The budget counts from the first start, over every engine: the last attempt is at the deadline and its
    error is raised unchanged; a later engine has no budget left."""
    wait = EngineWait(budget_s=0.3, first_s=0.05, max_s=0.1)
    never = Flaky(failures=1000)
    began = time.monotonic()
    with pytest.raises(ConnectionError) as raised:
        await wait.start("store", never)
    assert raised.value is never.error
    assert 0.29 <= never.calls[-1] - began < 1.0 and len(never.calls) >= 4
    other = Flaky(failures=1)
    with pytest.raises(ConnectionError):
        await wait.start("correlation", other)
    assert len(other.calls) == 1


async def test_errors_waiting_cannot_fix_are_raised_at_once() -> None:
    """Only ConnectionError is retried: a schema newer than the gateway is no reason to wait."""
    start = Flaky(failures=5, error=RuntimeError("database schema is version 9, newer than this gateway's 6"))
    with pytest.raises(RuntimeError):
        await EngineWait(budget_s=5).start("store", start)
    assert len(start.calls) == 1


async def test_cancelled_while_waiting() -> None:
    """A stop (SIGTERM) during the wait cancels the pause: nothing is retried after it."""
    start = Flaky(failures=1000)
    task = asyncio.create_task(EngineWait(budget_s=30, first_s=5).start("broker", start))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(start.calls) == 1


def test_redact_masks_every_password() -> None:
    """Passwords of URLs anywhere in a text are masked; users, hosts and URLs without one stay."""
    text = "a postgresql+psycopg://gw:pa:ss@db:5432/gw and redis://:s3cret@r:6379/0, not redis://r:6379/0"
    assert redact(text) == "a postgresql+psycopg://gw:***@db:5432/gw and redis://:***@r:6379/0, not redis://r:6379/0"
