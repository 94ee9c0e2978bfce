"""The login limiter (an injected clock) and the password checks behind it (logins.py)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator

import pytest

from gateway.credentials import hash_password
from gateway.identity import Directory
from gateway.logins import FailureLimiter, Logins
from gateway.settings import SecuritySettings, UserSettings
from tests.seams.clock import FakeClock


def limiter(clock: FakeClock, **kw: float) -> FailureLimiter:
    args: dict[str, float] = {"max_failures": 3, "window_s": 60, "backoff_s": 2, "max_backoff_s": 10, "max_keys": 100}
    args.update(kw)
    return FailureLimiter(
        max_failures=int(args["max_failures"]),
        window_s=args["window_s"],
        backoff_s=args["backoff_s"],
        max_backoff_s=args["max_backoff_s"],
        max_keys=int(args["max_keys"]),
        clock=clock,
    )


def test_the_nth_failure_locks_for_the_back_off() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    assert lim.failed("u") == 0 and lim.failed("u") == 0 and lim.locked_for("u") == 0
    assert lim.failed("u") == 2
    assert lim.locked_for("u") == 2
    clock.advance(1.5)
    assert lim.locked_for("u") == pytest.approx(0.5)
    clock.advance(0.5)
    assert lim.locked_for("u") == 0


def test_each_failure_after_a_lock_doubles_it_up_to_the_cap() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    for _ in range(3):
        lim.failed("u")
    locks = []
    for _ in range(5):
        clock.advance(lim.locked_for("u"))
        locks.append(lim.failed("u"))  # one failure once the lock ends is enough
    assert locks == [4, 8, 10, 10, 10]


def test_failures_are_forgotten_after_a_quiet_window() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    lim.failed("u")
    lim.failed("u")
    clock.advance(61)
    assert lim.failed("u") == 0 and lim.failed("u") == 0  # counting starts over
    assert lim.failed("u") == 2
    clock.advance(2 + 61)  # the window counts from the end of the lock
    assert lim.failed("u") == 0  # and the doubling is forgotten too
    assert lim.failed("u") == 0
    assert lim.failed("u") == 2


def test_keys_are_independent_and_reset_forgets_one() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    for _ in range(3):
        lim.failed("a")
    assert lim.locked_for("a") and not lim.locked_for("b")
    lim.reset("a")
    assert lim.locked_for("a") == 0 and len(lim) == 0


def test_the_tracked_keys_are_bounded() -> None:
    clock = FakeClock()
    lim = limiter(clock, max_keys=10)
    for i in range(1000):
        lim.failed(f"k{i}")
    assert len(lim) == 10
    lim.failed("k995")  # recently failed keys survive, the oldest go
    lim.failed("new")
    assert lim.locked_for("k995") == 0 and len(lim) == 10


def test_zero_never_locks() -> None:
    lim = limiter(FakeClock(), max_failures=0)
    assert all(lim.failed("u") == 0 for _ in range(100)) and lim.locked_for("u") == 0


@pytest.fixture
async def logins() -> AsyncIterator[tuple[Logins, FakeClock]]:
    clock = FakeClock()
    users = [
        UserSettings(name="plain", role="agent", password="plain-password"),
        UserSettings(name="hashed", role="agent", password_hash=hash_password("hashed-password")),
    ]
    settings = SecuritySettings(login_max_failures=2, login_max_failures_per_address=4, login_backoff_s=5)
    checker = Logins(directory=Directory.from_settings(users), settings=settings, clock=clock)
    yield checker, clock
    checker.close()


async def test_a_locked_user_is_refused_even_with_the_right_password(logins: tuple[Logins, FakeClock]) -> None:
    """Two failures lock `plain` for 5 s: its right password is refused without a check; `hashed` is not."""
    checker, clock = logins
    assert await checker.password("plain", "wrong", "10.0.0.1") is None
    assert await checker.password("plain", "wrong", "10.0.0.2") is None
    checks = checker.checks
    assert await checker.password("plain", "plain-password", "10.0.0.3") is None
    assert checker.checks == checks and checker.refused == 1
    identity = await checker.password("hashed", "hashed-password", "10.0.0.1")
    assert identity is not None and identity.name == "hashed"
    clock.advance(5)
    identity = await checker.password("plain", "plain-password", "10.0.0.3")
    assert identity is not None and identity.name == "plain"
    assert checker.users.locked_for("plain") == 0 and len(checker.users) == 0  # the success forgot the failures


async def test_an_address_is_locked_across_names(logins: tuple[Logins, FakeClock]) -> None:
    """Four failures from one address, each for another name (unknown ones too): the address is locked."""
    checker, clock = logins
    for name in ("a", "b", "c", "plain"):
        assert await checker.password(name, "wrong", "10.0.0.9") is None
    assert await checker.password("hashed", "hashed-password", "10.0.0.9") is None
    assert (await checker.password("hashed", "hashed-password", "10.0.0.8")) is not None
    clock.advance(5)
    assert (await checker.password("hashed", "hashed-password", "10.0.0.9")) is not None


async def test_a_verified_hash_is_cached(logins: tuple[Logins, FakeClock]) -> None:
    """The second right password of a hashed user needs no scrypt; a plain password never does."""
    checker, _ = logins
    assert await checker.password("hashed", "hashed-password", None) is not None
    checks = checker.checks
    assert await checker.password("hashed", "hashed-password", None) is not None
    assert await checker.password("plain", "plain-password", None) is not None
    assert checker.checks == checks


async def test_tokens_and_malformed_credentials(logins: tuple[Logins, FakeClock]) -> None:
    """Bearer tokens skip the pool; a malformed header or ext is refused and counts nothing."""
    checker, _ = logins
    assert await checker.authorization("Basic !!", "10.0.0.1") is None
    assert await checker.authorization(None, "10.0.0.1") is None
    assert await checker.ext({"authentication": {"user": 1}}, "10.0.0.1") is None
    assert await checker.authorization("Bearer nothing-like-a-token", "10.0.0.1") is None
    assert checker.checks == 0 and len(checker.users) == 0 and len(checker.addresses) == 0


def thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
async def test_password_checks_run_nicer_than_the_event_loop() -> None:
    """The pool's threads run `password_nice` steps below the loop's priority (0: the same), so that a storm of
    re-handshakes or a flood of wrong passwords leaves the CPU to deliveries first."""
    loop = asyncio.get_running_loop()
    mine = thread_nice()
    for nice, expected in ((10, min(19, mine + 10)), (0, mine)):
        settings = SecuritySettings(password_workers=1, password_nice=nice)
        checker = Logins(directory=Directory.from_settings([]), settings=settings)
        try:
            assert await loop.run_in_executor(checker._pool, thread_nice) == expected
        finally:
            checker.close()
    assert thread_nice() == mine  # the loop's own thread is untouched
