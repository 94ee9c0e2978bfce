"""Waiting for the engines a node needs at start (`cluster.wait_for_engines_s`).

Nodes and their engines are often started together (a host booting, containers brought up at once), so a
node's PostgreSQL or Redis may not answer yet when the node starts. By default (0 s) a node that cannot reach
one gives up at once: it exits 1 with one line naming the engine, and whatever supervises it starts it
again. With a budget it retries instead: each engine's start is attempted again after 0.5 s, doubling to
5 s, one structured warning per failed attempt (`engine_unavailable`, naming the engine and the error with
any URL's password masked), until it answers or the budget, shared by every engine and counted from the
first start, is spent; then the last error goes up, and the node exits exactly as it would have at once.

Nothing listens meanwhile: the engines are started by the application's cleanup contexts, which run before
the site binds its port (`gateway/__main__.py`), so a load balancer sees a refused connection, never a node
that accepts requests it cannot serve.

The contract with the engines: a start that fails because the engine cannot be reached raises
`ConnectionError` (the store's `StoreUnavailable` is one). Anything else (a schema newer than this gateway,
a bad URL) is raised at once: waiting would not change it. One attempt may outlast the deadline by its own
connect timeout (PostgreSQL's is 5 s, Redis's 2 s).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Final

import structlog

log = structlog.get_logger("gateway.engines")

FIRST_S: Final = 0.5
MAX_S: Final = 5.0
_TICK_S: Final = 0.01

# scheme://user:password@ in any text (an error that quotes its URL): the password goes, the user stays.
_CREDENTIALS: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s]*@")


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***`."""
    return _CREDENTIALS.sub(r"\1:***@", text)


class EngineWait:
    """Starts a node's engines, retrying those that cannot be reached until one deadline shared by all."""

    def __init__(self, *, budget_s: float, first_s: float = FIRST_S, max_s: float = MAX_S) -> None:
        self._budget = budget_s
        self._first, self._max = first_s, max_s
        self._deadline: float | None = None

    def retrying(self, engine: str, start: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """`start` as a start function that waits for `engine` (for a cleanup context)."""

        async def run() -> None:
            await self.start(engine, start)

        return run

    async def start(self, engine: str, start: Callable[[], Awaitable[None]]) -> None:
        """Call `start` until it does not raise ConnectionError, or re-raise once the budget is spent."""
        clock = asyncio.get_running_loop().time
        if self._deadline is None:
            self._deadline = clock() + self._budget
        delay = self._first
        attempt = 1
        while True:
            try:
                await start()
            except ConnectionError as exc:
                left = self._deadline - clock()
                # The loop may wake a sleeper a clock tick early: within that of the deadline, it has passed.
                if left < _TICK_S:
                    raise
                # The last pause ends at the deadline: one more attempt then, and its error is the answer.
                pause = min(delay, left)
                log.warning(
                    "engine_unavailable",
                    engine=engine,
                    attempt=attempt,
                    error=redact(str(exc)),
                    retry_in_s=round(pause, 3),
                    left_s=round(left, 3),
                )
                await asyncio.sleep(pause)
                delay = min(delay * 2, self._max)
                attempt += 1
            else:
                if attempt > 1:
                    log.info("engine_available", engine=engine, attempts=attempt)
                return
