"""Waiting-field benchmark: CreateContact throughput and routing punctuality.

Starts the gateway (core 0) on a fresh SQLite file with several queues, creates N waiting contacts over HTTP
from concurrent clients (core 1), each due a few seconds after its creation, then waits until every contact was
routed and reads them back. Prints CreateContact/s and the distribution of routing lateness
(routedAt - willBeRoutedAt: how late each timer fired and its routing was stored). Targets (issue): at least
1,000 CreateContact/s; p99 lateness at most 1 s with 10,000 contacts waiting.

    .venv/bin/python bench/waitfield.py [--contacts 10000] [--clients 8] [--wait 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from benchlib import HOST, PYTHON, ROOT, ServerProcess, free_port, pct, pinned, raise_nofile

TOKEN = "bench-token-0123456789abcdef"
QUEUES = ("Q1", "Q2", "Q3", "Q4")


def config(port: int, db: Path, wait_s: int) -> str:
    queues = "\n".join(
        f"    - {{name: {q}, skills: [], campaign: 1, settings: {{waitingFieldMultiplier: 0, "
        f"minimumWaitingTime: {wait_s}, maximumWaitingTime: 600}}}}"
        for q in QUEUES
    )
    return (
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        f"storage: {{url: 'sqlite:///{db}'}}\n"
        "logging: {level: warning, format: json}\n"
        f"users:\n  - {{name: crm, role: service, token: {TOKEN}, clients: [1]}}\n"
        "campaigns:\n  - {id: 1, name: Callbacks, calling_list: cb, application_id: 1, agent_group: g, client: 1}\n"
        f"waitfield:\n  queues:\n{queues}\n"
    )


def stamp(value: str) -> datetime:
    """SNtial's 7-digit timestamp, as a datetime (the 7th digit is always 0 here)."""
    return datetime.fromisoformat(value[:26] + value[27:])


def start_gateway(work: Path, wait_s: int) -> ServerProcess:
    """The gateway on core 0, on a fresh database."""
    port = free_port()
    cfg = work / "gateway.yaml"
    cfg.write_text(config(port, work / "wf.db", wait_s))
    cmd = pinned([str(PYTHON), "-m", "gateway", "--config", str(cfg)], 0)
    return ServerProcess(cmd, port=port, stderr_path=work / "gateway.stderr", cwd=ROOT, listen_timeout=20.0)


async def run(args: argparse.Namespace, gateway: ServerProcess) -> dict[str, Any]:
    server = gateway.ps
    base = f"http://{HOST}:{gateway.port}/api/v1/SNtialWait"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    errors: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        per_client = args.contacts // args.clients

        async def client(c: int) -> None:
            for i in range(per_client):
                body = orjson.dumps(
                    {
                        "externalId": f"c{c}-{i}",
                        "callingNumber": f"+49170{c:03d}{i:06d}",
                        "calledNumber": "08001234",
                        "queue": QUEUES[(c + i) % len(QUEUES)],
                        "additional": {"KDNR": str(i)},
                    }
                )
                async with http.post(base + "/contact", data=body, headers=headers) as resp:
                    if resp.status != 200:
                        errors.append(f"{resp.status} {await resp.text()}")
                    await resp.read()

        cpu0 = server.cpu_times()
        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(args.clients)))
        create_s = time.perf_counter() - started
        cpu1 = server.cpu_times()
        created = per_client * args.clients
        # Every contact becomes due `wait` s after its creation: wait for the last one and its routing.
        deadline = time.monotonic() + args.wait + 60
        waiting = created
        while time.monotonic() < deadline:
            async with http.get(base + "/contacts", params={"state": "waiting"}, headers=headers) as resp:
                waiting = len((await resp.json())["item"])
            if waiting == 0:
                break
            await asyncio.sleep(0.5)
        cpu2 = server.cpu_times()
        async with http.get(base + "/contacts", headers=headers) as resp:
            items = (await resp.json())["item"]
    rss = server.memory_info().rss
    lateness = [(stamp(i["routedAt"]) - stamp(i["willBeRoutedAt"])).total_seconds() for i in items if i["routedAt"]]
    early = [x for x in lateness if x < 0]
    return {
        "contacts": created,
        "clients": args.clients,
        "wait_s": args.wait,
        "create_per_s": created / create_s,
        "create_s": create_s,
        "create_errors": len(errors),
        "first_errors": errors[:3],
        "server_cpu_create_pct": 100 * (sum(cpu1[:2]) - sum(cpu0[:2])) / create_s,
        "server_cpu_total_s": sum(cpu2[:2]) - sum(cpu0[:2]),
        "server_rss_mb": rss / 1e6,
        "routed": len(lateness),
        "not_routed": created - len(lateness),
        "routed_early": len(early),
        "lateness_p50_s": statistics.median(lateness) if lateness else None,
        "lateness_p99_s": pct(lateness, 99) if lateness else None,
        "lateness_max_s": max(lateness) if lateness else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--wait", type=int, default=5, help="seconds each contact waits before routing")
    parser.add_argument("--quick", action="store_true", help="1,000 contacts (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.contacts = 1000
    raise_nofile()
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        os.sched_setaffinity(0, {1})
    work = Path(tempfile.mkdtemp(prefix="wf-bench-"))
    gateway = start_gateway(work, args.wait)
    try:
        result = asyncio.run(run(args, gateway))
    finally:
        gateway.stop(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"waiting field: {result['contacts']} contacts, {result['clients']} clients, due {result['wait_s']} s "
        "after creation (gateway on core 0, clients on core 1)"
    )
    print(
        f"  CreateContact/s        {result['create_per_s']:8.0f}   ({result['create_s']:.1f} s, "
        f"{result['create_errors']} errors, server CPU {result['server_cpu_create_pct']:.0f}%)"
    )
    print(
        f"  routed                 {result['routed']:8d}   (not routed: {result['not_routed']}, "
        f"early: {result['routed_early']})"
    )
    if result["routed"]:
        print(
            f"  lateness p50 / p99 / max  {result['lateness_p50_s'] * 1000:.0f} / "
            f"{result['lateness_p99_s'] * 1000:.0f} / {result['lateness_max_s'] * 1000:.0f} ms"
        )
    print(f"  server RSS             {result['server_rss_mb']:8.0f} MB")
    checks = [
        ("CreateContact/s >= 1000", result["create_per_s"] >= 1000),
        ("p99 lateness <= 1 s", result["lateness_p99_s"] is not None and result["lateness_p99_s"] <= 1.0),
        (
            "every contact routed, none early, no errors",
            result["not_routed"] == 0 and result["routed_early"] == 0 and result["create_errors"] == 0,
        ),
    ]
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"waitfield-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=1))
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
