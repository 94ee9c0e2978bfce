"""Soak: one gateway under a mixed load for a bounded time, printing its memory, healthy latency and refusals.

    .venv/bin/python bench/soak.py                    # 2,000 sessions for 10 minutes (after setup)
    .venv/bin/python bench/soak.py --duration 120     # 2 minutes

One gateway process (SQLite in a temporary folder, logging at warning, not pinned) with `--sessions` + 4 agents,
each with its own password hashed at the default scrypt cost (bench/results/password-hashes.json caches them).
Load, all from this process (raw aiohttp Bayeux clients; the sessions handshake with their passwords):

  steady    long-lived sessions, half WebSocket, half long-polling, subscribed to /bench/all (a tick at
            --tick-rate per second is delivered to all of them)
  healthy   --healthy WebSocket agents, each posting a GWS StartPreviewSession (unique referenceId) at
            --healthy-rate per second; latency = POST -> its ack on the agent's /v2/me/outbound
  churn     10 % of the sessions connect, hold 5-20 s, then disconnect (or drop the connection: expiry), again
  slow      --slow WebSocket sessions on /bench/slow (16 KiB at 20/s) that stop reading: the gateway must cut
            them after bayeux.ws_drain_timeout_s (--drain-timeout); each is replaced after its life
  hostile   inputs the gateway refuses (bench/hostile.py) at --hostile-rate per second
  flood     wrong passwords from --flood-connections loopback addresses at --flood-rate per second

Every --interval seconds one line: elapsed, VmRSS, healthy p50/p99 of the interval, sessions (gateway's
/metrics and live on this side), WebSockets cut (gateway_websocket_cut_total), inputs refused, flood attempts
and answer p99, 5xx. Then the summary with PASS/MISS: RSS within +-10 % of the first sample after --warmup,
healthy p99 <= 100 ms in every interval, no 5xx, no Traceback in the gateway's log. Exit 0 either way
(a benchmark, not a test); 2 when setup fails. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from benchlib import BENCH, fmt, pct, raise_nofile
from hostile import HOSTILE_PASSWORD, HOSTILE_USER, Flood, Hostile
from lightclient import Healthy, Session
from soaklib import (
    OUTBOUND,
    Counters,
    Gateway,
    client_session,
    gateway_config,
    gather_limited,
    metrics,
    password,
    password_hashes,
    start_gateway,
)

ALL, SLOW = "/bench/all", "/bench/slow"
RSS_BAND, P99_MS = 0.10, 100.0


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def small_rcvbuf(addr_info: Any) -> socket.socket:
    """A client socket with a 4 KiB receive buffer: a reader that stops fills it at once."""
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


class Soak:
    """The load generator: every client of the run and the interval samples."""

    def __init__(self, gw: Gateway, args: argparse.Namespace) -> None:
        self.gw, self.args = gw, args
        self.counters = Counters()
        self.stop = asyncio.Event()
        self.healthy: list[Healthy] = []
        self.steady: list[Session] = []
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.churn_cycles = 0
        self.slow_opened = 0
        self.live_churn = 0
        self.live_slow = 0
        self.ticks = 0
        self.delivered = 0
        self.samples: list[dict[str, Any]] = []
        self.hostile = Hostile(gw.base, gw.port, self.counters, args.hostile_rate)
        self.flood = Flood(gw.base, self.counters, args.flood_connections, args.flood_rate, args.flood_rotate)
        self.churn_slots = args.sessions // 10
        self.n_steady = args.sessions - args.healthy - args.slow - self.churn_slots
        self.tasks: list[asyncio.Task[Any]] = []

    def _count(self, m: dict[str, Any], now: float) -> None:
        self.delivered += 1

    async def setup(self, http: Any) -> float:
        """Healthy agents and steady sessions, 50 handshakes at a time (each one scrypt check on the gateway)."""
        start = time.perf_counter()
        self.healthy = [Healthy(http, self.gw.base, i, self.counters) for i in range(self.args.healthy)]
        users = [(f"agent{i}", password(i)) for i in range(self.args.healthy, self.args.healthy + self.n_steady)]
        kinds = ("websocket", "long-polling")
        self.steady = [
            Session(http, self.gw.base, kinds[i % 2], *u, self.counters, self._count) for i, u in enumerate(users)
        ]
        failed = await gather_limited(len(self.healthy), 20, lambda i: self.healthy[i].session.open([OUTBOUND]))
        failed += await gather_limited(self.n_steady, 50, lambda i: self.steady[i].open([ALL]))
        if failed:
            raise RuntimeError(f"{len(failed)} sessions failed to open, e.g. {failed[:3]}")
        return time.perf_counter() - start

    def user(self, k: int) -> tuple[str, str]:
        i = self.args.healthy + self.n_steady + k  # churn and slow slots, then the publishers
        return f"agent{i}", password(i)

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def churn(self, http: Any, k: int) -> None:
        """One churn slot: connect, hold, leave (disconnect or drop), over and over."""
        await self.pause(random.uniform(0, 10))
        name, secret = self.user(k)
        while not self.stop.is_set():
            session = Session(http, self.gw.base, ("websocket", "long-polling")[k % 2], name, secret, self.counters)
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

    async def slow(self, http: Any, k: int) -> None:
        """One slow-consumer slot: a WebSocket session on /bench/slow that stops reading after its subscribe."""
        await self.pause(random.uniform(0, 5))
        name, secret = self.user(self.churn_slots + k)
        while not self.stop.is_set():
            session = Session(http, self.gw.base, "websocket", name, secret, self.counters)
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
            until = time.perf_counter() + self.args.drain_timeout + 20
            while time.perf_counter() < until and not self.stop.is_set():
                with contextlib.suppress(Exception):
                    assert session.ws is not None
                    await asyncio.wait_for(session.ws.send_bytes(orjson.dumps([session.connect()])), 1)
                await self.pause(5)
            self.live_slow -= 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(disconnect=False), 2)

    async def publisher(self, http: Any, k: int, channel: str, rate: float, size: int) -> None:
        name, secret = self.user(self.churn_slots + self.args.slow + k)
        session = Session(http, self.gw.base, "websocket", name, secret, self.counters)
        await session.open([])
        pad = "x" * size
        next_at = time.perf_counter()
        while not self.stop.is_set():
            self.ticks += channel == ALL
            await session.publish(channel, {"t": time.time(), "p": pad})
            next_at += 1 / rate
            await self.pause(max(0.0, next_at - time.perf_counter()))
        await session.close()

    async def measure(self, agent: Healthy) -> None:
        latency = await agent.operation()
        if latency is not None:
            self.latencies.append(latency)

    async def healthy_loop(self, agent: Healthy) -> None:
        """Open loop: an operation every 1/rate s, whether the last one was answered or not."""
        period = 1 / self.args.healthy_rate
        next_at = time.perf_counter() + random.uniform(0, period)
        pending: set[asyncio.Task[None]] = set()
        while not self.stop.is_set():
            await self.pause(max(0.0, next_at - time.perf_counter()))
            next_at += period
            task = asyncio.create_task(self.measure(agent))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending, return_exceptions=True)

    async def lag_probe(self) -> None:
        """This process's own event-loop lag: it inflates every latency measured here."""
        while not self.stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.1)
            self.lags.append(time.perf_counter() - start - 0.1)

    async def sample(self, elapsed: float) -> dict[str, Any]:
        lat, self.latencies = self.latencies, []
        lags, self.lags = self.lags, []
        flood = self.flood.take()
        m = await asyncio.to_thread(metrics, self.gw.base)
        server_5xx = sum(v for k, v in m.items() if 'outcome="server_error"' in k)
        s = {
            "t": round(elapsed),
            "rss_mb": self.gw.vm_rss_mb(),
            "healthy_n": len(lat),
            "p50_ms": (pct(lat, 50) or 0) * 1000 if lat else None,
            "p99_ms": (pct(lat, 99) or 0) * 1000 if lat else None,
            "max_ms": max(lat) * 1000 if lat else None,
            "sessions": int(m.get("gateway_sessions", -1)),
            "live_here": sum(s.live for s in self.steady)
            + sum(h.session.live for h in self.healthy)
            + self.live_churn
            + self.live_slow,
            "cut": int(m.get("gateway_websocket_cut_total", 0)),
            "refused": self.hostile.refused,
            "flood": self.flood.attempts,
            "flood_p99_ms": (pct(flood, 99) or 0) * 1000 if flood else None,
            "http_5xx": self.counters.http_5xx + int(server_5xx),
            "churn": self.churn_cycles,
            "registry": int(m.get("gateway_correlation_entries", -1)),
            "lag_p99_ms": (pct(lags, 99) or 0) * 1000 if lags else None,
        }
        self.samples.append(s)
        return s

    async def run(self) -> None:
        a = self.args
        async with client_session() as http, client_session(socket_factory=small_rcvbuf) as slow_http:
            setup_s = await self.setup(http)
            log(
                f"{a.healthy} healthy agents and {self.n_steady} steady sessions up in {setup_s:.1f} s; RSS "
                f"{self.gw.vm_rss_mb():.0f} MiB; load starts ({a.duration:g} s, warm-up {a.warmup:g} s)"
            )
            self.setup_s = setup_s
            jobs = [self.churn(http, k) for k in range(self.churn_slots)]
            jobs += [self.slow(slow_http, k) for k in range(a.slow)]
            jobs += [self.publisher(http, 0, ALL, a.tick_rate, 64), self.publisher(http, 1, SLOW, 20, 16384)]
            jobs += [self.healthy_loop(h) for h in self.healthy]
            jobs += [self.hostile.run(self.stop), self.flood.run(self.stop), self.lag_probe()]
            self.tasks = [asyncio.create_task(j) for j in jobs]
            start = time.perf_counter()
            print(HEADER, flush=True)
            while (elapsed := time.perf_counter() - start) < a.duration - 0.5:
                await asyncio.sleep(min(a.interval, a.duration - elapsed))
                print(row(await self.sample(time.perf_counter() - start)), flush=True)
            self.stop.set()
            done = await asyncio.wait(self.tasks, timeout=30)
            for task in done[0]:
                if not task.cancelled() and task.exception() is not None:
                    self.counters.error(f"client task failed: {task.exception()!r}")
            for task in done[1]:
                task.cancel()
            await asyncio.gather(*(s.close() for s in self.steady), return_exceptions=True)
            await asyncio.gather(*(h.session.close() for h in self.healthy), return_exceptions=True)


