"""Soak: one gateway under a mixed load for a bounded time, printing its memory, healthy latency and refusals.

    .venv/bin/python bench/soak.py                    # 2,000 sessions for 10 minutes (after setup)
    .venv/bin/python bench/soak.py --duration 120     # 2 minutes

One gateway process (SQLite in a temporary folder, logging at warning, not pinned) with `--sessions` + 4 agents,
each with its own password hashed at the default scrypt cost (bench/results/password-hashes.json caches them).
Load from raw aiohttp Bayeux clients (bench/lightclient.py; every session handshakes with its password): steady,
churn and slow in a process of their own (bench/soakload.py), the rest in this one, which does the timing:

  steady    long-lived sessions, half WebSocket, half long-polling, subscribed to /bench/all (a tick
            published --tick-rate times per second goes to all of them)
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

The referenceId registry keeps every healthy operation for correlation.ttl_s (3600 s; at most max_entries,
20,000): at 20 op/s it is full after 1,000 s, longer than the default run, so its ~1.4 KiB per entry (measured
by bench/rss_probe.py) grows the RSS by ~15 MiB after the warm-up without any leak. --registry-ttl 30 keeps it
at its steady size (~600 entries) before the baseline is taken; the summary says which was used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import queue
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import BENCH, fmt, pct, raise_nofile
from hostile import HOSTILE_PASSWORD, HOSTILE_USER, Flood, Hostile
from lightclient import Healthy
from soaklib import (
    OUTBOUND,
    Counters,
    Gateway,
    client_session,
    gateway_config,
    gather_limited,
    metrics,
    password_hashes,
    start_gateway,
)
from soakload import Plan, run_load

RSS_BAND, P99_MS = 0.10, 100.0


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Soak:
    """The measuring side: healthy agents, hostile inputs, the flood, and the interval samples."""

    def __init__(self, gw: Gateway, args: argparse.Namespace, plan: Plan) -> None:
        self.gw, self.args, self.plan = gw, args, plan
        self.counters = Counters()
        self.stop = asyncio.Event()
        self.healthy: list[Healthy] = []
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.load: dict[str, Any] = {"live": 0, "churn": 0, "http_5xx": 0, "errors": {}, "examples": {}}
        self.samples: list[dict[str, Any]] = []
        self.hostile = Hostile(gw.base, gw.port, self.counters, args.hostile_rate)
        self.flood = Flood(gw.base, self.counters, args.flood_connections, args.flood_rate, args.flood_rotate)
        self.setup_s = 0.0

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

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

    async def load_status(self, status: Any, timeout: float = 0.0) -> dict[str, Any]:
        """The load process's latest report (waiting up to `timeout` for one)."""
        with contextlib.suppress(queue.Empty):
            self.load = await asyncio.to_thread(status.get, True, timeout) if timeout else self.load
            while True:
                self.load = status.get_nowait()
        return self.load

    async def sample(self, elapsed: float, status: Any) -> dict[str, Any]:
        lat, self.latencies = self.latencies, []
        lags, self.lags = self.lags, []
        flood = self.flood.take()
        m = await asyncio.to_thread(metrics, self.gw.base)
        load = await self.load_status(status)
        server_5xx = sum(v for k, v in m.items() if 'outcome="server_error"' in k)
        s = {
            "t": round(elapsed),
            "rss_mb": self.gw.vm_rss_mb(),
            "healthy_n": len(lat),
            "p50_ms": (pct(lat, 50) or 0) * 1000 if lat else None,
            "p99_ms": (pct(lat, 99) or 0) * 1000 if lat else None,
            "max_ms": max(lat) * 1000 if lat else None,
            "sessions": int(m.get("gateway_sessions", -1)),
            "live_here": load["live"] + sum(h.session.live for h in self.healthy),
            "cut": int(m.get("gateway_websocket_cut_total", 0)),
            "refused": self.hostile.refused,
            "flood": self.flood.attempts,
            "flood_p99_ms": (pct(flood, 99) or 0) * 1000 if flood else None,
            "http_5xx": self.counters.http_5xx + load["http_5xx"] + int(server_5xx),
            "churn": load["churn"],
            "registry": int(m.get("gateway_correlation_entries", -1)),
            "lag_p99_ms": (pct(lags, 99) or 0) * 1000 if lags else None,
        }
        self.samples.append(s)
        return s

    async def run(self, status: Any, stop: Any) -> None:
        a = self.args
        async with client_session() as http:
            start = time.perf_counter()
            self.healthy = [Healthy(http, self.gw.base, i, self.counters) for i in range(a.healthy)]
            failed = await gather_limited(a.healthy, 20, lambda i: self.healthy[i].session.open([OUTBOUND]))
            if failed:
                raise RuntimeError(f"{len(failed)} healthy agents failed to connect, e.g. {failed[:3]}")
            ready = await self.load_status(status, timeout=600)
            if "ready" not in ready:
                raise RuntimeError(f"the load process did not start: {ready.get('failed')}")
            self.setup_s = time.perf_counter() - start
            log(
                f"{a.healthy} healthy agents and {self.plan.steady} steady sessions up in {self.setup_s:.1f} s; RSS "
                f"{self.gw.vm_rss_mb():.0f} MiB; load starts ({a.duration:g} s, warm-up {a.warmup:g} s)"
            )
            jobs = [self.healthy_loop(h) for h in self.healthy]
            jobs += [self.hostile.run(self.stop), self.flood.run(self.stop), self.lag_probe()]
            tasks = [asyncio.create_task(j) for j in jobs]
            start = time.perf_counter()
            print(HEADER, flush=True)
            while (elapsed := time.perf_counter() - start) < a.duration - 0.5:
                await asyncio.sleep(min(a.interval, a.duration - elapsed))
                print(row(await self.sample(time.perf_counter() - start, status)), flush=True)
            self.stop.set()
            stop.set()
            done, pending = await asyncio.wait(tasks, timeout=30)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    self.counters.error(f"client task failed: {task.exception()!r}")
            for task in pending:
                task.cancel()
            await asyncio.gather(*(h.session.close() for h in self.healthy), return_exceptions=True)
            deadline = time.perf_counter() + 60
            while "finished" not in self.load and time.perf_counter() < deadline:
                await self.load_status(status, timeout=5)


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
    kinds = soak.counters.errors | {f"load: {k}": v for k, v in soak.load["errors"].items()}
    examples = [*soak.counters.examples.values(), *soak.load["examples"].values()]
    errors = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "none"
    h, f = soak.hostile, soak.flood
    lines = [
        "",
        f"soak: {args.sessions} sessions ({soak.plan.steady} steady half WebSocket / half long-polling, {args.healthy} "
        f"healthy, {soak.plan.churn} churn slots, {args.slow} slow consumers), {args.duration:g} s after a "
        f"{soak.setup_s:.0f} s setup; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"RSS after warm-up ({args.warmup:g} s): first {base:.1f} MiB, min {lo:.1f}, max {hi:.1f} "
        f"({100 * (hi / base - 1) if base else 0:+.1f} % / {100 * (lo / base - 1) if base else 0:+.1f} %); "
        f"registry entries {after[0]['registry'] if after else '-'} at the baseline, {last['registry']} at the end "
        f"({registry_setting(args)})",
        f"healthy: {sum(s['healthy_n'] for s in samples)} operations, worst interval p99 {fmt(worst)} ms, "
        f"client loop lag p99 worst {fmt(max((s['lag_p99_ms'] or 0 for s in samples), default=None))} ms",
        f"churn cycles {soak.load['churn']}; slow consumers opened {soak.load.get('slow_opened')}, WebSockets cut "
        f"(gateway_websocket_cut_total) {last['cut']}; ticks {soak.load.get('ticks')}, deliveries counted "
        f"{soak.load.get('delivered')}; load process finished cleanly: {'finished' in soak.load}",
        f"hostile inputs sent {h.sent}, refused {h.refused}, unexpected {h.unexpected}; by kind "
        + json.dumps(h.by_kind),
        f"password flood: {f.attempts} attempts from {f.addresses} addresses, refused {f.refused}, accepted "
        f"{f.accepted}",
        f"5xx: {last['http_5xx']} (client-seen + gateway_operations_total server_error); gateway log: "
        f"{len(log_text.splitlines())} lines, {tracebacks} with 'Traceback'",
        f"client-side errors: {errors}",
        *(f"  e.g. {e}" for e in examples),
        f"{'PASS' if rss_ok else 'MISS'}  RSS flat after warm-up (within +-{RSS_BAND:.0%} of {base:.1f} MiB): "
        f"{lo:.1f} .. {hi:.1f} MiB",
        f"{'PASS' if p99_ok else 'MISS'}  healthy p99 <= {P99_MS:g} ms in every interval: worst {fmt(worst)} ms",
        f"{'PASS' if not last['http_5xx'] else 'MISS'}  no 5xx: {last['http_5xx']}",
        f"{'PASS' if not tracebacks else 'MISS'}  no traceback in the gateway log: {tracebacks}",
    ]
    return lines


