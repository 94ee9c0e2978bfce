"""Rooms benchmark: every delivery counted, per message, at the CometD benchmark's shape (long-polling).

    .venv/bin/python bench/rooms.py --quick        # 200 clients, 20 rooms, 10 rooms each, 200 publishes/s
    .venv/bin/python bench/rooms.py                # 1,000 clients, 100 rooms, 10 rooms each, 1,000 publishes/s

N long-polling clients (bench/loadgen.js, mode `rooms`, pinned to core 1) each subscribe to K of R rooms
(`/bench/room/<k>`); messages with unique ids are published at a total rate P, each by a random client
over its second keep-alive connection (or by WebSocket publishers: `--pub-transport ws`). At the end the
load generator compares, per message, the room's subscribers with the clients that received it: missing,
duplicates, unexpected copies, and examples of missing deliveries placed in the client's connect history.
The gateway (core 0) is read for `gateway_messages_dropped_total` / `_delivered_total` before it stops.
Not a test: nothing here runs in CI. Loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchlib import BENCH, fmt, raise_nofile
from fanout import CLIENT_CORE, SERVERS, Server, clk_tck, run_loadgen, versions


def log(msg: str) -> None:
    print(f"[rooms {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def gateway_counters(port: int) -> dict[str, float]:
    """The hub's delivery counters from /metrics (empty when unreachable)."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            name, _, value = line.partition(" ")
            if name in ("gateway_messages_dropped_total", "gateway_messages_delivered_total", "gateway_queue_depth"):
                found[name] = float(value)
    return found


