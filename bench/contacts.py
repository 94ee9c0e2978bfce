"""Contacts benchmark: the jtel dialler contacts API of the gateway on a SQLite store of N contacts.

    /work/main/.venv/bin/python bench/contacts.py [--sizes 100000,1000000] [--imports 5000]
        [--retrievals 200] [--lookups 2000] [--phase-limit 60] [--quick] [--keep] [--profile]

For each size (ascending) the store is filled up to that many contacts, the gateway is started on it
(pinned to core 0, this client to core 1), warmed up, then measured over HTTP on loopback with aiohttp
clients (one keep-alive connection each, one request at a time per client):

  retrieve 1000 IDs   POST /contacts {"IDList": 1,000 random existing IDs}, 1 client: p50/p99/max
  lookup userData     GET /contacts/contact?userData= of a random existing contact, 1 client: p50/p99/max
  lookup userData x4  the same with 4 concurrent clients: requests/s
  import new/ovw x4   POST /contacts/import?overwriteDuplicates=true, fresh UserData (the duplicate lookup runs
                      and finds nothing, a contact is inserted), 4 concurrent clients: imports/s
  import new x4       the same with overwriteDuplicates=false (no duplicate lookup)
  import update x4    overwriteDuplicates=true with the UserData of an existing contact (its fields are replaced)

Reads run first, so they see exactly N contacts; the imports then add 2 x --imports + 100 (warm-up)
contacts, which the next size's fill takes into account. A phase sends no new request after --phase-limit
seconds, so a slow operation yields fewer samples (the table says so) instead of an endless run. Every
answer is checked (status 200; 1,000 records with exactly the requested IDs; the one contact with the
requested UserData; an import creates a new ID or keeps the existing one) and failures are counted. The
fill goes through the store's own write path (SqlContactStore.upsert, group-committed, 500 in flight) in a
separate process while the gateway is stopped, with the same fields an import stores (clean_contact of an
import body).

Targets (issue): imports >= 1,000/s; retrieve of 1,000 IDs p99 <= 100 ms; at the largest size every
figure within a factor of 2 of the smallest size. Prints a table per size with the server's CPU time
per phase, the ratios, PASS/FAIL per target and the DB file size; writes JSON to bench/results/
(gitignored). Not a test: nothing here runs in CI. Loopback (127.0.0.1) only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil
from benchlib import (
    BENCH,
    HOST,
    PYTHON,
    ROOT,
    ServerProcess,
    busy_pct,
    child_env_with,
    core_times,
    fmt,
    free_port,
    pct,
    pinned,
    profile_top,
)

TOKEN = "bench-token-0123456789abcdef"
API = "/rest/v1.0/1/dialler"
SERVER_CORE = 0
CLIENT_CORE = 1
CLIENTS = 4
BATCH = 1000
FILL_CONCURRENCY = 500
SEED = 1
WARMUP_LOOKUPS = 20
WARMUP_RETRIEVALS = 3
WARMUP_IMPORTS = 100
GATEWAY_CONFIG = """\
server: {{host: 127.0.0.1, port: {port}}}
storage: {{url: "sqlite:///{db}"}}
logging: {{level: warning, format: json}}
users:
  - {{name: crm, role: service, token: {token}, clients: [1]}}
campaigns:
  - {{id: 1, name: Bench, calling_list: b, application_id: 1, agent_group: g, client: 1}}
jtel: {{max_batch: {batch}}}
"""
IMPORT_NEW_OVERWRITE = "import new/ovw x4"
IMPORT_NEW = "import new x4"
IMPORT_UPDATE = "import update x4"
IMPORT_MIXES = (IMPORT_NEW_OVERWRITE, IMPORT_NEW, IMPORT_UPDATE)
RETRIEVE = "retrieve 1000 IDs"
LOOKUP = "lookup userData"
LOOKUP_X4 = "lookup userData x4"


def log(msg: str) -> None:
    print(f"[contacts {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- contacts -----------------------------------------------------------------------------------


def fill_user_data(k: int) -> str:
    return f"F{k:09d}"


def fill_name(k: int) -> str:
    return f"Contact {k}"


def contact_body(user_data: str, name: str, k: int, comment: str) -> dict[str, Any]:
    """An import body as a CRM would send it: 14 of the jtel client fields set."""
    return {
        "DiallerCampaignsID": 1,
        "Name": name,
        "FirstName": "Anna",
        "Salutation": "Frau",
        "Company": "Beispiel GmbH",
        "Address": "Leopoldstraße 12",
        "PostalCode": "80802",
        "City": "München",
        "Country": "DE",
        "PhoneNumber1": f"+4989{k:09d}",
        "PhoneNumber2": f"+49151{k:09d}",
        "Email": f"{user_data.lower()}@example.com",
        "UserData": user_data,
        "Comment": comment,
    }


# -- fill (separate process, through the store's own write path) --------------------------------


def fill(src: str, url: str, first: int, count: int) -> dict[str, Any]:
    """Add fill contacts first .. first+count-1 with the SqlContactStore.upsert of the gateway in `src`; return
    the time taken and the store's contact count and highest ID afterwards (count 0: just those)."""
    if src not in sys.path:
        sys.path.insert(0, src)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    return asyncio.run(_fill(url, first, count))


