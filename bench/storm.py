"""Restart storm: the gateway is killed (kill -9) and restarted; 1,000 agents re-handshake with passwords at once.

    .venv/bin/python bench/storm.py                  # 1,000 agents, re-handshakes spread over 1 s
    .venv/bin/python bench/storm.py --agents 200     # smaller

The gateway (SQLite in a temporary folder, not pinned: its password pool may use both cores) has --agents +
--healthy agents, each with its own password hashed at the default scrypt cost (`gateway hash-password`'s;
bench/results/password-hashes.json caches them). The agents open WebSocket sessions (handshake with
ext.authentication {user, password}, subscribe to /v2/me/outbound, held connects), --healthy of them post GWS
operations (StartPreviewSession, unique referenceId) at --healthy-rate per second each, latency = POST -> ack on
their socket. After --baseline seconds the gateway is killed and started again on the same store and port; the
moment it listens is t0. The healthy agents re-handshake at t0, the others at t0 + i / N * --spread. A restart
forgets every verified password (nothing is cached across restarts), so each handshake costs one scrypt.

Printed: the connected count per second after t0, the time until all were connected, handshakes (password
checks) per second, healthy p99 during the storm (t0 until all connected), the cost of one check measured
here and the bound N x cost / min(workers, cores); PASS/MISS for "all connected <= 10 s" and "healthy p99
<= 500 ms". Exit 0 either way (a benchmark); 2 when setup fails. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import HOST, busy_pct, core_times, fmt, pct, raise_nofile
from lightclient import Healthy, Session
from soaklib import (
    BAYEUX,
    OUTBOUND,
    Counters,
    Gateway,
    client_session,
    gateway_config,
    gather_limited,
    password,
    password_hashes,
    start_gateway,
)

from gateway.credentials import hash_password, verify_password
from gateway.settings import SecuritySettings

ALL_CONNECTED_S, STORM_P99_MS = 10.0, 500.0


def log(msg: str) -> None:
    print(f"[storm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def check_cost(workers: int, checks: int = 20) -> tuple[float, float]:
    """Seconds per password check here: one thread alone, and per check with `workers` threads at once."""
    stored = hash_password("x")
    start = time.perf_counter()
    for _ in range(checks):
        verify_password("x", stored)
    alone = (time.perf_counter() - start) / checks
    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        list(pool.map(lambda _: verify_password("x", stored), range(checks * workers)))
        parallel = (time.perf_counter() - start) / (checks * workers)
    return alone, parallel


async def wait_listening(port: int, deadline: float) -> float:
    """Poll every 5 ms until the port accepts a connection; that moment (perf_counter)."""
    loop = asyncio.get_running_loop()
    while time.perf_counter() < deadline:
        with socket.socket() as s:
            s.setblocking(False)
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(loop.sock_connect(s, (HOST, port)), 0.5)
                return time.perf_counter()
        await asyncio.sleep(0.005)
    raise RuntimeError(f"the restarted gateway did not listen on {port}")


@dataclass
class Result:
    """What one storm measured (seconds; t0 = the restarted gateway listens)."""

    setup_s: float = 0.0
    startup_s: float = 0.0
    baseline: list[float] = field(default_factory=list)  # healthy latencies before the kill
    storm: list[float] = field(default_factory=list)  # healthy latencies of operations sent from t0 to all_s
    done_at: list[float] = field(default_factory=list)  # per agent: connected again, after t0
    all_s: float | None = None
    healthy_back_s: list[float] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    window_s: float = 0.0
    gateway_cpu_s: float = 0.0  # since its start: startup included
    client_cpu_s: float = 0.0
    cores: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


class Storm:
    """The agents, the healthy ones' measurements, and the storm's timeline."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.counters = Counters()
        self.ops: list[tuple[float, float]] = []  # (sent at, latency)
        self.stop = asyncio.Event()
        self.r = Result()

    async def healthy_loop(self, agent: Healthy, ready: asyncio.Event) -> None:
        """Open loop at --healthy-rate while `ready` is set (its session is up)."""
        period = 1 / self.args.healthy_rate
        next_at = time.perf_counter() + random.uniform(0, period)
        tasks: set[asyncio.Task[None]] = set()

        async def one() -> None:
            started = time.perf_counter()
            latency = await agent.operation(timeout=60)
            if latency is not None:
                self.ops.append((started, latency))

        while not self.stop.is_set():
            await ready.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(0.0, next_at - time.perf_counter()))
            next_at = max(next_at + period, time.perf_counter() - period)  # no burst to catch up after the kill
            if ready.is_set() and not self.stop.is_set():
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def rejoin(self, old: Session, t_due: float, t0: float, timeout: float) -> Session:
        """At `t_due`, a new session of `old`'s agent (the old one died with the gateway), up to 3 tries."""
        await asyncio.sleep(max(0.0, t_due - time.perf_counter()))
        for attempt in range(3):
            session = Session(
                old.http, old.url[: -len(BAYEUX)], "websocket", old.user, old.secret, self.counters, old.on_message
            )
            try:
                await session.open([OUTBOUND], timeout=timeout)
                self.r.done_at.append(time.perf_counter() - t0)
                self.r.failures.pop(old.user, None)
                return session
            except (OSError, RuntimeError, TimeoutError) as exc:
                self.r.failures[old.user] = f"attempt {attempt + 1}: {type(exc).__name__}: {exc}"
                await session.close(disconnect=False)
                await asyncio.sleep(0.2)
        return old

    async def run(self, workdir: Path) -> Result:
        a, r = self.args, self.r
        n, h = a.agents, a.healthy
        config = gateway_config(0, workdir / "storm.db", n + h)
        gw = start_gateway(workdir, config, log_name="gateway-1.stderr")
        restarted: Gateway | None = None
        starting: asyncio.Task[Gateway] | None = None
        try:
            async with client_session() as http:
                healthy = [Healthy(http, gw.base, n + k, self.counters) for k in range(h)]
                agents = [
                    Session(http, gw.base, "websocket", f"agent{i}", password(i), self.counters) for i in range(n)
                ]
                started = time.perf_counter()
                failed = await gather_limited(h, h, lambda k: healthy[k].session.open([OUTBOUND]))
                failed += await gather_limited(n, 50, lambda i: agents[i].open([OUTBOUND]))
                if failed:
                    raise RuntimeError(f"{len(failed)} agents could not connect, e.g. {failed[:3]}")
                r.setup_s = time.perf_counter() - started
                log(f"{n} agents + {h} healthy connected in {r.setup_s:.1f} s; baseline {a.baseline:g} s")
                ready = [asyncio.Event() for _ in healthy]
                for event in ready:
                    event.set()
                loops = [asyncio.create_task(self.healthy_loop(x, e)) for x, e in zip(healthy, ready, strict=True)]
                await asyncio.sleep(a.baseline)
                r.baseline = [lat for _, lat in self.ops]
                for event in ready:
                    event.clear()
                for s in [*agents, *(x.session for x in healthy)]:
                    s.live = False  # their sockets close with the gateway: expected, not an error
                gw.kill()
                log("gateway killed (SIGKILL); starting it again on the same store and port")
                t_start = time.perf_counter()
                starting = asyncio.create_task(asyncio.to_thread(start_gateway, workdir, config, gw.port, "gw-2.log"))
                t0 = await wait_listening(gw.port, t_start + 60)
                r.startup_s = t0 - t_start
                cores0, client0 = core_times(), sum(os.times()[:2])

                async def healthy_back(k: int) -> None:
                    healthy[k].session = await self.rejoin(healthy[k].session, t0, t0, a.timeout)
                    r.healthy_back_s.append(r.done_at.pop())  # counted apart from the N agents
                    ready[k].set()

                # the healthy agents first (they are connected before the storm's checks queue up), then the N
                storm = [asyncio.create_task(healthy_back(k)) for k in range(h)]

                async def agent_back(i: int) -> None:
                    agents[i] = await self.rejoin(agents[i], t0 + i / n * a.spread, t0, a.timeout)

                storm += [asyncio.create_task(agent_back(i)) for i in range(n)]
                await asyncio.wait(storm, timeout=a.timeout)
                t_end = time.perf_counter()
                restarted = await starting
                r.window_s, r.gateway_cpu_s = t_end - t0, restarted.cpu_s()
                r.client_cpu_s, r.cores = sum(os.times()[:2]) - client0, busy_pct(cores0, core_times())
                self.stop.set()
                await asyncio.gather(*loops, return_exceptions=True)
                r.done_at.sort()
                r.all_s = r.done_at[-1] if len(r.done_at) == n else None
                end = t0 + (r.all_s if r.all_s is not None else r.window_s)
                r.storm = [lat for t, lat in self.ops if t0 <= t <= end]
                await asyncio.gather(*(s.close() for s in agents), return_exceptions=True)
                await asyncio.gather(*(x.session.close() for x in healthy), return_exceptions=True)
        finally:
            if restarted is None and starting is not None:
                with contextlib.suppress(Exception):
                    restarted = await starting
            lines = restarted.stop() if restarted is not None else []
            if gw.proc.poll() is None:
                gw.stop()
        r.log = [x for x in lines if "desktop_unavailable" not in x]
        return r


