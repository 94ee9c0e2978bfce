"""Several nodes (issue 12): two gateways on one PostgreSQL and one Redis against one gateway alone, same run.

    /work/main/.venv/bin/python bench/nodes.py [--only ack,fanout,imports] [--quick] [--agents 300]
        [--ack-rates 200] [--subscribers 1000] [--fanout-rates 50,100] [--imports 3000] [--import-clients 4,16]
        [--duration 15] [--warmup 3] [--log sql|redis] [--out FILE]

Servers: a PostgreSQL and a redis-server of this run's own (tests/servers/postgres.py and tests/servers/redis.py:
Debian's binaries, free ports, temporary folders, removed at the end); the gateways are pinned to core 0, this
client and the Node load generator to core 1, PostgreSQL and Redis run on either core. A cluster node has
`broker.url` and `correlation.url`-less `correlation.backend: redis` on that Redis and `storage.url` on that
PostgreSQL (one database per part); a single node has the defaults (memory broker and registry) and SQLite.

  ack      N agents on CometD over WebSocket, REST UpdateRecord at a fixed open-loop rate (bench/gws.py's
           scenario and checks, imported). Cluster: the agents' sockets on node A, every REST call (preview
           session, GetPreviewRecord, UpdateRecord) on node B, so each acknowledgement crosses Redis from B to A.
           Single: sockets and REST on one node. Figure: POST sent -> ack on the agent's socket, p50/p99.
           Target: p99 <= 25 ms at 200 ops/s (no error, no missing or wrong-agent ack, >= 95% of the rate sent).
  fanout   S WebSocket subscribers on one channel, one WebSocket publisher on node A at fixed rates (bench/
           loadgen.js, fanout mode, `sub_urls`): cluster: subscribers alternate between node A and node B (half
           get the message locally from A, half through Redis from B); single: all S on one node. Figure:
           publish -> delivery p50/p99 over every copy, per node for the cluster, and the ratio cluster/single.
           The fan-out nodes keep a SQLite file each (the channel is not logged: the store is not on that path).
  imports  jtel POST /rest/v1.0/1/dialler/contacts/import, 4 concurrent keep-alive clients, fresh UserData
           (bench/contacts.py's workload and checks, imported), with overwriteDuplicates=true and =false, on one
           node with PostgreSQL and on one node with SQLite. Target: >= 1,000 imports/s on both, with 4 clients.
           --import-clients adds other client counts (default 4,16: one request at a time per client, so 4 clients
           measure 4 / latency; 16 show what one node takes when more requests are in flight); the target is
           judged on the 4-client figures only.

Prints the tables of each part, a summary with PASS/MISS per target and the load average / core busy% beside
the figures (other work on the machine disturbs them), and writes JSON to bench/results/nodes-<ts>.json
(gitignored). Not a test: nothing here runs in CI. Loopback (127.0.0.1) only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import contacts
import fanout
import gws
import orjson
from benchlib import BENCH, ROOT, busy_pct, core_times, fmt, raise_nofile

sys.path.insert(0, str(ROOT))  # tests.servers: the test suite's PostgreSQL and Redis starters

TARGET_ACK_P99_MS = gws.TARGET_P99_MS
TARGET_ACK_RATE = gws.TARGET_RATE
TARGET_IMPORTS_PER_S = 1000.0
IMPORT_MIXES = (contacts.IMPORT_NEW_OVERWRITE, contacts.IMPORT_NEW)
FANOUT_P99_LIMIT_MS = 100.0
CLUSTER_CONFIG = """\
broker: {{url: "{redis}"}}
correlation: {{backend: redis}}
replay: {{backend: {log}}}
"""


def log(msg: str) -> None:
    print(f"[nodes {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# -- PostgreSQL and Redis -------------------------------------------------------------------------


@contextlib.contextmanager
def postgres() -> Iterator[Any]:
    """A PostgreSQL of our own (tests/servers/postgres.py's starter, without its pytest fixture)."""
    from tests.servers import postgres as pg

    binaries = pg._binaries()
    if binaries is None:
        raise SystemExit("nodes: PostgreSQL binaries missing (/usr/lib/postgresql/*/bin): apt-get install postgresql")
    server, proc = pg._start(binaries)
    try:
        yield server
    finally:
        pg._stop(server, proc)


@contextlib.contextmanager
def redis(folder: Path) -> Iterator[Any]:
    """A redis-server of our own (tests/servers/redis.py's RedisServer)."""
    from tests.servers.redis import RedisServer

    binary = shutil.which(os.environ.get("REDIS_SERVER", "redis-server"))
    if binary is None:
        raise SystemExit("nodes: redis-server missing: apt-get install redis-server")
    server = RedisServer(binary, folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- ack: gws.py's scenario on one node and across two ------------------------------------------


class Pair:
    """Two nodes as gws.LoadGen sees one gateway: WebSockets to `ws`, REST to `rest`; CPU and RSS of both."""

    def __init__(self, ws: gws.Gateway, rest: gws.Gateway) -> None:
        self.ws = ws
        self.rest = rest
        self.base = rest.base
        self.port = ws.port

    def cpu_s(self) -> float:
        return self.ws.cpu_s() + self.rest.cpu_s()

    def rss(self) -> int:
        return self.ws.rss() + self.rest.rss()


async def ack_case(gateway: Any, args: argparse.Namespace) -> dict[str, Any]:
    ns = argparse.Namespace(agents=args.agents, no_twin=False, replay=False)
    out: dict[str, Any] = {"steps": []}
    async with gws.LoadGen(gateway, ns) as gen:
        out["imports_per_s"] = await gen.import_contacts(args.agents + 10)
        started = time.perf_counter()
        await gen.setup()
        out["setup_s"] = time.perf_counter() - started
        log(f"  {args.agents} agents connected with a record each in {out['setup_s']:.1f} s")
        for rate in args.ack_rates:
            nodes = [gateway.ws, gateway.rest] if isinstance(gateway, Pair) else [gateway]
            cpu0 = [n.cpu_s() for n in nodes]
            step = await gen.run_rate(rate, args.warmup, args.duration, args.drain)
            r = step.summarize(TARGET_ACK_P99_MS)
            # CPU% of each node (A: the agents' sockets, B: REST) over warm-up, window and drain
            r["node_cpu_pct"] = [
                100 * (n.cpu_s() - c) / (args.warmup + r["window_s"]) for n, c in zip(nodes, cpu0, strict=True)
            ]
            r["load_average"] = os.getloadavg()[0]
            log("  " + gws.row(r))
            out["steps"].append(r)
            await asyncio.sleep(1.0)
        out["anomalies"] = {
            "unexpected_acks": gen.unexpected_acks,
            "connect_failures": gen.connect_failures,
            "closed_sockets": gen.closed_sockets,
            "samples": gen.anomalies[:10],
        }
    return out


def run_ack(args: argparse.Namespace, workdir: Path, pg: Any, rd: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    log(f"ack, single node (memory broker, SQLite): {args.agents} agents")
    node = gws.Gateway(workdir, args.agents, None, None, stderr_name="ack-single.stderr")
    try:
        results["single"] = asyncio.run(ack_case(node, args))
    finally:
        results.setdefault("single", {})["log"] = node.stop()[:20]
    url = pg.create_database("ack")
    extra = CLUSTER_CONFIG.format(redis=rd.url, log=args.log)
    log(f"ack, two nodes (Redis broker + registry, PostgreSQL, log in {args.log}): agents on A, REST on B ({url})")
    a = gws.Gateway(workdir, args.agents, None, None, extra_config=extra, storage_url=url, stderr_name="ack-a.stderr")
    try:
        b = gws.Gateway(
            workdir, args.agents, None, None, extra_config=extra, storage_url=url, stderr_name="ack-b.stderr"
        )
        try:
            results["cluster"] = asyncio.run(ack_case(Pair(a, b), args))
        finally:
            results.setdefault("cluster", {})["log_b"] = b.stop()[:20]
    finally:
        results.setdefault("cluster", {})["log_a"] = a.stop()[:20]
    return results


# -- fanout: loadgen.js against one node and across two -----------------------------------------


def fanout_case(label: str, servers: list[fanout.Server], args: argparse.Namespace) -> dict[str, Any]:
    fargs = argparse.Namespace(
        subscribers=args.subscribers,
        warmup=args.warmup,
        duration=args.duration,
        drain=args.drain,
        p99_limit=FANOUT_P99_LIMIT_MS,
        target_rates=args.fanout_rates,
        payload=64,
        no_stagger=False,
        quick=args.quick,
    )
    cfg = fanout.fanout_cfg(fargs, "websocket", args.fanout_rates, stop=False)
    timeout = 300 + len(args.fanout_rates) * (args.warmup + args.duration + args.drain) * 3
    cfg |= {
        "url": servers[0].url,
        "server_pid": servers[0].pid,
        "clk_tck": fanout.clk_tck(),
        "label": label,
        "hard_limit_s": timeout,
        # another engineer's tests may keep the machine busy: one retry, a short wait for quiet cores
        "disturbed_retries": 0 if args.quick else 1,
        "quiet_wait_s": 0 if args.quick else 15,
    }
    if len(servers) > 1:
        cfg["sub_urls"] = [s.url for s in servers]
    cpu0 = [s.cpu_s() for s in servers]
    done = fanout.run_loadgen(cfg, timeout + 30)
    result = done["result"]
    result["nodes_cpu_s_whole_run"] = [s.cpu_s() - c for s, c in zip(servers, cpu0, strict=True)]
    result["problems"] = done.get("problems", [])
    return dict(result)


def run_fanout(args: argparse.Namespace, workdir: Path, rd: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    log(f"fanout, single node (memory broker): {args.subscribers} WebSocket subscribers")
    one = fanout.Server("gateway", workdir, 10000)
    try:
        results["single"] = fanout_case("1 node", [one], args)
    finally:
        results.setdefault("single", {})["log"] = one.stop(timeout=10)[:20]
    extra = CLUSTER_CONFIG.format(redis=rd.url, log="sql")
    log(f"fanout, two nodes on Redis: {args.subscribers // 2} + {args.subscribers - args.subscribers // 2} subscribers")
    a = fanout.Server("gateway", workdir, 10000, extra)
    try:
        b = fanout.Server("gateway", workdir, 10000, extra)
        try:
            results["cluster"] = fanout_case("2 nodes", [a, b], args)
        finally:
            results.setdefault("cluster", {})["log_b"] = b.stop(timeout=10)[:20]
    finally:
        results.setdefault("cluster", {})["log_a"] = a.stop(timeout=10)[:20]
    return results


# -- imports: contacts.py's import phase on PostgreSQL and on SQLite --------------------------


class ContactsApi:
    """A gws.Gateway as contacts.run_phase sees one: the jtel API's base URL and the server's CPU."""

    def __init__(self, gateway: gws.Gateway) -> None:
        self.base = gateway.base + contacts.API
        self.cpu_s = gateway.cpu_s


async def import_case(gateway: gws.Gateway, args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {gws.TOKEN}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=60)
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), headers=headers, timeout=timeout)
        for _ in range(max(args.import_clients))
    ]
    api: Any = ContactsApi(gateway)
    workload = contacts.Workload(random.Random(contacts.SEED))
    out: dict[str, Any] = {}
    plan = [("warm-up", contacts.IMPORT_NEW_OVERWRITE, contacts.WARMUP_IMPORTS, contacts.CLIENTS)] + [
        (mix_name(mix, clients), mix, args.imports, clients) for clients in args.import_clients for mix in IMPORT_MIXES
    ]
    try:
        for name, mix, n, clients in plan:
            work = contacts.split(workload.imports(n, mix), clients)
            phase = await contacts.run_phase(name, sessions[:clients], api, work, args.phase_limit)
            summary = phase.summary()
            summary.pop("latencies_ms")
            summary["load_average"] = os.getloadavg()[0]
            out[name] = summary
            if name != "warm-up":
                log(
                    f"  {name}: {phase.requests} imports, {phase.rate:.0f}/s, p50 {fmt(phase.pct(50))} ms,"
                    f" p99 {fmt(phase.pct(99))} ms, errors {phase.errors}, server CPU"
                    f" {fmt(summary['server_cpu_pct'], '.0f')}%, cores {[round(c) for c in phase.core_busy_pct]}"
                )
    finally:
        for session in sessions:
            await session.close()
    return out


def mix_name(mix: str, clients: int) -> str:
    """contacts.py's phase name (`import new x4`) for another number of clients."""
    return mix.rsplit(" x", 1)[0] + f" x{clients}"


def run_imports(args: argparse.Namespace, workdir: Path, pg: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for store in ("postgresql", "sqlite"):
        url = pg.create_database("imports") if store == "postgresql" else None
        log(f"imports, one node on {store}")
        node = gws.Gateway(workdir, 0, None, None, storage_url=url, stderr_name=f"imports-{store}.stderr")
        try:
            results[store] = asyncio.run(import_case(node, args))
        finally:
            results.setdefault(store, {})["log"] = node.stop()[:20]
    return results


# -- report ---------------------------------------------------------------------------------------


def ratio(a: Any, b: Any) -> str:
    return f"x{a / b:.2f}" if isinstance(a, int | float) and isinstance(b, int | float) and b else "-"


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "MISS")


def report(results: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    lines: list[str] = []
    summary: dict[str, Any] = {}
    if "ack" in results:
        ack = results["ack"]
        lines.append(
            f"ack: POST sent -> ack on the agent's CometD socket, {args.agents} agents, "
            f"{args.duration:g} s per rate (ms; CPU% = both nodes, 100% = one core)"
        )
        lines.append(
            f"  {'case':<34} {'rate/s':>6} {'sent/s':>6} {'p50':>6} {'p99':>6} {'max':>6} {'http p99':>8}"
            f" {'err':>4} {'miss':>4} {'wrong':>5} {'srv CPU%':>8} {'core0%':>6} {'core1%':>6} {'load':>5}"
        )
        names = {"single": "1 node (memory broker, SQLite)", "cluster": "2 nodes (Redis, PostgreSQL): A<-B"}
        for key in ("single", "cluster"):
            for r in ack.get(key, {}).get("steps", []):
                cores = r["core_busy_pct"] + [0.0, 0.0]
                lines.append(
                    f"  {names[key]:<34} {r['rate']:>6g} {r['achieved_per_s']:>6.1f} {fmt(r['ack_p50_ms']):>6}"
                    f" {fmt(r['ack_p99_ms']):>6} {fmt(r['ack_max_ms']):>6} {fmt(r['http_p99_ms']):>8}"
                    f" {r['errors']:>4} {r['missing_acks']:>4} {r['wrong_agent_acks']:>5}"
                    f" {r['server_cpu_pct']:>8.0f} {cores[0]:>6.0f} {cores[1]:>6.0f} {r['load_average']:>5.2f}"
                )
                if key == "cluster":
                    a_cpu, b_cpu = r["node_cpu_pct"]
                    lines.append(f"    node A (sockets) CPU {a_cpu:.0f}%, node B (REST) CPU {b_cpu:.0f}% (incl. drain)")
                for kind, n in r["error_kinds"].items():
                    lines.append(f"    {n} x {kind}")
        for key in ("single", "cluster"):
            at = [r for r in ack.get(key, {}).get("steps", []) if r["rate"] == TARGET_ACK_RATE]
            ok = at[0]["pass"] if at else None
            summary[f"ack_{key}_pass"] = ok
            if at:
                r = at[0]
                why = "" if ok else " (" + "; ".join(r["fail_reasons"]) + ")"
                lines.append(
                    f"{verdict(ok)}  ack p99 <= {TARGET_ACK_P99_MS:g} ms at {TARGET_ACK_RATE:g} ops/s, {names[key]}:"
                    f" p50 {fmt(r['ack_p50_ms'])} ms, p99 {fmt(r['ack_p99_ms'])} ms{why}"
                )
        single = {r["rate"]: r for r in ack.get("single", {}).get("steps", [])}
        for r in ack.get("cluster", {}).get("steps", []):
            s = single.get(r["rate"])
            if s:
                lines.append(
                    f"info  ack at {r['rate']:g} ops/s, 2 nodes / 1 node:"
                    f" p50 {ratio(r['ack_p50_ms'], s['ack_p50_ms'])},"
                    f" p99 {ratio(r['ack_p99_ms'], s['ack_p99_ms'])}"
                )
        lines.append("")
    if "fanout" in results:
        fo = results["fanout"]
        lines.append(
            f"fanout: {args.subscribers} WebSocket subscribers, one publisher on node A; publish -> delivery (ms)"
            " over every copy; srv CPU% = node A only"
        )
        lines.append(
            f"  {'case':<28} {'rate/s':>6} {'delivered':>10} {'lost':>5} {'p50':>6} {'p99':>6} {'max':>6}"
            f" {'srv CPU%':>8} {'cli CPU%':>8} {'core0%':>6} {'core1%':>6} {'disturbed':>9}"
        )
        by_case: dict[str, dict[float, Any]] = {}
        for key, name in (("single", "1 node (memory broker)"), ("cluster", "2 nodes (Redis), 1/2 each")):
            by_case[key] = {}
            for r in fo.get(key, {}).get("steps", []):
                by_case[key][r["rate"]] = r
                cores = r.get("cores", {})
                lines.append(
                    f"  {name:<28} {r['rate']:>6g} {r['delivered']:>10} {r['lost']:>5} {fmt(r['p50_ms']):>6}"
                    f" {fmt(r['p99_ms']):>6} {fmt(r['max_ms']):>6} {r['server_cpu_pct']:>8.0f}"
                    f" {r['client_cpu_pct']:>8.0f} {cores.get('cpu0', 0):>6.0f} {cores.get('cpu1', 0):>6.0f}"
                    f" {'yes' if r.get('disturbed') else 'no':>9}"
                )
                for k, node in enumerate(r.get("by_node") or []):
                    where = "A (local)" if k == 0 else "B (via Redis)"
                    lines.append(
                        f"    node {where:<21} {'':>6} {node['samples']:>10} {'':>5} {fmt(node['p50_ms']):>6}"
                        f" {fmt(node['p99_ms']):>6} {fmt(node['max_ms']):>6}"
                    )
        summary["fanout_ratios"] = {}
        for rate, r in by_case.get("cluster", {}).items():
            s = by_case.get("single", {}).get(rate)
            if s:
                summary["fanout_ratios"][str(rate)] = {
                    "p50": r["p50_ms"] / s["p50_ms"] if s["p50_ms"] else None,
                    "p99": r["p99_ms"] / s["p99_ms"] if s["p99_ms"] else None,
                }
                lost = r["lost"] + s["lost"]
                lines.append(
                    f"info  fan-out at {rate:g}/s, 2 nodes / 1 node: p50 {ratio(r['p50_ms'], s['p50_ms'])},"
                    f" p99 {ratio(r['p99_ms'], s['p99_ms'])}"
                    f" (1 node p99 {fmt(s['p99_ms'])} ms, 2 nodes p99 {fmt(r['p99_ms'])} ms; lost {lost})"
                )
        lines.append("")
    if "imports" in results:
        im = results["imports"]
        lines.append(
            "imports: jtel contacts/import, fresh UserData, one node; xN: N concurrent clients, one request at a time"
            f" each (the target: x{contacts.CLIENTS})"
        )
        lines.append(
            f"  {'store':<12} {'mix':<20} {'imports':>7} {'/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'err':>4}"
            f" {'srv CPU%':>8} {'cli CPU%':>8} {'core0%':>6} {'core1%':>6} {'load':>5}"
        )
        names = [mix_name(mix, clients) for clients in args.import_clients for mix in IMPORT_MIXES]
        for store in ("postgresql", "sqlite"):
            for mix in names:
                p = im.get(store, {}).get(mix)
                if p is None:
                    continue
                cores = p["core_busy_pct"] + [0.0, 0.0]
                lines.append(
                    f"  {store:<12} {mix:<20} {p['requests']:>7} {p['rate_per_s']:>7.0f} {fmt(p['p50_ms']):>7}"
                    f" {fmt(p['p99_ms']):>7} {p['errors']:>4} {fmt(p['server_cpu_pct'], '.0f'):>8}"
                    f" {fmt(p.get('client_cpu_pct'), '.0f'):>8} {cores[0]:>6.0f} {cores[1]:>6.0f}"
                    f" {p['load_average']:>5.2f}"
                )
        for store in ("postgresql", "sqlite"):
            phases = [im.get(store, {}).get(mix) for mix in IMPORT_MIXES]
            if not all(phases):
                continue
            worst = min(p["rate_per_s"] for p in phases if p)
            errors = sum(p["errors"] for p in phases if p)
            ok = worst >= TARGET_IMPORTS_PER_S and not errors
            summary[f"imports_{store}_pass"] = ok
            summary[f"imports_{store}_per_s"] = {
                mix: p["rate_per_s"] for mix, p in zip(IMPORT_MIXES, phases, strict=True) if p
            }
            lines.append(
                f"{verdict(ok)}  imports >= {TARGET_IMPORTS_PER_S:,.0f}/s on {store}: "
                + ", ".join(f"{mix} {p['rate_per_s']:.0f}/s" for mix, p in zip(IMPORT_MIXES, phases, strict=True) if p)
                + (f"; {errors} errors" if errors else "")
            )
        pg = im.get("postgresql", {}).get(contacts.IMPORT_NEW_OVERWRITE)
        lite = im.get("sqlite", {}).get(contacts.IMPORT_NEW_OVERWRITE)
        if pg and lite:
            lines.append(f"info  imports new/ovw, PostgreSQL / SQLite: {ratio(pg['rate_per_s'], lite['rate_per_s'])}")
    return lines, summary


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="ack,fanout,imports", help="parts to run: ack,fanout,imports")
    parser.add_argument("--quick", action="store_true", help="small sizes, short windows (a smoke run, ~2 minutes)")
    parser.add_argument("--agents", type=int, default=None, help="ack: agents on WebSocket (300; quick 50)")
    parser.add_argument("--ack-rates", default=None, help="ack: operations/s (200)")
    parser.add_argument("--subscribers", type=int, default=None, help="fanout: WebSocket subscribers (1000; quick 200)")
    parser.add_argument("--fanout-rates", default=None, help="fanout: publishes/s (50,100; quick 50)")
    parser.add_argument("--imports", type=int, default=None, help="imports per mix and store (3000; quick 500)")
    parser.add_argument(
        "--import-clients",
        default="4,16",
        help="imports: concurrent clients, one figure each (4,16; 4 is the target's)",
    )
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per rate (15; quick 5)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds per rate (3; quick 1)")
    parser.add_argument("--drain", type=float, default=None, help="longest wait for late messages (15; quick 5)")
    parser.add_argument("--phase-limit", type=float, default=60.0, help="imports: no new request after this (s)")
    parser.add_argument("--log", choices=("sql", "redis"), default="sql", help="ack: the cluster's replay.backend")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default bench/results/nodes-<ts>.json)")
    args = parser.parse_args(argv)
    q = args.quick
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(args.only) - {"ack", "fanout", "imports"}
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}")
    args.agents = args.agents or (50 if q else 300)
    args.ack_rates = [float(x) for x in (args.ack_rates or "200").split(",")]
    args.subscribers = args.subscribers or (200 if q else 1000)
    args.fanout_rates = [int(x) for x in (args.fanout_rates or ("50" if q else "50,100")).split(",")]
    args.imports = args.imports or (500 if q else 3000)
    # The target is judged on 4 clients: that figure is always measured, first.
    counts = [int(x) for x in args.import_clients.split(",") if x.strip()]
    args.import_clients = [contacts.CLIENTS, *sorted(set(counts) - {contacts.CLIENTS})]
    if min(args.import_clients) < 1:
        parser.error("--import-clients: counts must be positive")
    args.duration = args.duration if args.duration is not None else (5.0 if q else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if q else 3.0)
    args.drain = args.drain if args.drain is not None else (5.0 if q else 15.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (BENCH / "node_modules").exists() and "fanout" in args.only:
        print("nodes: run `npm ci --prefix bench` first (ws)", file=sys.stderr)
        return 2
    raise_nofile()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="nodes-bench-"))
    started = time.time()
    load: dict[str, str] = {"start": uptime()}
    log(f"parts {','.join(args.only)}; {load['start']}")
    others = gws.other_benchmarks()
    if others:
        log("WARNING: other benchmarks are running; figures will be disturbed:\n  " + "\n  ".join(others))
    results: dict[str, Any] = {}
    cores0 = core_times()
    try:
        # PostgreSQL and Redis start before this process pins itself to core 1 (they inherit its cores)
        with postgres() as pg, redis(workdir) as rd:
            log(f"PostgreSQL on {pg.port}, Redis on {rd.port}")
            if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
                os.sched_setaffinity(0, {gws.CLIENT_CORE})
            for part in ("ack", "fanout", "imports"):
                if part not in args.only:
                    continue
                if part == "ack":
                    results["ack"] = run_ack(args, workdir, pg, rd)
                elif part == "fanout":
                    results["fanout"] = run_fanout(args, workdir, rd)
                else:
                    results["imports"] = run_imports(args, workdir, pg)
                load[part] = uptime()
                log(f"{part} done; {load[part]}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    cores = busy_pct(cores0, core_times())
    lines, summary = report(results, args)
    print()
    for line in lines:
        print(line)
    print()
    for part, text in load.items():
        print(f"machine at {part}: {text}")
    print(f"cores busy over the whole run: {', '.join(f'{c:.0f}%' for c in cores)}")
    if others:
        print("other benchmarks running at start: " + "; ".join(others))
    out_path = args.out or results_dir / f"nodes-{stamp}.json"
    record = {
        "benchmark": "nodes",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_s": time.time() - started,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "uptime": load,
        "cores_busy_pct": cores,
        "other_benchmarks_at_start": others,
        "summary": summary,
        "summary_lines": lines,
        **results,
    }
    out_path.write_text(orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
    print(f"results: {out_path}")
    verdicts = [v for k, v in summary.items() if k.endswith("_pass") and v is not None]
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
