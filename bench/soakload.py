"""The soak's background load, in a process of its own: steady sessions, churn, slow consumers, publishers.

A separate process so that its event loop (thousands of sessions) never delays the healthy agents' timing in
bench/soak.py's process. It reports its counts every second on a queue, and stops when the stop event is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing.synchronize
import queue
import random
import socket
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from lightclient import Session
from soaklib import Counters, client_session, gather_limited, password

ALL, SLOW = "/bench/all", "/bench/slow"


@dataclass
class Plan:
    """Who the load process runs: agent numbers from `first` on, and the rates (picklable)."""

    base: str
    first: int
    steady: int
    churn: int
    slow: int
    drain_timeout: float
    tick_rate: float


def small_rcvbuf(addr_info: Any) -> socket.socket:
    """A client socket with a 4 KiB receive buffer: a reader that stops fills it at once."""
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


class Load:
    """Every background client and its counts."""

    def __init__(self, plan: Plan, status: queue.Queue[dict[str, Any]], stop: multiprocessing.synchronize.Event):
        self.plan, self.status, self.mp_stop = plan, status, stop
        self.counters = Counters()
        self.stop = asyncio.Event()
        self.steady: list[Session] = []
        self.churn_cycles = self.slow_opened = self.live_churn = self.live_slow = self.ticks = self.delivered = 0

    def _count(self, m: dict[str, Any], now: float) -> None:
        self.delivered += 1

    def user(self, k: int) -> tuple[str, str]:
        """The k-th agent of this process (steady ones first, then churn slots, slow slots, publishers)."""
        return f"agent{self.plan.first + k}", password(self.plan.first + k)

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def churn(self, http: aiohttp.ClientSession, k: int) -> None:
        """One churn slot: connect, hold 5-20 s, leave (disconnect, or drop the connection: expiry), again."""
        await self.pause(random.uniform(0, 10))
        name, secret = self.user(self.plan.steady + k)
        while not self.stop.is_set():
            session = Session(http, self.plan.base, ("websocket", "long-polling")[k % 2], name, secret, self.counters)
            try:
                await session.open([ALL])
            except (OSError, RuntimeError, TimeoutError) as exc:
                self.counters.error(f"churn open: {type(exc).__name__} {exc}")
            self.live_churn += 1
            await self.pause(random.uniform(5, 20))
            self.live_churn -= 1
            await session.close(disconnect=random.random() < 0.5)
            self.churn_cycles += 1
            await self.pause(random.uniform(0, 2))

    async def slow(self, http: aiohttp.ClientSession, k: int) -> None:
        """One slow-consumer slot: a WebSocket session on /bench/slow that stops reading after its subscribe."""
        await self.pause(random.uniform(0, 5))
        name, secret = self.user(self.plan.steady + self.plan.churn + k)
        while not self.stop.is_set():
            session = Session(http, self.plan.base, "websocket", name, secret, self.counters)
            try:
                await session.open([SLOW])
            except (OSError, RuntimeError, TimeoutError) as exc:
                self.counters.error(f"slow open: {type(exc).__name__} {exc}")
            session.live = False
            if session.task is not None:
                session.task.cancel()  # nobody reads: aiohttp stops reading the socket, its buffers fill
            self.slow_opened += 1
            self.live_slow += 1
            # Its writer goes on (a connect every 5 s, as a client whose message handler is stuck): the
            # session stays alive, so the gateway keeps pushing to a socket nobody reads.
            until = time.perf_counter() + self.plan.drain_timeout + 20
            while time.perf_counter() < until and not self.stop.is_set():
                with contextlib.suppress(Exception):
                    assert session.ws is not None
                    await asyncio.wait_for(session.ws.send_bytes(orjson.dumps([session.connect()])), 1)
                await self.pause(5)
            self.live_slow -= 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(disconnect=False), 2)

    async def publisher(self, http: aiohttp.ClientSession, k: int, channel: str, rate: float, size: int) -> None:
        """Publishes `size` bytes on `channel` at `rate` per second (client_publish allows /bench/**)."""
        name, secret = self.user(self.plan.steady + self.plan.churn + self.plan.slow + k)
        session = Session(http, self.plan.base, "websocket", name, secret, self.counters)
        await session.open([])
        pad = "x" * size
        next_at = time.perf_counter()
        while not self.stop.is_set():
            self.ticks += channel == ALL
            await session.publish(channel, {"t": time.time(), "p": pad})
            next_at += 1 / rate
            await self.pause(max(0.0, next_at - time.perf_counter()))
        await session.close()

    def report(self, **extra: Any) -> None:
        c = self.counters
        live = sum(s.live for s in self.steady) + self.live_churn + self.live_slow
        self.status.put(
            {"live": live, "churn": self.churn_cycles, "slow_opened": self.slow_opened, "ticks": self.ticks}
            | {"delivered": self.delivered, "http_5xx": c.http_5xx, "errors": c.errors, "examples": c.examples}
            | extra
        )

    async def run(self) -> None:
        p = self.plan
        async with client_session() as http, client_session(socket_factory=small_rcvbuf) as slow_http:
            kinds = ("websocket", "long-polling")
            users = [self.user(k) for k in range(p.steady)]
            self.steady = [
                Session(http, p.base, kinds[k % 2], *u, self.counters, self._count) for k, u in enumerate(users)
            ]
            start = time.perf_counter()
            failed = await gather_limited(p.steady, 50, lambda k: self.steady[k].open([ALL]))
            if failed:
                self.report(failed=f"{len(failed)} steady sessions failed to open, e.g. {failed[:3]}")
                return
            self.report(ready=time.perf_counter() - start)
            jobs = [self.churn(http, k) for k in range(p.churn)] + [self.slow(slow_http, k) for k in range(p.slow)]
            jobs += [self.publisher(http, 0, ALL, p.tick_rate, 64), self.publisher(http, 1, SLOW, 20, 16384)]
            tasks = [asyncio.create_task(j) for j in jobs]
            while not self.mp_stop.is_set():
                await asyncio.sleep(1)
                self.report()
            self.stop.set()
            done, pending = await asyncio.wait(tasks, timeout=30)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    self.counters.error(f"load task failed: {task.exception()!r}")
            for task in pending:
                task.cancel()
            await asyncio.gather(*(s.close() for s in self.steady), return_exceptions=True)
            self.report(finished=True)


def run_load(plan: Plan, status: queue.Queue[dict[str, Any]], stop: multiprocessing.synchronize.Event) -> None:
    """The load process's entry point."""
    asyncio.run(Load(plan, status, stop).run())
