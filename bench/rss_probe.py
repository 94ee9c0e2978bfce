"""RSS probe: one gateway as the soak starts it, under ONE kind of load, and what its memory does per operation.

    .venv/bin/python bench/rss_probe.py healthy --duration 300        # the soak's healthy agents alone
    .venv/bin/python bench/rss_probe.py noref --duration 300          # the same operations without referenceId
    .venv/bin/python bench/rss_probe.py churn|hostile|flood|tick|slow|idle --duration 300
    .venv/bin/python bench/rss_probe.py healthy --inspect --trim      # + heap, gc, SQLite, malloc_trim columns
    .venv/bin/python bench/rss_probe.py healthy --inspect --tracemalloc 8   # + top allocation sites that grew

Loads (bench/soak.py's, one at a time; the gateway is configured by soaklib.gateway_config as in the soak):
  healthy  --healthy WebSocket agents, each a StartPreviewSession with a unique referenceId per 1/--rate s
  noref    the same without referenceId: no registry entry (separates the registry from everything else)
  churn    --churn slots connecting, holding 5-20 s, leaving (soakload's churn)
  hostile  bench/hostile.py's refused inputs at --hostile-rate per second
  flood    wrong passwords at --flood-rate per second from 4 addresses (bench/hostile.py's Flood)
  tick     --steady sessions on /bench/all and a publisher at --tick-rate per second (soakload's publisher)
  slow     --slow slow consumers (soakload's) and their 16 KiB at 20/s publisher
  idle     nothing: the baseline
Several at once: `healthy+churn` (the growth is counted per operation of the first), or `soak`: every load
but noref and idle, as bench/soak.py runs them (add --steady 1770 for the soak's 2,000 sessions).

Every --interval seconds one line: VmRSS, the load's operations in the interval, the registry's entries, and
with --inspect (bench/rss_hook.py runs the gateway with an inspection thread) glibc's heap in use and free,
SQLite's own memory, pymalloc blocks and gc objects; --trim calls malloc_trim(0) after each sample and shows
the RSS it left. The summary: growth per operation after --warmup, of RSS and of each column.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import PYTHON, ROOT, free_port, raise_nofile
from hostile import HOSTILE_PASSWORD, HOSTILE_USER, Flood, Hostile
from lightclient import Healthy, Session
from soaklib import (
    APPLICATION_ID,
    CAMPAIGN,
    DEVICE_PATH,
    OUTBOUND,
    Counters,
    Gateway,
    Message,
    basic,
    client_session,
    gateway_config,
    gather_limited,
    metrics,
)
from soakload import ALL, SLOW, Load, Plan, small_rcvbuf

HOOK = Path(__file__).resolve().parent / "rss_hook.py"
KINDS = ["healthy", "noref", "churn", "hostile", "flood", "tick", "slow", "idle"]


class ProbeAgent(Healthy):
    """A healthy agent whose operation may leave out the referenceId (the ack is then the next one to arrive)."""

    def __init__(self, *args: Any, reference: bool) -> None:
        super().__init__(*args)
        self.reference = reference
        self.unmatched: list[asyncio.Future[float]] = []
        self.acks = 0

    def on_message(self, m: Message, now: float) -> None:
        self.acks += m.get("channel") == OUTBOUND
        if self.reference:
            super().on_message(m, now)
        elif m.get("channel") == OUTBOUND and self.unmatched:
            future = self.unmatched.pop(0)
            if not future.done():
                future.set_result(now)

    async def operation(self, timeout: float = 30.0) -> float | None:
        if self.reference:
            return await super().operation(timeout)
        body = {"operationName": "StartPreviewSession", "applicationId": APPLICATION_ID, "devicePath": DEVICE_PATH}
        headers = {"Authorization": basic(self.user, self.secret), "Cookie": f"JSESSIONID={self.jsession}"}
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.unmatched.append(future)
        start = time.perf_counter()
        async with self.http.post(
            f"{self.base}/api/v2/me/outbound-campaigns/{CAMPAIGN}", json=body, headers=headers
        ) as resp:
            await resp.read()
            self.counters.status(resp.status, "noref StartPreviewSession")
            if (cookie := resp.cookies.get("JSESSIONID")) is not None:
                self.jsession = cookie.value
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(future, timeout) - start
        return None


class Probe:
    """Drives one load against the gateway and samples it."""

    def __init__(self, gw: Gateway, args: argparse.Namespace, fifo: Path | None) -> None:
        self.gw, self.args, self.fifo = gw, args, fifo
        self.counters = Counters()
        self.stop = asyncio.Event()
        self.ops = 0
        self.count: dict[str, Callable[[], int]] = {}  # operations so far, by kind of load
        self.reports: list[dict[str, Any]] = []

    def ask(self, command: str) -> dict[str, Any]:
        """One command to the gateway's inspection thread (bench/rss_hook.py); its JSON answer."""
        assert self.fifo is not None
        answer = self.fifo.with_suffix(f".{command}.json")
        answer.unlink(missing_ok=True)
        with self.fifo.open("w") as f:
            f.write(f"{command} {answer}\n")
        deadline = time.monotonic() + 120
        while not answer.exists():
            if time.monotonic() > deadline:
                return {"error": "no answer"}
            time.sleep(0.05)
        result: dict[str, Any] = json.loads(answer.read_text())
        return result

    def counter(self) -> int:
        """Operations so far of the run's first kind of load (the one the growth is counted per)."""
        count = self.count.get(self.args.kinds[0])
        return count() if count is not None else 0

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def healthy(self, http: Any, reference: bool, ready: asyncio.Event) -> None:
        a = self.args
        agents = [ProbeAgent(http, self.gw.base, i, self.counters, reference=reference) for i in range(a.healthy)]
        failed = await gather_limited(a.healthy, 10, lambda i: agents[i].session.open([OUTBOUND]))
        if failed:
            raise RuntimeError(f"{len(failed)} agents failed to connect: {failed[:2]}")
        ready.set()

        async def loop(agent: ProbeAgent) -> None:
            period = 1 / a.rate
            next_at = time.perf_counter() + random.uniform(0, period)
            while not self.stop.is_set():
                await self.pause(max(0.0, next_at - time.perf_counter()))
                next_at += period
                if await agent.operation() is not None:
                    self.ops += 1

        await asyncio.gather(*(loop(agent) for agent in agents))
        await asyncio.gather(*(agent.session.close() for agent in agents), return_exceptions=True)

    def load(self) -> Load:
        """soakload's Load, for its churn, slow and publisher slots (agents numbered after the healthy ones)."""
        a = self.args
        plan = Plan(self.gw.base, a.healthy, a.steady, a.churn, a.slow, 10.0, a.tick_rate)
        load = Load(plan, queue.Queue(), None)  # type: ignore[arg-type]
        load.stop = self.stop
        return load

    async def background(self, http: Any, kind: str, ready: asyncio.Event) -> None:
        a = self.args
        load = self.load()
        if kind == "churn":
            self.count[kind] = lambda: load.churn_cycles
            ready.set()
            await asyncio.gather(*(load.churn(http, k) for k in range(a.churn)))
        elif kind == "tick":
            self.count[kind] = lambda: load.delivered
            load.steady = [load_session(load, http, k) for k in range(a.steady)]
            failed = await gather_limited(a.steady, 20, lambda k: load.steady[k].open([ALL]))
            if failed:
                raise RuntimeError(f"{len(failed)} steady sessions failed: {failed[:2]}")
            ready.set()
            await load.publisher(http, 0, ALL, a.tick_rate, 64)
            await asyncio.gather(*(s.close() for s in load.steady), return_exceptions=True)
        elif kind == "slow":
            self.count[kind] = lambda: load.slow_opened
            ready.set()
            async with client_session(socket_factory=small_rcvbuf) as slow_http:
                jobs = [load.slow(slow_http, k) for k in range(a.slow)]
                await asyncio.gather(*jobs, load.publisher(http, 1, SLOW, 20, 16384))

    async def run_load(self, http: Any, kind: str, ready: asyncio.Event) -> None:
        """One kind of load until `stop`; `ready` once it is up; its operations counted in `count[kind]`."""
        a = self.args
        if kind in ("healthy", "noref"):
            self.count[kind] = lambda: self.ops
            await self.healthy(http, kind == "healthy", ready)
        elif kind == "hostile":
            hostile = Hostile(self.gw.base, self.gw.port, self.counters, a.hostile_rate)
            self.count[kind] = lambda: hostile.sent
            ready.set()
            await hostile.run(self.stop)
        elif kind == "flood":
            flood = Flood(self.gw.base, self.counters, 4, a.flood_rate, 30.0)
            self.count[kind] = lambda: flood.attempts
            ready.set()
            await flood.run(self.stop)
        elif kind == "idle":
            self.count[kind] = lambda: 0
            ready.set()
            await self.stop.wait()
        else:
            await self.background(http, kind, ready)

    async def drive(self) -> None:
        """Start every load of the run, sample once all are up, stop them."""
        kinds = self.args.kinds
        async with client_session() as http:
            readies = {kind: asyncio.Event() for kind in kinds}
            tasks = [asyncio.create_task(self.run_load(http, kind, readies[kind])) for kind in kinds]
            up = asyncio.create_task(asyncio.wait([asyncio.create_task(e.wait()) for e in readies.values()]))
            done, _ = await asyncio.wait([*tasks, up], timeout=900, return_when="FIRST_COMPLETED")
            for task in tasks:
                if task in done:
                    task.result()  # a load that failed to start (or ended early): say why
            await self.sample_loop()
            self.stop.set()
            await asyncio.wait(tasks, timeout=60)

    async def sample_loop(self) -> None:
        a = self.args
        print(header(a), flush=True)
        start = time.perf_counter()
        last_ops = self.counter()
        while (elapsed := time.perf_counter() - start) < a.duration - 0.5:
            await asyncio.sleep(min(a.interval, a.duration - elapsed))
            ops = self.counter()
            m = await asyncio.to_thread(metrics, self.gw.base)
            s: dict[str, Any] = {"t": round(time.perf_counter() - start), "rss_kib": self.gw.vm_rss_mb() * 1024}
            s |= {"ops": ops, "interval_ops": ops - last_ops, "registry": int(m.get("gateway_correlation_entries", -1))}
            s["sessions"] = int(m.get("gateway_sessions", -1))
            last_ops = ops
            if self.fifo is not None and a.inspect:
                s |= await asyncio.to_thread(self.ask, "report")
            if self.fifo is not None and a.trim:
                s["trimmed_kib"] = (await asyncio.to_thread(self.ask, "trim"))["rss_after_kib"]
            self.reports.append(s)
            print(row(s, a), flush=True)


