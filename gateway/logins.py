"""Password logins: scrypt off the event loop, at one cost for every name, and failures limited per user and address.

Every password check of every transport and dialect (Bayeux handshakes, HTTP Basic on REST and the desktop) comes
here. A check the directory cannot answer at once (a plain password, or a hashed one it verified before) runs scrypt
on a small thread pool, so a flood of wrong passwords never holds the event loop. Unknown names cost one scrypt as
known ones do. After too many failures a user name (or a client address) is locked for a back-off that doubles;
a locked attempt is refused at once, without scrypt, whether its password is right or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from gateway.identity import Bearer, Directory, Identity, Password, parse_authorization, parse_ext

if TYPE_CHECKING:
    from gateway.settings import SecuritySettings

log = structlog.get_logger("gateway.logins")

Clock = Callable[[], float]


@dataclass(slots=True)
class _Record:
    failures: int = 0  # within the current window
    locks: int = 0  # locks since the key was last quiet for a window
    last: float = 0.0  # the last failure
    until: float = 0.0  # locked until


class FailureLimiter:
    """Failed attempts per key (a user name or an address), with a lock that doubles while failures go on.

    `max_failures` failures within `window_s` lock the key for `backoff_s`; once locked, every further failure
    before the key has been quiet for `window_s` (counted from the end of its lock) locks it again for twice as
    long, up to `max_backoff_s`. Attempts refused while locked are not failures (they prove nothing). `reset`
    forgets a key (a success). At most `max_keys` keys are kept, the least recently failed dropped first.
    `max_failures` 0 never locks.
    """

    def __init__(
        self,
        *,
        max_failures: int,
        window_s: float,
        backoff_s: float,
        max_backoff_s: float,
        max_keys: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window = window_s
        self._backoff = backoff_s
        self._max_backoff = max(max_backoff_s, backoff_s)
        self._max_keys = max_keys
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def locked_for(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        record = self._records.get(key)
        return 0.0 if record is None else max(0.0, record.until - self._clock())

    def failed(self, key: str) -> float:
        """Count a failure of `key`; the length of the lock it starts (0: none)."""
        if not self._max_failures:
            return 0.0
        now = self._clock()
        record = self._records.get(key)
        if record is None or now - max(record.last, record.until) > self._window:
            record = _Record()
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > self._max_keys:
            self._records.popitem(last=False)
        record.failures += 1
        record.last = now
        if record.locks == 0 and record.failures < self._max_failures:
            return 0.0
        lock = min(self._backoff * 2.0**record.locks, self._max_backoff)
        record.locks += 1
        record.failures = 0
        record.until = now + lock
        return lock

    def reset(self, key: str) -> None:
        """Forget `key` (its user logged in)."""
        self._records.pop(key, None)


def lower_priority(nice: int) -> None:
    """Make the calling thread `nice` steps nicer (Linux: a thread's own nice value; elsewhere nothing).

    scrypt saturates every core it gets; the event loop must win those cores back at once, or a restart's
    re-handshakes or a flood of wrong passwords delay every delivery. Elsewhere setpriority would apply to the
    whole process, so it is left alone.
    """
    if nice and sys.platform == "linux":
        tid = threading.get_native_id()
        with contextlib.suppress(OSError):  # a sandbox may forbid it: the checks run at the loop's priority
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))


class Logins:
    """Checks credentials for every edge: tokens at once, passwords on the pool and through the limiters."""

    def __init__(self, *, directory: Directory, settings: SecuritySettings, clock: Clock = time.monotonic) -> None:
        self._directory = directory
        self._pool = ThreadPoolExecutor(
            max_workers=settings.password_workers,
            thread_name_prefix="password-check",
            initializer=lower_priority,
            initargs=(settings.password_nice,),
        )

        def limiter(max_failures: int) -> FailureLimiter:
            return FailureLimiter(
                max_failures=max_failures,
                window_s=settings.login_failure_window_s,
                backoff_s=settings.login_backoff_s,
                max_backoff_s=settings.login_max_backoff_s,
                max_keys=settings.login_tracked_keys,
                clock=clock,
            )

        self.users = limiter(settings.login_max_failures)
        self.addresses = limiter(settings.login_max_failures_per_address)
        self.checks = 0  # password checks that ran scrypt (or waited for it)
        self.refused = 0  # attempts refused by a lock, without scrypt

    @property
    def directory(self) -> Directory:
        """The identities checked against."""
        return self._directory

    async def authorization(self, header: str | None, address: str | None) -> Identity | None:
        """The identity of an `Authorization: Basic …` or `Bearer …` header; None if wrong, malformed or locked."""
        return await self.credentials(parse_authorization(header), address)

    async def ext(self, ext: Mapping[str, object], address: str | None) -> Identity | None:
        """The identity of a Bayeux `ext.authentication` = {user, password} or {token}."""
        return await self.credentials(parse_ext(ext), address)

    async def credentials(self, credentials: Bearer | Password | None, address: str | None) -> Identity | None:
        """The identity of parsed credentials (a bearer token is a hash lookup: no pool, no limiter)."""
        if isinstance(credentials, Bearer):
            return self._directory.by_token(credentials.token)
        if isinstance(credentials, Password):
            return await self.password(credentials.user, credentials.password, address)
        return None

    async def password(self, name: str, password: str, address: str | None) -> Identity | None:
        """The identity if `password` is right for `name` and neither the name nor the address is locked."""
        if self.users.locked_for(name) or (address is not None and self.addresses.locked_for(address)):
            self.refused += 1
            return None
        identity = self._directory.cached(name, password)
        if identity is None:
            self.checks += 1
            loop = asyncio.get_running_loop()
            identity = await loop.run_in_executor(self._pool, self._directory.verify, name, password)
            if identity is not None:
                self._directory.remember(name, password)
        if identity is not None:
            self.users.reset(name)
            return identity
        if lock := self.users.failed(name):
            log.warning("login_locked", user=name, seconds=lock)
        if address is not None and (lock := self.addresses.failed(address)):
            log.warning("login_locked", address=address, seconds=lock)
        return None

    def close(self) -> None:
        """Stop the pool's threads (checks still queued are dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