def run(kind: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    server = Server(kind, workdir, args.max_queue)
    log(f"{kind} pid {server.pid} on {server.url}")
    cfg = {
        "mode": "rooms",
        "transport": "long-polling",
        "subscribers": args.clients,
        "rooms": args.rooms,
        "rooms_per_client": args.rooms_per_client,
        "rates": [args.rate],
        "duration_s": args.duration,
        "drain_s": args.drain,
        "settle_s": 1,
        "payload_bytes": args.payload,
        "pub_transport": args.pub_transport,
        "ws_publishers": args.ws_publishers,
        "pub_connect_early": not args.lazy_pub_connections,
        "concurrency": 100,
        "setup_timeout_s": 180,
        "stagger_connects": True,
        "examples": args.examples,
        "url": server.url,
        "server_pid": server.pid,
        "clk_tck": clk_tck(),
        "label": kind,
        "hard_limit_s": 300 + args.duration + args.drain,
    }
    try:
        done = run_loadgen(cfg, 330 + args.duration + args.drain)
        counters = gateway_counters(server.port) if kind == "gateway" else {}
    finally:
        alive = server.proc.poll() is None
        lines = server.stop(timeout=10)
    return {
        "server": kind,
        "result": done["result"],
        "counters": counters,
        "problems": done.get("problems", []),
        "problem_count": done.get("problem_count", 0),
        "server_alive_at_end": alive,
        "server_log": [ln for ln in lines if '"no_users_configured"' not in ln and '"desktop_unavailable"' not in ln][
            :20
        ],
    }


def report(runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> tuple[list[str], bool]:
    out = [
        f"Rooms benchmark: {args.clients} long-polling clients, {args.rooms} rooms, {args.rooms_per_client} per "
        f"client, {args.rate} publishes/s for {args.duration:g} s (publishers: {args.pub_transport}), "
        f"drain <= {args.drain:g} s",
        f"{'server':8} {'pub/s':>7} {'acks ok':>8} {'expected':>9} {'received':>9} {'late':>6} {'missing':>7} "
        f"{'dup':>4} {'unexp':>5} {'deliv/s':>8} {'p50 ms':>7} {'p99 ms':>8} {'srvCPU%':>7} {'cliCPU%':>7} "
        f"{'core0%':>6} {'core1%':>6}",
    ]
    ok = True
    for kind, run_ in runs.items():
        r = run_["result"]
        out.append(
            f"{kind:8} {fmt(r['publish_rate']):>7} {r['acks_ok']:>8} {r['expected']:>9} {r['received']:>9} "
            f"{r['received_late']:>6} {r['missing']:>7} {r['duplicates']:>4} {r['unexpected']:>5} "
            f"{fmt(r['delivered_per_s'], '.0f'):>8} {fmt(r['p50_ms'], '.1f'):>7} {fmt(r['p99_ms'], '.1f'):>8} "
            f"{fmt(r['server_cpu_pct'], '.0f'):>7} {fmt(r['client_cpu_pct'], '.0f'):>7} "
            f"{fmt(r['cores'].get('cpu0'), '.0f'):>6} {fmt(r['cores'].get('cpu1'), '.0f'):>6}"
        )
    for kind, run_ in runs.items():
        r = run_["result"]
        out.append(
            f"{kind}: {r['clients']} clients up in {r['setup_s']:.1f} s ({r['setup_failed']} failed), "
            f"{r['subscribers_per_room']:.0f} subscribers per room; publishes acked ok {r['acks_ok']}, failed "
            f"{r['acks_failed']}, unanswered {r['acks_missing']} of {r['published']} (not accepted: "
            f"{r['not_accepted_delivered']} of their {r['not_accepted_expected']} deliveries arrived); events "
            f"arrived in {json.dumps(r['via'])} responses; drain {r['drain_s']:.2f} s; "
            f"sessions lost {r['lost_sessions']:g}; "
            f"{r['reordered']} deliveries arrived after a higher-numbered message of the same room (publishes and "
            "deliveries travel over several connections; a count by sequence number would call them lost), "
            f"{r['reordered_same_publisher']} after a higher-numbered message of the same publisher"
        )
        out.append(
            f"{kind}: missing if the count had stopped this long after the last publish: "
            + ", ".join(f"{k} {v}" for k, v in r["missing_if_counted_at"].items())
        )
        if run_["counters"]:
            out.append(f"{kind} /metrics: " + ", ".join(f"{k} {v:g}" for k, v in run_["counters"].items()))
        if r["drain_timed_out"]:
            out.append(
                f"WARNING {kind}: the drain ended at its deadline ({args.drain:g} s) with deliveries or publish "
                "replies outstanding: the server was behind, what is missing may still be in flight (raise --drain)"
            )
        if r["missing"]:
            out.append(
                f"{kind}: {r['missing']} deliveries missing from {r['messages_with_missing']} messages at "
                f"{r['clients_with_missing']} clients ({r['missing_published_in_last_second']} published in the last "
                "second of the window); examples (times in ms from the window start):"
            )
            out += [f"  {json.dumps(e)}" for e in r["examples"]]
        if run_["problem_count"]:
            out.append(f"{kind}: {run_['problem_count']} protocol problems, e.g. {run_['problems'][:3]}")
        if run_["server_log"]:
            out.append(f"{kind}: server log: {run_['server_log'][:3]}")
        if not run_["server_alive_at_end"]:
            out.append(f"{kind}: server process died during the run")
        passed = r["missing"] == 0 and r["duplicates"] == 0 and r["unexpected"] == 0 and r["acks_ok"] == r["published"]
        ok = ok and passed
        out.append(f"{'PASS' if passed else 'FAIL'}  {kind}: every accepted publish delivered once to every subscriber")
    return out, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 clients, 20 rooms, 200/s, 5 s (< 1 minute)")
    parser.add_argument("--clients", type=int, default=None, help="long-polling clients (1000)")
    parser.add_argument("--rooms", type=int, default=None, help="rooms (100)")
    parser.add_argument("--rooms-per-client", type=int, default=10, help="rooms each client subscribes to (10)")
    parser.add_argument("--rate", type=int, default=None, help="publishes per second in total (1000)")
    parser.add_argument("--duration", type=float, default=None, help="publishing seconds (15)")
    parser.add_argument("--drain", type=float, default=10.0, help="max seconds to wait for late deliveries (10)")
    parser.add_argument("--payload", type=int, default=64, help="padding bytes in each message (64)")
    parser.add_argument("--pub-transport", choices=("lp", "ws"), default="lp", help="who publishes (lp: clients)")
    parser.add_argument("--ws-publishers", type=int, default=4, help="WebSocket publishers with --pub-transport ws")
    parser.add_argument(
        "--lazy-pub-connections",
        action="store_true",
        help="open each client's publish connection with its first publish (a connection storm in the window)",
    )
    parser.add_argument("--max-queue", type=int, default=10000, help="gateway bayeux.max_queue (10000)")
    parser.add_argument("--examples", type=int, default=10, help="missing deliveries shown (10)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per server (1)")
    parser.add_argument("--servers", default="gateway", help="servers to run: gateway,faye")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path (bench/results/...)")
    args = parser.parse_args()
    q = args.quick
    args.clients = args.clients or (200 if q else 1000)
    args.rooms = args.rooms or (20 if q else 100)
    args.rate = args.rate or (200 if q else 1000)
    args.duration = args.duration or (5.0 if q else 15.0)

    if shutil.which("node") is None or shutil.which("taskset") is None:
        print("rooms: needs node and taskset on PATH", file=sys.stderr)
        return 2
    if not (BENCH / "node_modules" / "ws").is_dir():
        print("rooms: run `npm ci --prefix bench` first", file=sys.stderr)
        return 2
    raise_nofile()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(CLIENT_CORE)})
    servers = [s for s in args.servers.split(",") if s in SERVERS]
    workdir = Path(tempfile.mkdtemp(prefix="rooms-"))
    results: dict[str, Any] = {"config": {k: str(v) for k, v in vars(args).items()}, "versions": versions(), "runs": []}
    all_ok = True
    try:
        for i in range(args.repeat):
            runs = {kind: run(kind, workdir, args) for kind in servers}
            lines, ok = report(runs, args)
            all_ok = all_ok and ok
            if args.repeat > 1:
                lines.insert(0, f"\n== run {i + 1}/{args.repeat} ==")
            print("\n".join(lines), flush=True)
            results["runs"].append({"runs": runs, "report": lines})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out = args.out or BENCH / "results" / f"rooms-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if q else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