def load_session(load: Load, http: Any, k: int) -> Session:
    """A steady session of soakload's (half WebSocket, half long-polling), counting deliveries."""
    kind = ("websocket", "long-polling")[k % 2]
    return Session(http, load.plan.base, kind, *load.user(k), load.counters, load._count)


COLUMNS = [("rss_kib", "RSS"), ("trimmed_kib", "trimmed"), ("malloc_in_use_kib", "heap use"),
           ("malloc_free_kib", "heap free"), ("malloc_mmap_kib", "mmap"), ("sqlite_used_kib", "sqlite"),
           ("traced_kib", "traced")]  # fmt: skip


def columns(a: argparse.Namespace) -> list[tuple[str, str]]:
    """The KiB columns this run has."""
    keep = {"rss_kib"} | ({"trimmed_kib"} if a.trim else set())
    if a.inspect:
        keep |= {"malloc_in_use_kib", "malloc_free_kib", "malloc_mmap_kib", "sqlite_used_kib"}
    if a.tracemalloc:
        keep.add("traced_kib")
    return [c for c in COLUMNS if c[0] in keep]


def header(a: argparse.Namespace) -> str:
    cols = " ".join(f"{title + ' MiB':>13}" for _, title in columns(a))
    more = f" {'pyblocks':>9} {'gc objs':>8}" if a.inspect else ""
    return f"{'t s':>5} {cols} {'ops':>6} {'ops/int':>7} {'registry':>8} {'sessions':>8}{more}"


