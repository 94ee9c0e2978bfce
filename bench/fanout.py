"""Fan-out benchmark: the gateway against Faye 1.4, same raw-Bayeux load generator, same run.

    /work/main/.venv/bin/python bench/fanout.py [--quick] [--subscribers N] [--duration S] ...

Scenarios (each on a freshly started server, pinned to core 0; the Node load generator on core 1):
  ws      N WebSocket subscribers on one channel, one WebSocket publisher stepping its rate up
          (10, 25, 50, 100, ...) until p99 >= 100 ms or a message is lost (never before 50/s):
          the saturation rate is the highest step that passed.
  lp      N long-polling subscribers, publisher at 10 and 50/s.
  idle    10,000 WebSocket sessions (handshake + connect + subscribe) idle: server RSS growth per session.

Prints a table per scenario with gateway/Faye ratios, PASS/FAIL per target, and writes JSON to
bench/results/. Not a test: nothing here runs in CI. Loopback (127.0.0.1) only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchlib import BENCH, HOST, PYTHON, ROOT, ServerProcess, fmt, free_port, raise_nofile

GATEWAY_PATH = "/api/v2/notifications"
FAYE_PATH = "/bayeux"
SERVER_CORE = "0"
CLIENT_CORE = "1"
SERVERS = ("gateway", "faye")


def log(msg: str) -> None:
    print(f"[fanout {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- processes ----------------------------------------------------------------------------------


class Server(ServerProcess):
    """One server under test (the gateway or Faye), started pinned to SERVER_CORE."""

    def __init__(self, kind: str, workdir: Path, max_queue: int, gateway_config: str = "") -> None:
        """`gateway_config`: more top-level YAML for the gateway's configuration (e.g. a `replay:` section)."""
        self.kind = kind
        port = free_port()
        if kind == "gateway":
            config = workdir / f"gateway-{port}.yaml"
            database = workdir / f"gateway-{port}.db"
            config.write_text(
                f"server: {{host: 127.0.0.1, port: {port}}}\n"
                f'bayeux: {{client_publish: ["/bench/**"], max_queue: {max_queue}}}\n'
                "logging: {level: warning, format: json}\n"
                # keep the gateway's database out of the work tree (a fresh one per server start)
                f"storage: {{url: 'sqlite:///{database}'}}\n" + gateway_config
            )
            cmd = [str(PYTHON), "-m", "gateway", "--config", str(config), "--port", str(port)]
            self.url = f"http://{HOST}:{port}{GATEWAY_PATH}"
            cwd = ROOT
        else:
            cmd = ["node", str(BENCH / "faye_server.js"), "--port", str(port), "--mount", FAYE_PATH]
            self.url = f"http://{HOST}:{port}{FAYE_PATH}"
            cwd = BENCH
        super().__init__(
            ["taskset", "-c", SERVER_CORE, *cmd],
            port=port,
            stderr_path=workdir / f"{kind}-{port}.stderr",
            cwd=cwd,
            stop_signal=signal.SIGTERM,
            listen_timeout=20.0,
        )