async def _fill(url: str, first: int, count: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from gateway.clock import utcnow
    from gateway.log import configure
    from gateway.services.contact_fields import clean_contact
    from gateway.settings import LoggingSettings
    from gateway.store.schema import contacts
    from gateway.store.sql import SqlContactStore

    configure(LoggingSettings(level="warning", format="console"))
    store = SqlContactStore(url=url, sqlite_synchronous="NORMAL")
    await store.open()
    numbers = iter(range(first, first + count))
    step = max(count // 5, 50_000)
    started = time.perf_counter()

    async def worker() -> None:
        for k in numbers:
            user_data = fill_user_data(k)
            data = clean_contact(contact_body(user_data, fill_name(k), k, "filled"))
            await store.upsert(campaign_id=1, user_data=user_data, data=data, overwrite=False, now=utcnow())
            if (k - first + 1) % step == 0:
                log(f"fill: {k - first + 1:,} of {count:,} in {time.perf_counter() - started:.0f} s")

    try:
        await asyncio.gather(*(worker() for _ in range(min(FILL_CONCURRENCY, count))))
        elapsed = time.perf_counter() - started
        total = await store.count()
        with store.engine.connect() as conn:
            max_id = int(conn.execute(sa.select(sa.func.max(contacts.c.id))).scalar() or 0)
    finally:
        await store.close()
    return {
        "added": count,
        "seconds": elapsed,
        "per_s": count / elapsed if elapsed else None,
        "count": total,
        "max_id": max_id,
    }


# -- gateway process ----------------------------------------------------------------------------


class Gateway(ServerProcess):
    """`python -m gateway` on the bench DB, pinned to SERVER_CORE (optionally under cProfile)."""

    def __init__(self, workdir: Path, db: Path, src: Path, profile: Path | None) -> None:
        port = free_port()
        config = workdir / "gateway.yaml"
        config.write_text(GATEWAY_CONFIG.format(port=port, db=db, token=TOKEN, batch=BATCH))
        cmd = [str(PYTHON), *(["-m", "cProfile", "-o", str(profile)] if profile else [])]
        cmd += ["-m", "gateway", "--config", str(config), "--port", str(port)]
        self.base = f"http://{HOST}:{port}{API}"
        super().__init__(
            pinned(cmd, SERVER_CORE),
            port=port,
            stderr_path=workdir / f"gateway-{port}.stderr",
            cwd=workdir,
            env=child_env_with(src),
        )


# -- measurement --------------------------------------------------------------------------------

Check = Callable[[int, bytes], str | None]


@dataclass(slots=True)
class Call:
    """One prepared request and how to judge its answer (None = correct, else what is wrong)."""

    method: str
    path: str
    body: bytes | None
    check: Check


@dataclass(slots=True)
class Phase:
    """What one measured phase saw."""

    name: str
    clients: int
    planned: int
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    core_busy_pct: list[float] = field(default_factory=list)
    stopped_at_limit: bool = False

    def fail(self, problem: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(problem)

    @property
    def rate(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def pct(self, p: float) -> float | None:
        """Nearest-rank percentile of the latencies (ms)."""
        return pct(self.latencies_ms, p)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["latencies_ms"] = [round(x, 3) for x in self.latencies_ms]
        out |= {"rate_per_s": self.rate, "p50_ms": self.pct(50), "p99_ms": self.pct(99), "max_ms": self.pct(100)}
        out["server_cpu_pct"] = 100 * self.server_cpu_s / self.wall_s if self.wall_s else None
        out["client_cpu_pct"] = 100 * self.client_cpu_s / self.wall_s if self.wall_s else None
        return out


async def run_phase(
    name: str, sessions: list[aiohttp.ClientSession], gateway: Gateway, work: list[list[Call]], limit_s: float
) -> Phase:
    """Each session sends its list of calls one at a time; all sessions run concurrently. No new request
    is sent after `limit_s` seconds (the phase is then marked stopped_at_limit)."""
    phase = Phase(name, clients=len(work), planned=sum(map(len, work)))
    deadline = time.perf_counter() + limit_s

    async def client(session: aiohttp.ClientSession, calls: list[Call]) -> None:
        for call in calls:
            started = time.perf_counter()
            if started > deadline:
                phase.stopped_at_limit = True
                return
            try:
                async with session.request(call.method, gateway.base + call.path, data=call.body) as resp:
                    raw = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                phase.requests += 1
                phase.fail(f"{type(exc).__name__}: {exc}")
                continue
            phase.latencies_ms.append((time.perf_counter() - started) * 1000)
            phase.requests += 1
            problem = call.check(status, raw)
            if problem is not None:
                phase.fail(problem)

    cores0, server0, client0 = core_times(), gateway.cpu_s(), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(client(s, calls) for s, calls in zip(sessions, work, strict=True)))
    phase.wall_s = time.perf_counter() - started
    phase.server_cpu_s = gateway.cpu_s() - server0
    phase.client_cpu_s = time.process_time() - client0
    phase.core_busy_pct = busy_pct(cores0, core_times())
    return phase


def split(calls: list[Call], clients: int) -> list[list[Call]]:
    return [calls[i::clients] for i in range(clients)]


def answer(status: int, raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON body of a 200 answer with a records list, else what is wrong."""
    if status != 200:
        return None, f"HTTP {status}: {raw[:200]!r}"
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, f"not JSON: {raw[:200]!r}"
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        return None, f"no records list: {raw[:200]!r}"
    return body, None


@dataclass(slots=True)
class Workload:
    """Builds the calls of each phase; knows which contacts exist."""

    rng: random.Random
    fill_total: int = 0  # fill contacts F000000001 .. F<fill_total>
    max_id: int = 0  # IDs 1 .. max_id exist (no deletes)
    new_numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def retrievals(self, n: int) -> list[Call]:
        calls = []
        for _ in range(n):
            ids = self.rng.sample(range(1, self.max_id + 1), BATCH)
            calls.append(Call("POST", "/contacts", orjson.dumps({"IDList": ids}), self._check_retrieve(set(ids))))
        return calls

    @staticmethod
    def _check_retrieve(wanted: set[int]) -> Check:
        def check(status: int, raw: bytes) -> str | None:
            body, problem = answer(status, raw)
            if body is None:
                return problem
            got = {r.get("ID") for r in body["records"]}
            if body.get("count") != BATCH or len(body["records"]) != BATCH or got != wanted:
                return f"retrieve: count {body.get('count')}, {len(got & wanted)} of {BATCH} requested IDs"
            return None

        return check

    def lookups(self, n: int) -> list[Call]:
        calls = []
        for k in self.rng.choices(range(1, self.fill_total + 1), k=n):
            user_data = fill_user_data(k)
            calls.append(Call("GET", f"/contacts/contact?userData={user_data}", None, self._check_lookup(k)))
        return calls

    @staticmethod
    def _check_lookup(k: int) -> Check:
        def check(status: int, raw: bytes) -> str | None:
            body, problem = answer(status, raw)
            if body is None:
                return problem
            records = body["records"]
            if (
                len(records) != 1
                or records[0].get("UserData") != fill_user_data(k)
                or records[0].get("Name") != fill_name(k)
            ):
                return f"lookup {fill_user_data(k)}: {len(records)} records, first {str(records[:1])[:200]}"
            return None

        return check

    def imports(self, n: int, mix: str) -> list[Call]:
        """Imports of one mix: fresh UserData (overwrite true or false) or existing UserData (update)."""
        calls = []
        if mix == IMPORT_UPDATE:
            for k in self.rng.sample(range(1, self.fill_total + 1), n):
                body = contact_body(fill_user_data(k), fill_name(k), k, f"updated {self.max_id}")
                calls.append(self._import(body, overwrite=True, new=False))
        else:
            for _ in range(n):
                number = next(self.new_numbers)
                body = contact_body(f"N{number:09d}", f"New {number}", number, "imported")
                calls.append(self._import(body, overwrite=mix == IMPORT_NEW_OVERWRITE, new=True))
        return calls

    def _import(self, body: dict[str, Any], *, overwrite: bool, new: bool) -> Call:
        limit = self.max_id

        def check(status: int, raw: bytes) -> str | None:
            answered, problem = answer(status, raw)
            if answered is None:
                return problem
            records = answered["records"]
            if len(records) != 1 or records[0].get("UserData") != body["UserData"]:
                return f"import {body['UserData']}: {str(records)[:200]}"
            contact_id = records[0].get("ID")
            if (
                not isinstance(contact_id, int)
                or (contact_id > limit) != new
                or records[0]["Comment"] != body["Comment"]
            ):
                return (
                    f"import {body['UserData']}: ID {contact_id} ({'new' if new else 'existing'} expected, max {limit})"
                )
            self.max_id = max(self.max_id, contact_id)
            return None

        path = f"/contacts/import?overwriteDuplicates={'true' if overwrite else 'false'}"
        return Call("POST", path, orjson.dumps(body), check)


async def measure(gateway: Gateway, workload: Workload, args: argparse.Namespace) -> list[Phase]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=60)
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), headers=headers, timeout=timeout)
        for _ in range(CLIENTS)
    ]
    phases: list[Phase] = []

    async def phase(name: str, clients: int, calls: list[Call]) -> None:
        log(f"  {name}: {len(calls)} requests, {clients} client(s)")
        phases.append(await run_phase(name, sessions[:clients], gateway, split(calls, clients), args.phase_limit))

    try:
        await phase("warm-up reads", CLIENTS, workload.lookups(WARMUP_LOOKUPS) + workload.retrievals(WARMUP_RETRIEVALS))
        await phase(RETRIEVE, 1, workload.retrievals(args.retrievals))
        await phase(LOOKUP, 1, workload.lookups(args.lookups))
        await phase(LOOKUP_X4, CLIENTS, workload.lookups(args.lookups))
        await phase("warm-up imports", CLIENTS, workload.imports(WARMUP_IMPORTS, IMPORT_NEW_OVERWRITE))
        for mix in IMPORT_MIXES:
            await phase(mix, CLIENTS, workload.imports(args.imports, mix))
        return phases
    finally:
        for session in sessions:
            await session.close()


# -- machine ------------------------------------------------------------------------------------


def other_load(seconds: float = 1.0) -> list[str]:
    """Processes other than this one using more than 5% of a core, sampled over `seconds`."""
    procs = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        if p.pid != os.getpid():
            with contextlib.suppress(psutil.Error):
                p.cpu_percent(None)
                procs.append(p)
    time.sleep(seconds)
    busy = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            used = p.cpu_percent(None)
            if used > 5:
                cmd = " ".join(p.info["cmdline"] or [p.info["name"] or "?"])[:100]
                busy.append(f"pid {p.pid} {used:.0f}% {cmd}")
    return busy


def process_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by every process but this one: pid -> (command, seconds)."""
    found = {}
    for p in psutil.process_iter(["name", "cmdline", "cpu_times"]):
        times = p.info["cpu_times"]
        if p.pid != os.getpid() and times is not None:
            found[p.pid] = (" ".join(p.info["cmdline"] or [p.info["name"] or "?"])[:100], times.user + times.system)
    return found


def others_during(before: dict[int, tuple[str, float]], exclude: int, wall_s: float) -> list[str]:
    """Processes (not this one, not `exclude`) that used more than 1% of a core since `before`."""
    busy = []
    for pid, (cmd, cpu) in process_cpu().items():
        used = cpu - before.get(pid, (cmd, 0.0))[1]
        if pid != exclude and used > max(0.01 * wall_s, 0.1):
            busy.append(f"pid {pid} {used:.1f} CPU-s {cmd}")
    return busy


def versions(src: Path) -> dict[str, str]:
    found = {"sqlite": sqlite3.sqlite_version, "aiohttp": aiohttp.__version__, "python": sys.version.split()[0]}
    found["gateway_src"] = str(src)
    head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--", "gateway"], capture_output=True, text=True
        )
        found["gateway_commit"] = head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")
    return found


def db_bytes(db: Path) -> dict[str, int]:
    return {suffix or "db": p.stat().st_size for suffix in ("", "-wal") if (p := Path(f"{db}{suffix}")).exists()}


# -- report -------------------------------------------------------------------------------------


def size_table(run: dict[str, Any]) -> list[str]:
    fill_info = run["fill"]
    out = [
        f"\n== {run['size']:,} contacts ==",
        f"fill: +{fill_info['added']:,} contacts in {fill_info['seconds']:.1f} s "
        f"({fmt(fill_info['per_s'], ',.0f')}/s) via SqlContactStore.upsert in a separate process; "
        f"store then held {fill_info['count']:,} contacts (max ID {fill_info['max_id']:,})",
        f"{'phase':24} {'clients':>7} {'n':>6} {'errors':>6} {'rate/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'srvCPU s':>8} {'srvCPU%':>7} {'cliCPU%':>7} {'core0%':>6} {'core1%':>6}",
    ]
    for p in run["phases"]:
        cores = p["core_busy_pct"]
        out.append(
            f"{p['name']:24} {p['clients']:>7} {p['requests']:>6} {p['errors']:>6} {fmt(p['rate_per_s'], '.0f'):>8} "
            f"{fmt(p['p50_ms'], '.2f'):>8} {fmt(p['p99_ms'], '.2f'):>8} {fmt(p['max_ms'], '.2f'):>8} "
            f"{p['server_cpu_s']:>8.2f} {fmt(p['server_cpu_pct'], '.0f'):>7} {fmt(p['client_cpu_pct'], '.0f'):>7} "
            f"{fmt(cores[SERVER_CORE] if len(cores) > SERVER_CORE else None, '.0f'):>6} "
            f"{fmt(cores[CLIENT_CORE] if len(cores) > CLIENT_CORE else None, '.0f'):>6}"
        )
    db = run["db_bytes"]
    out.append(
        f"DB file after the gateway stopped: {db.get('db', 0) / 2**20:,.1f} MiB"
        + (f" (+ WAL {db['-wal'] / 2**20:,.1f} MiB)" if db.get("-wal") else "")
        + f"; gateway RSS at the end {run['server_rss'] / 2**20:,.0f} MiB"
        + f"; store held {run['count_after']:,} contacts after the imports"
    )
    for p in run["phases"]:
        cores = p["core_busy_pct"]
        if (
            p["wall_s"] >= 1  # /proc/stat counts in 10 ms ticks: shorter phases are too noisy to judge
            and p["server_cpu_pct"] is not None
            and len(cores) > SERVER_CORE
            and cores[SERVER_CORE] - p["server_cpu_pct"] > 15
        ):
            out.append(
                f"NOTE {p['name']}: core {SERVER_CORE} was busier than the gateway by "
                f"{cores[SERVER_CORE] - p['server_cpu_pct']:.0f} points (softirq or another process)"
            )
        if p["stopped_at_limit"]:
            out.append(
                f"NOTE {p['name']}: stopped at the phase time limit after {p['requests']} of {p['planned']} requests"
            )
        if p["client_cpu_pct"] is not None and p["client_cpu_pct"] >= 90:
            out.append(f"NOTE {p['name']}: the client used {p['client_cpu_pct']:.0f}% of its core (client-bound)")
    if run["server_log"]:
        out.append(
            f"gateway log: {len(run['server_log'])} lines at warning or above, first: {run['server_log'][0][:300]}"
        )
    return out


def figures(run: dict[str, Any]) -> dict[str, tuple[float | None, bool]]:
    """Figure name -> (value, higher is better)."""
    by_name = {p["name"]: p for p in run["phases"]}
    out: dict[str, tuple[float | None, bool]] = {}
    for mix in IMPORT_MIXES:
        out[f"{mix} imports/s"] = (by_name[mix]["rate_per_s"], True)
    for name in (RETRIEVE, LOOKUP):
        out[f"{name} p50 ms"] = (by_name[name]["p50_ms"], False)
        out[f"{name} p99 ms"] = (by_name[name]["p99_ms"], False)
    out[f"{LOOKUP_X4} req/s"] = (by_name[LOOKUP_X4]["rate_per_s"], True)
    return out


def verdicts(runs: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    out: list[str] = []
    targets: list[dict[str, Any]] = []

    def target(name: str, ok: bool, detail: str) -> None:
        targets.append({"target": name, "pass": ok, "detail": detail})

    for run in runs:
        by_name = {p["name"]: p for p in run["phases"]}
        for mix in IMPORT_MIXES:
            rate = by_name[mix]["rate_per_s"]
            target(f"{run['size']:,}: {mix} >= 1,000 imports/s", rate >= 1000, f"{rate:,.0f}/s")
        p99 = by_name[RETRIEVE]["p99_ms"]
        target(f"{run['size']:,}: {RETRIEVE} p99 <= 100 ms", p99 is not None and p99 <= 100, f"{fmt(p99, '.1f')} ms")
    if len(runs) > 1:
        small, big = runs[0], runs[-1]
        fs, fb = figures(small), figures(big)
        label = f"{big['size']:,}/{small['size']:,}"
        out.append(f"\n== ratios {label} (throughput: >= 0.50 passes; latency: <= 2.00 passes) ==")
        out.append(f"{'figure':36} {small['size']:>12,} {big['size']:>12,} {'ratio':>7}")
        for name, (a, higher) in fs.items():
            b = fb[name][0]
            r = b / a if a and b is not None else None
            out.append(f"{name:36} {fmt(a, '.2f'):>12} {fmt(b, '.2f'):>12} {fmt(r, '.2f'):>7}")
            ok = r is not None and (r >= 0.5 if higher else r <= 2.0)
            target(f"{label}: {name} within a factor of 2", ok, f"ratio {fmt(r, '.2f')}")
    out.append("\n== targets ==")
    for t in targets:
        out.append(f"{'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['detail']}")
    return out, targets


# -- main ---------------------------------------------------------------------------------------


def run_size(
    size: int,
    have: int,
    workload: Workload,
    workdir: Path,
    pool: ProcessPoolExecutor,
    args: argparse.Namespace,
    stamp: str,
) -> tuple[dict[str, Any], list[str]]:
    """Fill the store from `have` to `size` contacts, start the gateway on it, measure, stop it."""
    db = workdir / "bench.db"
    url = f"sqlite:///{db}"
    add = max(size - have, 0)
    log(f"size {size:,}: store holds {have:,}, adding {add:,} through SqlContactStore.upsert")
    filled = pool.submit(fill, str(args.src), url, workload.fill_total + 1, add).result()
    workload.fill_total += add
    workload.max_id = filled["max_id"]
    if filled["count"] != filled["max_id"]:
        log(f"WARNING: {filled['count']} contacts but max ID {filled['max_id']}: some sampled IDs may not exist")
    before = process_cpu()
    started = time.perf_counter()
    profile = BENCH / "results" / f"contacts-{stamp}-{size}.prof" if args.profile else None
    gateway = Gateway(workdir, db, args.src, profile)
    log(f"gateway pid {gateway.proc.pid} on port {gateway.port}, measuring")
    try:
        phases = asyncio.run(measure(gateway, workload, args))
        rss = gateway.rss()
    finally:
        lines = gateway.stop()
    busy = others_during(before, gateway.proc.pid, time.perf_counter() - started)
    log(f"other processes using CPU while measuring: {busy or 'none'}")
    count_after = pool.submit(fill, str(args.src), url, workload.fill_total + 1, 0).result()["count"]
    run = {
        "size": size,
        "fill": filled,
        "other_load_while_measuring": busy,
        "phases": [p.summary() for p in phases],
        "server_rss": rss,
        "server_log": lines,
        "db_bytes": db_bytes(db),
        "count_after": count_after,
    }
    extra = profile_top(profile, f"profile {profile.name}") if profile is not None else []
    return run, extra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None, help="store sizes, ascending (100000,1000000)")
    parser.add_argument("--imports", type=int, default=None, help="imports per import mix (5000)")
    parser.add_argument("--retrievals", type=int, default=None, help="batch retrieves of 1,000 IDs (200)")
    parser.add_argument("--lookups", type=int, default=None, help="lookups by userData, per lookup phase (2000)")
    parser.add_argument(
        "--phase-limit", type=float, default=None, help="seconds after which a phase sends no new request (60)"
    )
    parser.add_argument("--quick", action="store_true", help="sizes 10000,20000 and few requests (< 1 minute)")
    parser.add_argument(
        "--src",
        type=Path,
        default=ROOT,
        help="folder holding the gateway package to measure, e.g. a `git archive` of another commit (this repo)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the DB and the gateway logs (path printed)")
    parser.add_argument(
        "--profile", action="store_true", help="run the gateway under cProfile, print the top entries (slows it)"
    )
    args = parser.parse_args()
    args.src = args.src.resolve()
    quick = args.quick
    args.sizes = [int(x) for x in (args.sizes or ("10000,20000" if quick else "100000,1000000")).split(",")]
    args.imports = args.imports or (500 if quick else 5000)
    args.retrievals = args.retrievals or (30 if quick else 200)
    args.lookups = args.lookups or (300 if quick else 2000)
    args.phase_limit = args.phase_limit or (10.0 if quick else 60.0)
    if args.sizes != sorted(args.sizes) or args.sizes[0] < BATCH:
        parser.error(f"--sizes must be ascending and at least {BATCH}")

    pinned = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    if pinned:
        os.sched_setaffinity(0, {CLIENT_CORE})
    else:
        log("WARNING: no taskset or fewer than 2 cores: gateway and client are not pinned")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    busy = other_load()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": dict(vars(args)),
        "machine": {
            "cpus": os.cpu_count(),
            "pinned": pinned,
            "server_core": SERVER_CORE,
            "client_core": CLIENT_CORE,
            "loadavg_at_start": os.getloadavg(),
            "other_load_at_start": busy,
        },
        "versions": versions(args.src),
        "runs": [],
    }
    log(f"load average {os.getloadavg()}; other processes using CPU: {busy or 'none'}")
    workdir = Path(tempfile.mkdtemp(prefix="contacts-bench-"))
    workload = Workload(random.Random(SEED))
    started = time.time()
    extra: list[str] = []
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            for size in args.sizes:
                have = results["runs"][-1]["count_after"] if results["runs"] else 0
                run, top = run_size(size, have, workload, workdir, pool, args, stamp)
                results["runs"].append(run)
                extra += top
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = time.time() - started

    v = results["versions"]
    lines = [
        f"Contacts benchmark: gateway from {v['gateway_src']} ({v.get('gateway_commit', 'not a git checkout')}), "
        f"Python {v['python']}, SQLite {v['sqlite']}, "
        f"aiohttp {v['aiohttp']}; {'gateway on core 0, client on core 1' if pinned else 'not pinned'}; loopback, "
        "keep-alive, one request at a time per client",
        f"per size: {args.retrievals} retrieves of {BATCH} random IDs, {args.lookups} lookups by userData "
        f"(1 client) and {args.lookups} more with {CLIENTS} clients, {args.imports} imports per mix with "
        f"{CLIENTS} clients; warm-ups (not measured): {WARMUP_LOOKUPS} lookups + {WARMUP_RETRIEVALS} retrieves, "
        f"then {WARMUP_IMPORTS} imports; no new request after {args.phase_limit:g} s in a phase",
        "latency = request sent to body fully read (answer parsed and checked after); percentiles nearest-rank",
        f"other processes using > 5% CPU at start: {'; '.join(busy) or 'none'}; "
        f"load average {results['machine']['loadavg_at_start']}",
    ]
    for run in results["runs"]:
        lines += size_table(run)
        others = "; ".join(run["other_load_while_measuring"]) or "none"
        lines.append(f"other processes using > 1% of a core while the gateway ran: {others}")
    report, targets = verdicts(results["runs"])
    lines += report
    errors = sum(p["errors"] for run in results["runs"] for p in run["phases"])
    lines.append(f"errors (non-200, wrong or missing records, connection failures): {errors}")
    for run in results["runs"]:
        for p in run["phases"]:
            for sample in p["error_samples"]:
                lines.append(f"  {run['size']:,} {p['name']}: {sample}")
    if args.profile:
        lines.append(
            "NOTE --profile: the gateway ran under cProfile, its figures above are slowed by the profiler. cProfile "
            "sees the event-loop thread only: time in the store's reader and writer threads (SQLite, row and JSON "
            "decoding) is not in the profile but is in srvCPU"
        )
        lines += extra
    lines.append(f"elapsed {results['elapsed_s']:.0f} s")
    print("\n".join(lines))
    results["targets"] = targets
    results["report"] = lines
    out = BENCH / "results" / f"contacts-{stamp}{'-quick' if quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nresults: {out}")
    return 0 if errors == 0 and all(t["pass"] for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