HEADER = (
    f"{'t s':>5} {'RSS MiB':>7} {'ops':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'sessions':>8} "
    f"{'here':>5} {'cut':>4} {'refused':>7} {'flood':>6} {'fl p99':>6} {'5xx':>4} {'churn':>5} {'registry':>8} "
    f"{'lag p99':>7}"
)


def row(s: dict[str, Any]) -> str:
    return (
        f"{s['t']:>5} {s['rss_mb']:>7.1f} {s['healthy_n']:>5} {fmt(s['p50_ms']):>7} {fmt(s['p99_ms']):>7} "
        f"{fmt(s['max_ms']):>7} {s['sessions']:>8} {s['live_here']:>5} {s['cut']:>4} {s['refused']:>7} "
        f"{s['flood']:>6} {fmt(s['flood_p99_ms']):>6} {s['http_5xx']:>4} {s['churn']:>5} {s['registry']:>8} "
        f"{fmt(s['lag_p99_ms']):>7}"
    )


def summary(soak: Soak, log_text: str, args: argparse.Namespace, load: tuple[float, ...]) -> list[str]:
    samples = soak.samples
    after = [s for s in samples if s["t"] >= args.warmup] or samples[-1:]
    base = after[0]["rss_mb"] if after else 0.0
    lo, hi = min(s["rss_mb"] for s in after), max(s["rss_mb"] for s in after)
    rss_ok = bool(base) and lo >= base * (1 - RSS_BAND) and hi <= base * (1 + RSS_BAND)
    p99s = [s["p99_ms"] for s in samples]
    worst = max((p for p in p99s if p is not None), default=None)
    p99_ok = worst is not None and worst <= P99_MS and None not in p99s
    last = samples[-1]
    tracebacks = log_text.count("Traceback")
    errors = ", ".join(f"{k} {v}" for k, v in sorted(soak.counters.errors.items())) or "none"
    h, f = soak.hostile, soak.flood
    lines = [
        "",
        f"soak: {args.sessions} sessions ({soak.n_steady} steady half WebSocket / half long-polling, {args.healthy} "
        f"healthy, {soak.churn_slots} churn slots, {args.slow} slow consumers), {args.duration:g} s after a "
        f"{soak.setup_s:.0f} s setup; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"RSS after warm-up ({args.warmup:g} s): first {base:.1f} MiB, min {lo:.1f}, max {hi:.1f} "
        f"({100 * (hi / base - 1) if base else 0:+.1f} % / {100 * (lo / base - 1) if base else 0:+.1f} %); "
        f"registry entries at the end {last['registry']}",
        f"healthy: {sum(s['healthy_n'] for s in samples)} operations, worst interval p99 {fmt(worst)} ms, "
        f"client loop lag p99 worst {fmt(max((s['lag_p99_ms'] or 0 for s in samples), default=None))} ms",
        f"churn cycles {soak.churn_cycles}; slow consumers opened {soak.slow_opened}, WebSockets cut "
        f"(gateway_websocket_cut_total) {last['cut']}; ticks {soak.ticks}, deliveries counted {soak.delivered}",
        f"hostile inputs sent {h.sent}, refused {h.refused}, unexpected {h.unexpected}; by kind "
        + json.dumps(h.by_kind),
        f"password flood: {f.attempts} attempts from {f.addresses} addresses, refused {f.refused}, accepted "
        f"{f.accepted}",
        f"5xx: {last['http_5xx']} (client-seen + gateway_operations_total server_error); gateway log: "
        f"{len(log_text.splitlines())} lines, {tracebacks} with 'Traceback'",
        f"client-side errors: {errors}",
        *(f"  e.g. {e}" for e in soak.counters.examples.values()),
        f"{'PASS' if rss_ok else 'MISS'}  RSS flat after warm-up (within +-{RSS_BAND:.0%} of {base:.1f} MiB): "
        f"{lo:.1f} .. {hi:.1f} MiB",
        f"{'PASS' if p99_ok else 'MISS'}  healthy p99 <= {P99_MS:g} ms in every interval: worst {fmt(worst)} ms",
        f"{'PASS' if not last['http_5xx'] else 'MISS'}  no 5xx: {last['http_5xx']}",
        f"{'PASS' if not tracebacks else 'MISS'}  no traceback in the gateway log: {tracebacks}",
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load after setup (600)")
    parser.add_argument("--sessions", type=int, default=2000, help="Bayeux sessions in total (2000)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the RSS baseline (min(60, 1/4))")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds per printed line (10)")
    parser.add_argument("--healthy", type=int, default=20, help="healthy agents measured (20)")
    parser.add_argument("--healthy-rate", type=float, default=1.0, help="operations/s of each healthy agent (1)")
    parser.add_argument("--slow", type=int, default=10, help="slow-consumer slots (10)")
    parser.add_argument("--drain-timeout", type=float, default=10.0, help="bayeux.ws_drain_timeout_s (10)")
    parser.add_argument("--tick-rate", type=float, default=1.0, help="publishes/s to every steady session (1)")
    parser.add_argument("--hostile-rate", type=float, default=10.0, help="hostile inputs/s (10)")
    parser.add_argument("--flood-connections", type=int, default=4, help="password-flood addresses at once (4)")
    parser.add_argument("--flood-rate", type=float, default=50.0, help="wrong passwords/s in total (50)")
    parser.add_argument("--flood-rotate", type=float, default=30.0, help="s before a flood moves address (30)")
    parser.add_argument("--password-nice", type=int, default=None, help="security.password_nice (default's)")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the gateway's log here")
    args = parser.parse_args()
    args.warmup = args.warmup if args.warmup is not None else min(60.0, args.duration / 4)
    raise_nofile()
    load = __import__("os").getloadavg()
    log(f"load average {load[0]:.2f}; hashing or loading {args.sessions + 4} password hashes")
    password_hashes(args.sessions + 4)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    extra = f"  - {{name: {HOSTILE_USER}, role: agent, password: {HOSTILE_PASSWORD}}}\n"
    config = gateway_config(
        0,
        workdir / "soak.db",
        args.sessions + 4,
        extra,
        f", ws_drain_timeout_s: {args.drain_timeout}",
        args.password_nice,
    )
    try:
        gw = start_gateway(workdir, config)
        log(f"gateway pid {gw.pid} on {gw.base}")
        soak = Soak(gw, args)
        try:
            asyncio.run(soak.run())
        except RuntimeError as exc:
            log(f"setup failed: {exc}")
            return 2
        finally:
            gw.stop()
        text = gw.log_text()
        if args.keep_log:
            args.keep_log.write_text(text)
        lines = summary(soak, text, args, load)
        print("\n".join(lines), flush=True)
        out = BENCH / "results" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
        record = {"args": vars(args) | {"keep_log": None}, "samples": soak.samples, "summary": lines}
        out.write_text(json.dumps(record | {"log_head": text.splitlines()[:50]}, indent=1))
        print(f"results: {out}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