def registry_setting(args: argparse.Namespace) -> str:
    """How the run's referenceId registry was configured (its growth is in the RSS until it is full)."""
    if args.registry_ttl is None:
        return "correlation.ttl_s: the gateway's default"
    return f"correlation.ttl_s: {args.registry_ttl:g} s (--registry-ttl)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load after setup (600)")
    parser.add_argument("--sessions", type=int, default=2000, help="Bayeux sessions in total (2000)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="s before the RSS baseline (60; half the run at most)"
    )
    parser.add_argument("--interval", type=float, default=10.0, help="seconds per printed line (10)")
    parser.add_argument("--healthy", type=int, default=20, help="healthy agents measured (20)")
    parser.add_argument("--healthy-rate", type=float, default=1.0, help="operations/s of each healthy agent (1)")
    parser.add_argument("--slow", type=int, default=10, help="slow-consumer slots (10)")
    parser.add_argument("--drain-timeout", type=float, default=10.0, help="bayeux.ws_drain_timeout_s (10)")
    parser.add_argument("--tick-rate", type=float, default=0.2, help="publishes/s to all steady sessions (0.2)")
    parser.add_argument("--hostile-rate", type=float, default=10.0, help="hostile inputs/s (10)")
    parser.add_argument("--flood-connections", type=int, default=4, help="password-flood addresses at once (4)")
    parser.add_argument("--flood-rate", type=float, default=50.0, help="wrong passwords/s in total (50)")
    parser.add_argument("--flood-rotate", type=float, default=30.0, help="s before a flood moves address (30)")
    parser.add_argument("--password-nice", type=int, default=None, help="security.password_nice (default's)")
    parser.add_argument(
        "--registry-ttl",
        type=float,
        default=None,
        help="correlation.ttl_s (the gateway's default, 3600): the registry keeps every referenceId that long, "
        "so at --healthy x --healthy-rate op/s it fills for ttl x rate entries (max_entries at most) and its RSS "
        "grows until then; a ttl shorter than --warmup lets the baseline see it full",
    )
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the gateway's log here")
    args = parser.parse_args()
    args.warmup = args.warmup if args.warmup is not None else min(60.0, args.duration / 2)
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
    if args.registry_ttl is not None:
        config += f"correlation: {{ttl_s: {args.registry_ttl:g}}}\n"
    log(registry_setting(args))
    try:
        gw = start_gateway(workdir, config)
        log(f"gateway pid {gw.pid} on {gw.base}")
        churn = args.sessions // 10
        steady = args.sessions - args.healthy - args.slow - churn
        plan = Plan(gw.base, args.healthy, steady, churn, args.slow, args.drain_timeout, args.tick_rate)
        context = multiprocessing.get_context("fork")
        status, stop = context.Queue(), context.Event()
        loader = context.Process(target=run_load, args=(plan, status, stop), daemon=True)
        loader.start()
        soak = Soak(gw, args, plan)
        try:
            asyncio.run(soak.run(status, stop))
        except RuntimeError as exc:
            log(f"setup failed: {exc}")
            return 2
        finally:
            stop.set()
            loader.join(30)
            if loader.is_alive():
                loader.kill()
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