def row(s: dict[str, Any], a: argparse.Namespace) -> str:
    cols = " ".join(f"{s.get(k, 0) / 1024:>13.1f}" for k, _ in columns(a))
    more = f" {s.get('pymalloc_blocks', 0):>9} {s.get('gc_objects', 0):>8}" if a.inspect else ""
    return f"{s['t']:>5} {cols} {s['ops']:>6} {s['interval_ops']:>7} {s['registry']:>8} {s['sessions']:>8}{more}"


def summary(probe: Probe, a: argparse.Namespace) -> list[str]:
    after = [s for s in probe.reports if s["t"] >= a.warmup] or probe.reports[-1:]
    first, last = after[0], after[-1]
    ops = last["ops"] - first["ops"]
    lines = [f"\n{a.load}: {ops} operations from {first['t']} s to {last['t']} s"]
    for key, title in [*columns(a), ("pymalloc_blocks", "pymalloc blocks"), ("gc_objects", "gc objects")]:
        if key not in last:
            continue
        grew = last[key] - first[key]
        unit = "KiB" if key.endswith("_kib") else ""
        per = f"{grew / ops * (1024 if unit else 1):.0f} {'B' if unit else ''}/op" if ops else "-"
        lines.append(f"  {title:>16}: {first[key]:>10.0f} -> {last[key]:>10.0f} {unit:3} ({grew:+.0f}; {per})")
    grown = last.get("gc_grown")
    if grown:
        lines.append("  gc types grown in the last interval: " + ", ".join(f"{t} +{n}" for t, n in grown[:12]))
    if probe.fifo is not None and a.tracemalloc:
        # A diff over the whole measured span: the first report after warm-up is the baseline snapshot.
        lines.append("  tracemalloc (last interval, top sites):")
        for site in last.get("traced_grown", [])[:8]:
            lines.append(f"    {site['kib']:+6d} KiB {site['count']:+7d} blocks  " + " | ".join(site["where"][-4:]))
    lines.append(f"  client errors: {probe.counters.errors or 'none'}")
    return lines