def report(
    r: Result, args: argparse.Namespace, counters: Counters, cost: tuple[float, float], load: list[float]
) -> None:
    n, done = args.agents, r.done_at
    storm_ms, base_ms = [x * 1000 for x in r.storm], [x * 1000 for x in r.baseline]
    workers, cores = SecuritySettings().password_workers, os.cpu_count() or 1
    bound = n * cost[0] / min(workers, cores)
    curve = [sum(1 for t in done if t <= s) for s in range(1, int(max(done, default=0)) + 2)]
    span = done[-1] - done[0] if len(done) > 1 else 0.0
    p99 = pct(storm_ms, 99)
    all_ok = r.all_s is not None and r.all_s <= ALL_CONNECTED_S
    lines = [
        "",
        f"storm: {n} agents (+{args.healthy} healthy at {args.healthy_rate:g} ops/s each), WebSocket, re-handshakes "
        f"spread over {args.spread:g} s; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"setup (first connect, 50 at a time): {r.setup_s:.1f} s; restart until listening {r.startup_s:.2f} s",
        "connected after t0 (listening), per second: " + ", ".join(f"{s + 1}s {c}" for s, c in enumerate(curve)),
        f"all {n} connected after {fmt(r.all_s, '.2f')} s (p50 {fmt(pct(done, 50), '.2f')} s; connected {len(done)}, "
        f"failed {len(r.failures)}); healthy agents back after "
        + ", ".join(f"{x:.2f}" for x in r.healthy_back_s)
        + " s",
        f"handshakes (password checks) per second: {fmt(len(done) / span if span else None, '.1f')} (first at "
        f"{fmt(done[0] if done else None, '.2f')} s, last at {fmt(done[-1] if done else None, '.2f')} s)",
        f"healthy ops: baseline p50 {fmt(pct(base_ms, 50))} p99 {fmt(pct(base_ms, 99))} ms ({len(base_ms)}); during "
        f"the storm p50 {fmt(pct(storm_ms, 50))} p99 {fmt(p99)} max {fmt(pct(storm_ms, 100))} ms ({len(storm_ms)} ops)",
        f"one password check here: {cost[0] * 1000:.1f} ms alone, {cost[1] * 1000:.1f} ms each with {workers} "
        f"threads; bound {n} x {cost[0] * 1000:.1f} ms / min({workers} workers, {cores} cores) = {bound:.1f} s",
        f"CPU from t0 to the end ({r.window_s:.1f} s): gateway {r.gateway_cpu_s:.1f} s (its startup included), this "
        f"client {r.client_cpu_s:.1f} s, cores busy " + " / ".join(f"{c:.0f} %" for c in r.cores),
        f"client-side errors: {', '.join(f'{k} {v}' for k, v in counters.errors.items()) or 'none'}",
        *(f"  e.g. {e}" for e in counters.examples.values()),
        *(f"  failed: {e}" for e in list(r.failures.values())[:3]),
        f"gateway log after the restart: {len(r.log)} lines" + "".join(f"\n  {x[:200]}" for x in r.log[:5]),
        f"{'PASS' if all_ok else 'MISS'}  all {n} connected <= {ALL_CONNECTED_S:g} s after the restart: "
        f"{fmt(r.all_s, '.2f')} s",
        f"{'PASS' if p99 is not None and p99 <= STORM_P99_MS else 'MISS'}  healthy p99 <= {STORM_P99_MS:g} ms "
        f"during the storm: {fmt(p99)} ms",
    ]
    print("\n".join(lines), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000, help="agents re-handshaking after the restart (1000)")
    parser.add_argument("--healthy", type=int, default=5, help="healthy agents measured (5)")
    parser.add_argument("--healthy-rate", type=float, default=5.0, help="operations/s of each healthy agent (5)")
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which the agents re-handshake (1)")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds measured before the kill (5)")
    parser.add_argument("--timeout", type=float, default=120.0, help="longest wait for all to reconnect (120)")
    args = parser.parse_args()
    raise_nofile()
    load = list(os.getloadavg())
    log(f"load average {load[0]:.2f}; hashing or loading {args.agents + args.healthy} password hashes")
    password_hashes(args.agents + args.healthy)
    cost = check_cost(SecuritySettings().password_workers)
    storm = Storm(args)
    workdir = Path(tempfile.mkdtemp(prefix="storm-"))
    try:
        out = asyncio.run(storm.run(workdir))
    except RuntimeError as exc:
        log(f"setup failed: {exc}")
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(out, args, storm.counters, cost, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