def run_loadgen(cfg: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run bench/loadgen.js pinned to CLIENT_CORE; return its final 'done' record."""
    cmd = ["taskset", "-c", CLIENT_CORE, "node", str(BENCH / "loadgen.js"), json.dumps(cfg)]
    proc = subprocess.Popen(cmd, cwd=BENCH, stdout=subprocess.PIPE, stderr=None, text=True)
    done: dict[str, Any] | None = None
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if record.get("event") == "done":
                    done = record
        proc.wait()
    finally:
        timer.cancel()
    if done is None:
        raise RuntimeError(f"load generator ended ({proc.returncode}) without a result")
    if "error" in done:
        raise RuntimeError(f"load generator failed: {done['error']}; problems: {done.get('problems')}")
    return done


def clk_tck() -> int:
    return int(os.sysconf("SC_CLK_TCK"))


# -- scenarios ----------------------------------------------------------------------------------


def scenario(
    kind: str,
    workdir: Path,
    args: argparse.Namespace,
    loadgen_cfg: dict[str, Any],
    timeout_s: float,
    gateway_config: str = "",
) -> dict[str, Any]:
    server = Server(kind, workdir, args.max_queue, gateway_config)
    log(f"{kind} pid {server.pid} on {server.url} ({loadgen_cfg['mode']} {loadgen_cfg.get('transport', '')})")
    try:
        cfg = {
            **loadgen_cfg,
            "url": server.url,
            "server_pid": server.pid,
            "clk_tck": clk_tck(),
            "label": kind,
            "hard_limit_s": timeout_s,
        }
        done = run_loadgen(cfg, timeout_s + 30)
    finally:
        alive = server.proc.poll() is None
        lines = server.stop(timeout=10)
    problems = done.get("problems", [])
    return {
        "server": kind,
        "result": done["result"],
        "problems": problems,
        "problem_count": done.get("problem_count", 0),
        "server_alive_at_end": alive,
        "server_log": lines[:50],
        "server_log_lines": len(lines),
    }


def fanout_cfg(args: argparse.Namespace, transport: str, rates: list[int], stop: bool) -> dict[str, Any]:
    return {
        "mode": "fanout",
        "transport": transport,
        "subscribers": args.subscribers,
        "channel": "/bench/fanout",
        "rates": rates,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "drain_s": args.drain,
        "p99_limit_ms": args.p99_limit,
        "stop_on_fail": stop,
        "stop_min_rate": max(args.target_rates),
        "payload_bytes": args.payload,
        "concurrency": 200,
        "setup_timeout_s": 180,
        "stagger_connects": not args.no_stagger,
        # a step disturbed by another process on the machine is measured again (bounded)
        # (--quick only flags it, so that it stays under a minute)
        "disturbed_retries": 0 if args.quick else 2,
        "quiet_wait_s": 0 if args.quick else 60,
    }


# -- report -------------------------------------------------------------------------------------


def ratio(a: Any, b: Any) -> str:
    if a is None or b is None or not b:
        return "-"
    return f"{a / b:.2f}"


def mib(b: Any) -> Any:
    return None if b is None else b / 2**20


def step_table(title: str, runs: dict[str, dict[str, Any]]) -> list[str]:
    out = [f"\n== {title} =="]
    header = (
        f"{'server':8} {'rate/s':>6} {'pub/s':>7} {'deliv/s':>9} {'lost':>6} {'dup':>4} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8} {'srvCPU%':>7} {'RSS MiB':>8} {'cliCPU%':>7} {'cliELU':>6} {'core0%':>6} "
        f"{'core1%':>6} {'slow':>5} {'ok':>4}"
    )
    out.append(header)
    for kind, run in runs.items():
        for s in run["result"]["steps"]:
            out.append(
                f"{kind:8} {s['rate']:>6} {fmt(s['publish_rate']):>7} {fmt(s['delivered_per_s'], '.0f'):>9} "
                f"{s['lost']:>6} {s['duplicates']:>4} {fmt(s['p50_ms'], '.2f'):>8} {fmt(s['p99_ms'], '.2f'):>8} "
                f"{fmt(s['max_ms'], '.1f'):>8} {fmt(s['server_cpu_pct'], '.0f'):>7} "
                f"{fmt(mib(s['server_rss_max'])):>8} {fmt(s['client_cpu_pct'], '.0f'):>7} "
                f"{fmt(s['client_elu'], '.2f'):>6} {fmt(s['cores'].get('cpu0'), '.0f'):>6} "
                f"{fmt(s['cores'].get('cpu1'), '.0f'):>6} {s['slow_publishes']:>5} {'yes' if s['pass'] else 'NO':>4}"
            )
    if set(SERVERS) <= runs.keys():
        gw = {s["rate"]: s for s in runs["gateway"]["result"]["steps"]}
        fy = {s["rate"]: s for s in runs["faye"]["result"]["steps"]}
        common = [r for r in gw if r in fy]
        if common:
            out.append("ratios gateway/Faye (latency and CPU: lower is better; deliveries/s: higher is better)")
            out.append(f"{'rate/s':>6} {'deliv/s':>8} {'p50':>6} {'p99':>6} {'srvCPU':>7} {'RSS':>6}")
            for r in common:
                g, f = gw[r], fy[r]
                out.append(
                    f"{r:>6} {ratio(g['delivered_per_s'], f['delivered_per_s']):>8} "
                    f"{ratio(g['p50_ms'], f['p50_ms']):>6} {ratio(g['p99_ms'], f['p99_ms']):>6} "
                    f"{ratio(g['server_cpu_pct'], f['server_cpu_pct']):>7} "
                    f"{ratio(g['server_rss_max'], f['server_rss_max']):>6}"
                )
    out.append(
        "columns: pub/s achieved publish rate; deliv/s deliveries per second; srvCPU% server process (one core = 100);"
        " core0%/core1% whole-core busy incl. softirq (server core / load-generator core); slow = publishes whose"
        " slowest delivery took >= the p99 limit"
    )
    for kind, run in runs.items():
        noisy = [
            f"{s['rate']}/s (core0 +{foreign_load(s)[0]:.0f}, core1 +{foreign_load(s)[1]:.0f} points)"
            for s in run["result"]["steps"]
            if disturbed(s)
        ]
        retried = [f"{s['rate']}/s" for s in run["result"]["steps"] if s.get("attempt")]
        if retried:
            out.append(
                f"NOTE {kind}: steps measured again because another process used the cores: {', '.join(retried)}"
            )
        if noisy:
            out.append(
                f"DISTURBED {kind}: another process used the benchmark's cores at "
                + ", ".join(noisy)
                + ": those figures are not comparable, rerun"
            )
    for kind, run in runs.items():
        r = run["result"]
        out.append(
            f"{kind}: {r['subscribers']} subscribers set up in {r['setup_s']:.1f} s ({r['setup_failed']} failed)"
        )
    return out


def foreign_load(step: dict[str, Any]) -> tuple[float, float]:
    """CPU points on core 0 / core 1 used by neither the server, the load generator nor softirq."""
    c = step.get("cores", {})
    # softirq of the benchmark's own loopback traffic stays under ~20 points; more is someone else's
    other0 = (c.get("cpu0") or 0) - step["server_cpu_pct"] - min(c.get("cpu0_softirq") or 0, 20)
    other1 = (c.get("cpu1") or 0) - step["client_cpu_pct"] - min(c.get("cpu1_softirq") or 0, 20)
    return other0, other1


def disturbed(step: dict[str, Any] | None) -> bool:
    """Another process took > 10 points of the server's or the load generator's core."""
    if step is None:
        return False
    other0, other1 = foreign_load(step)
    return other0 > 10 or other1 > 10


def disturbed_note(*steps: dict[str, Any]) -> str:
    bad = [f"{st['rate']}/s" for st in steps if disturbed(st)]
    return f" [DISTURBED at {', '.join(bad)}: another process used core 0/1, rerun before trusting]" if bad else ""


def saturation(run: dict[str, Any]) -> tuple[int | None, bool, int | None]:
    """Highest passing rate before the first failure; whether the ladder ended without a failure."""
    best = None
    first_fail = None
    for s in run["result"]["steps"]:
        if s["pass"] and first_fail is None:
            best = s["rate"]
        elif not s["pass"] and first_fail is None:
            first_fail = s["rate"]
    return best, first_fail is None, first_fail


def client_saturated(steps: list[dict[str, Any]]) -> list[str]:
    return [
        f"rate {s['rate']}/s (client ELU {s['client_elu']:.2f}, client CPU {s['client_cpu_pct']:.0f}%)"
        for s in steps
        if s["client_elu"] >= 0.9 or s["client_cpu_pct"] >= 90 or (s["cores"].get("cpu1") or 0) >= 90
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small N, short steps (smoke check, < 1 min)")
    parser.add_argument("--subscribers", type=int, default=None, help="subscribers per fan-out run (1000)")
    parser.add_argument("--idle-sessions", type=int, default=None, help="idle WebSocket sessions (10000)")
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per step (10)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds per step (3)")
    parser.add_argument("--drain", type=float, default=None, help="max seconds to wait for stragglers (10)")
    parser.add_argument("--rates", default=None, help="WebSocket ladder (10,25,50,100,200,400,800,1600)")
    parser.add_argument("--lp-rates", default=None, help="long-polling rates (10,50)")
    parser.add_argument("--p99-limit", type=float, default=100.0, help="saturation p99 limit in ms (100)")
    parser.add_argument("--payload", type=int, default=64, help="padding bytes in each event's data (64)")
    parser.add_argument("--max-queue", type=int, default=10000, help="gateway bayeux.max_queue (10000)")
    parser.add_argument(
        "--no-stagger", action="store_true", help="do not randomize the first held connect (synchronized renewals)"
    )
    parser.add_argument("--only", default="ws,lp,idle", help="scenarios to run: ws,lp,idle")
    parser.add_argument("--servers", default="gateway,faye", help="servers to run: gateway,faye")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path (bench/results/...)")
    args = parser.parse_args()

    quick = args.quick
    args.subscribers = args.subscribers or (100 if quick else 1000)
    args.idle_sessions = args.idle_sessions or (1000 if quick else 10000)
    args.duration = args.duration or (2.0 if quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if quick else 3.0)
    args.drain = args.drain or (3.0 if quick else 10.0)
    ladder = args.rates or ("10,50,200" if quick else "10,25,50,100,200,400,800,1600")
    args.ws_rates = [int(x) for x in ladder.split(",")]
    args.lp_rates = [int(x) for x in (args.lp_rates or ("10" if quick else "10,50")).split(",")]
    args.target_rates = [r for r in (10, 50) if r in args.ws_rates] or [args.ws_rates[0]]
    only = set(args.only.split(","))
    servers = [s for s in args.servers.split(",") if s in SERVERS]

    if shutil.which("node") is None or shutil.which("taskset") is None:
        print("fanout: needs node and taskset on PATH", file=sys.stderr)
        return 2
    if not (BENCH / "node_modules" / "faye").is_dir() or not (BENCH / "node_modules" / "ws").is_dir():
        print("fanout: run `npm ci --prefix bench` first (faye, ws)", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("fanout: needs 2 cores (server on core 0, load generator on core 1)", file=sys.stderr)
        return 2
    nofile = raise_nofile()
    if nofile < args.idle_sessions + 1000:
        log(f"warning: open-files limit {nofile} is low for {args.idle_sessions} sessions")
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})

    started = time.time()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {k: v for k, v in vars(args).items() if k != "out"} | {"out": str(args.out)},
        "machine": {"cpus": os.cpu_count(), "server_core": SERVER_CORE, "client_core": CLIENT_CORE, "nofile": nofile},
        "versions": versions(),
    }
    workdir = Path(tempfile.mkdtemp(prefix="fanout-"))
    step_budget = args.warmup + args.duration + args.drain + 3
    retry_budget = 3 * step_budget + 2 * 60  # a disturbed step is measured up to twice more
    try:
        if "ws" in only:
            results["ws"] = {}
            for kind in servers:
                cfg = fanout_cfg(args, "websocket", args.ws_rates, stop=True)
                results["ws"][kind] = scenario(kind, workdir, args, cfg, 240 + retry_budget * len(args.ws_rates))
        if "lp" in only:
            results["lp"] = {}
            for kind in servers:
                cfg = fanout_cfg(args, "long-polling", args.lp_rates, stop=False)
                results["lp"][kind] = scenario(kind, workdir, args, cfg, 240 + retry_budget * len(args.lp_rates))
        if "idle" in only:
            results["idle"] = {}
            for kind in servers:
                cfg = {
                    "mode": "idle",
                    "subscribers": args.idle_sessions,
                    "channel": "/bench/fanout",
                    "concurrency": 200,
                    "setup_timeout_s": 300,
                    "settle_s": 2 if quick else 5,
                    "drain_s": args.drain,
                    "stagger_connects": not args.no_stagger,
                }
                results["idle"][kind] = scenario(kind, workdir, args, cfg, 420)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = time.time() - started

    lines = report(results, args)
    print("\n".join(lines))
    results["report"] = lines
    out = args.out or BENCH / "results" / f"fanout-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}")
    return 0


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    with contextlib.suppress(Exception):
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "gateway"], capture_output=True, text=True
        )
        found["gateway_commit"] = head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    with contextlib.suppress(Exception):
        found["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    for pkg in ("faye", "ws"):
        with contextlib.suppress(Exception):
            found[pkg] = json.loads((BENCH / "node_modules" / pkg / "package.json").read_text())["version"]
    with contextlib.suppress(Exception):
        found["python"] = subprocess.run(
            [str(PYTHON), "-c", "import sys,aiohttp;print(sys.version.split()[0], 'aiohttp', aiohttp.__version__)"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    return found


def report(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    v = results["versions"]
    out.append(
        f"Fan-out benchmark: gateway {v.get('gateway_commit', '?')} (Python {v.get('python', '?')}) "
        f"vs Faye {v.get('faye', '?')} "
        f"(node {v.get('node', '?')}); load generator: node + ws {v.get('ws', '?')}, raw Bayeux JSON"
    )
    out.append(
        f"server on core {SERVER_CORE}, load generator on core {CLIENT_CORE}; {args.subscribers} subscribers; "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured per step; payload pad {args.payload} B; "
        f"publisher: 1 WebSocket client"
    )
    targets: list[tuple[str, bool | None, str]] = []
    losses: list[str] = []

    ws = results.get("ws", {})
    if ws:
        out += step_table(f"WebSocket, {args.subscribers} subscribers (rate ladder)", ws)
        sat: dict[str, tuple[int | None, bool, int | None]] = {k: saturation(r) for k, r in ws.items()}
        for kind, (best, open_ended, fail) in sat.items():
            note = (
                "ladder ended without failure: saturation is at least this"
                if open_ended
                else f"first failing step {fail}/s"
            )
            out.append(f"saturation {kind}: {best if best is not None else 'none'}/s ({note})")
        for kind, run in ws.items():
            steps = run["result"]["steps"]
            for s in steps:
                bad = s["lost"] or s["duplicates"]
                if bad:
                    beyond = sat[kind][2] is not None and s["rate"] >= sat[kind][2]
                    losses.append(
                        f"ws {kind} {s['rate']}/s: lost {s['lost']}, duplicates {s['duplicates']}"
                        + (" (overload step, beyond saturation)" if beyond else "")
                    )
            hot = client_saturated(steps)
            if hot:
                out.append(f"WARNING load generator near saturation with {kind}: " + "; ".join(hot))
        if set(SERVERS) <= ws.keys():
            gw = {s["rate"]: s for s in ws["gateway"]["result"]["steps"]}
            fy = {s["rate"]: s for s in ws["faye"]["result"]["steps"]}
            for rate in (10, 50):
                if rate in gw and rate in fy:
                    g, f = gw[rate]["p99_ms"], fy[rate]["p99_ms"]
                    targets.append(
                        (
                            f"WS {args.subscribers} subs @{rate}/s: gateway p99 <= Faye p99",
                            g is not None and f is not None and g <= f,
                            f"gateway {fmt(g, '.2f')} ms vs Faye {fmt(f, '.2f')} ms (ratio {ratio(g, f)})"
                            + disturbed_note(gw[rate], fy[rate]),
                        )
                    )
            gbest, gopen, _ = sat["gateway"]
            fbest, fopen, _ = sat["faye"]
            ok = gbest is not None and fbest is not None and gbest >= 1.5 * fbest
            detail = f"gateway {gbest}/s vs Faye {fbest}/s (ratio {ratio(gbest, fbest)}, needs >= 1.50)"
            if fopen:
                detail += "; Faye never failed on the ladder, its real saturation may be higher"
            if gopen:
                detail += "; gateway never failed on the ladder"
            used = [st for run in ws.values() for st in run["result"]["steps"]]
            detail += disturbed_note(*used)
            targets.append(("WS saturation rate (p99 < 100 ms, no loss) >= 1.5x Faye", ok, detail))

    lp = results.get("lp", {})
    if lp:
        out += step_table(f"long-polling, {args.subscribers} subscribers", lp)
        for kind, run in lp.items():
            for s in run["result"]["steps"]:
                if s["lost"] or s["duplicates"]:
                    losses.append(f"lp {kind} {s['rate']}/s: lost {s['lost']}, duplicates {s['duplicates']}")
            hot = client_saturated(run["result"]["steps"])
            if hot:
                out.append(f"WARNING load generator near saturation with {kind}: " + "; ".join(hot))
        if set(SERVERS) <= lp.keys():
            gw = {s["rate"]: s for s in lp["gateway"]["result"]["steps"]}
            fy = {s["rate"]: s for s in lp["faye"]["result"]["steps"]}
            if 10 in gw and 10 in fy:
                g, f = gw[10]["p99_ms"], fy[10]["p99_ms"]
                targets.append(
                    (
                        f"LP {args.subscribers} subs @10/s: gateway p99 <= Faye p99",
                        g is not None and f is not None and g <= f,
                        f"gateway {fmt(g, '.2f')} ms vs Faye {fmt(f, '.2f')} ms (ratio {ratio(g, f)})"
                        + disturbed_note(gw[10], fy[10]),
                    )
                )

    idle = results.get("idle", {})
    if idle:
        out.append(f"\n== idle WebSocket sessions (handshake + connect + subscribe), {args.idle_sessions} ==")
        out.append(
            f"{'server':8} {'sessions':>8} {'failed':>6} {'setup s':>7} {'RSS before':>10} {'RSS after':>9} "
            f"{'B/session':>9} {'KiB/sess':>8} {'idle CPU%':>9} {'check lost':>10}"
        )
        for kind, run in idle.items():
            r = run["result"]
            out.append(
                f"{kind:8} {r['sessions']:>8} {r['setup_failed']:>6} {r['setup_s']:>7.1f} "
                f"{fmt(mib(r['server_rss_before'])):>7} MiB {fmt(mib(r['server_rss_after'])):>5} MiB "
                f"{r['rss_per_session']:>9.0f} {r['rss_per_session'] / 1024:>8.2f} {fmt(r['server_idle_cpu_pct']):>9} "
                f"{r['check_lost']:>10}"
            )
            if r["check_lost"]:
                losses.append(f"idle {kind}: liveness message lost by {r['check_lost']} of {r['sessions']} sessions")
            if r["setup_failed"]:
                losses.append(f"idle {kind}: {r['setup_failed']} sessions failed to set up")
        if "faye" in idle and "gateway" in idle:
            out.append(
                "ratio gateway/Faye RSS per session: "
                + ratio(idle["gateway"]["result"]["rss_per_session"], idle["faye"]["result"]["rss_per_session"])
            )
        if "gateway" in idle:
            per = idle["gateway"]["result"]["rss_per_session"]
            n = idle["gateway"]["result"]["sessions"]
            targets.append(
                (
                    f"gateway idle RSS <= 20 KiB per WebSocket session ({n} sessions)",
                    per <= 20 * 1024 and n >= args.idle_sessions,
                    f"{per:.0f} B = {per / 1024:.2f} KiB per session",
                )
            )

    gw_losses = [x for x in losses if " gateway " in f" {x} " and "beyond saturation" not in x]
    out.append("\n== lost / duplicated messages ==")
    out += losses or ["none in any run"]
    targets.append(
        (
            "gateway: no message lost (all steps up to saturation, LP, idle check)",
            not gw_losses,
            "; ".join(gw_losses) if gw_losses else "0 lost",
        )
    )

    out.append("\n== client (load generator) CPU ==")
    for scen in ("ws", "lp"):
        for kind, run in results.get(scen, {}).items():
            steps = run["result"]["steps"]
            out.append(
                f"{scen} {kind}: "
                + ", ".join(
                    f"{s['rate']}/s {s['client_cpu_pct']:.0f}% (ELU {s['client_elu']:.2f}, core1 "
                    f"{fmt(s['cores'].get('cpu1'), '.0f')}%)"
                    for s in steps
                )
            )

    problems = []
    for scen in ("ws", "lp", "idle"):
        for kind, run in results.get(scen, {}).items():
            if run["problem_count"]:
                problems.append(f"{scen} {kind}: {run['problem_count']} protocol problems, e.g. {run['problems'][:3]}")
            if not run["server_alive_at_end"]:
                problems.append(f"{scen} {kind}: server process died during the run")
            benign = [ln for ln in run["server_log"] if '"no_users_configured"' in ln]
            if run["server_log_lines"] > len(benign):
                problems.append(
                    f"{scen} {kind}: {run['server_log_lines']} server log lines, first: {run['server_log'][:3]}"
                )
    out.append("\n== server problems / warnings ==")
    out += problems or ["none"]

    out.append("\n== targets ==")
    for name, ok, detail in targets:
        out.append(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    out.append(f"\nelapsed {results['elapsed_s']:.0f} s")
    return out


if __name__ == "__main__":
    sys.exit(main())