def start(a: argparse.Namespace, workdir: Path) -> tuple[Gateway, Path | None]:
    """The gateway, as soak.py configures it (plus --config-extra), through rss_hook.py when inspecting."""
    agents = a.healthy + a.steady + a.churn + a.slow + 2
    extra = f"  - {{name: {HOSTILE_USER}, role: agent, password: {HOSTILE_PASSWORD}}}\n"
    config = gateway_config(0, workdir / "probe.db", agents, extra, ", ws_drain_timeout_s: 10.0") + a.config_extra
    port = free_port()
    path = workdir / "gateway.yaml"
    path.write_text(config)
    args = ["--config", str(path), "--port", str(port)]
    env = dict(os.environ)
    for pair in a.env:
        key, _, value = pair.partition("=")
        env[key] = value
    fifo = None
    cmd = [str(PYTHON), "-m", "gateway", *args]
    if a.inspect or a.trim or a.tracemalloc:
        fifo = workdir / "control.fifo"
        os.mkfifo(fifo)
        cmd = [str(PYTHON), str(HOOK), str(fifo), "-m", "gateway", *args]
        if a.tracemalloc:
            env["PYTHONTRACEMALLOC"] = str(a.tracemalloc)
    return Gateway(cmd, port=port, stderr_path=workdir / "gateway.stderr", cwd=ROOT, env=env), fifo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("load", help=f"one of {', '.join(KINDS)}, several joined by '+', or soak (all but noref)")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load (300)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds per line (10)")
    parser.add_argument("--warmup", type=float, default=30.0, help="s before the growth is counted (30)")
    parser.add_argument("--healthy", type=int, default=20, help="healthy agents (20)")
    parser.add_argument("--rate", type=float, default=1.0, help="operations/s of each healthy agent (1)")
    parser.add_argument("--churn", type=int, default=200, help="churn slots (200, the soak's)")
    parser.add_argument("--steady", type=int, default=0, help="steady sessions for tick (0; e.g. 500)")
    parser.add_argument("--slow", type=int, default=10, help="slow-consumer slots (10)")
    parser.add_argument("--tick-rate", type=float, default=0.2, help="tick publishes/s (0.2)")
    parser.add_argument("--hostile-rate", type=float, default=10.0, help="hostile inputs/s (10)")
    parser.add_argument("--flood-rate", type=float, default=50.0, help="wrong passwords/s (50)")
    parser.add_argument("--inspect", action="store_true", help="heap, SQLite, pymalloc and gc columns")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) after each sample")
    parser.add_argument("--tracemalloc", type=int, default=0, help="PYTHONTRACEMALLOC frames (0: off)")
    parser.add_argument("--env", action="append", default=[], help="K=V for the gateway (MALLOC_ARENA_MAX=2)")
    parser.add_argument("--config-extra", default="", help="YAML appended to the config (correlation: {...})")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the gateway's log here")
    a = parser.parse_args()
    a.kinds = [k for k in KINDS if k not in ("noref", "idle")] if a.load == "soak" else a.load.split("+")
    if not set(a.kinds) <= set(KINDS):
        parser.error(f"unknown load in {a.load!r}: the kinds are {', '.join(KINDS)}")
    a.inspect = a.inspect or bool(a.tracemalloc)
    raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="rss-probe-"))
    try:
        gw, fifo = start(a, workdir)
        print(f"[probe] {a.load}: gateway pid {gw.pid}, RSS {gw.vm_rss_mb():.1f} MiB, env {a.env or '-'}, "
              f"config extra {a.config_extra.strip() or '-'}", file=sys.stderr, flush=True)  # fmt: skip
        probe = Probe(gw, a, fifo)
        try:
            asyncio.run(probe.drive())
        finally:
            text = gw.log_text()
            gw.stop()
            if a.keep_log:
                a.keep_log.write_text(text)
        print("\n".join(summary(probe, a)), flush=True)
        print(f"  gateway log: {len(text.splitlines())} lines, {text.count('Traceback')} with Traceback")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
