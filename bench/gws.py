"""GWS outbound benchmark: record operations of N agents, latency from the POST to the CometD acknowledgement.

    /work/main/.venv/bin/python bench/gws.py [--agents 500] [--rates 50,100,200,...] [--duration 15] [--quick]
        [--warmup 3] [--drain 30] [--refine 2] [--p99-limit 100] [--no-twin] [--profile] [--out FILE]

Setup: the gateway is started (pinned to core 0; this client runs on core 1) with a fresh SQLite store
and N agents (plain-text passwords: no scrypt on the measured path). N + 10 contacts are imported through
the jtel REST API (POST /rest/v1.0/1/dialler/contacts/import, bearer token, 8 concurrent clients). Each
agent opens a CometD session over WebSocket (handshake with ext.authentication, first /meta/connect,
subscribe to /v2/me/outbound and /me/internal, then a /meta/connect held by the server and renewed each
time it is answered; the first held connect asks a random timeout of 1-30 s so renewals are spread),
starts a preview session (HTTP Basic; the JSESSIONID cookie is reused afterwards) and gets one record
with GetPreviewRecord, whose recordHandle it learns from the PreviewRecord pushed on its socket.

Load: open loop at a fixed total rate; operation i is due at start + i / rate (never "next after the
previous one") and goes to the agents in turn (round robin). Each operation is a POST of UpdateRecord
on the agent's record with a unique referenceId (the agent keeps its record). Measured per operation:

  ack latency   from just before the POST is handed to aiohttp to the arrival, on that agent's WebSocket,
                of the /v2/me/outbound message with that referenceId (UpdateCallCompletionStatsAcknowledge)
  http latency  from the same instant to the end of the HTTP response body
  lag           how late the POST left compared with its due time (client scheduling)

and checked: HTTP 200 with statusCode 0 (else an error), exactly one ack per operation (missing after the
drain, duplicates), the ack on the socket of the agent that posted it (else a wrong-agent ack), its
notificationType and recordHandle, and the /me/internal twin (GSW_REFERENCE_ID; counted, not a failure).

The rate steps up (--rates) with a warm-up before each measured window; a step fails when p99 of the ack
latency exceeds --p99-limit (100 ms), or an error, missing or wrong-agent ack appears, or less than 95% of
the rate was sent. The ladder stops at the first failing step and then bisects (--refine times) between the
last passing and the first failing rate. Printed per step: achieved ops/s, ack and HTTP p50/p99/max,
gateway CPU% (100% = one core) and RSS (psutil on the gateway pid), this client's CPU%, busy% of both
cores; then PASS/FAIL for the target "p99 <= 25 ms at 200 ops/s" and the highest rate with p99 <= 100 ms
and the rate where it crosses. JSON goes to bench/results/gws-<timestamp>.json (gitignored). --profile runs
the gateway under cProfile (latencies are then inflated) and prints the top functions by tottime and
cumtime. Loopback (127.0.0.1) only; not a test, nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
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
    core_times,
    fmt,
    free_port,
    pct,
    pinned,
    profile_top,
    raise_nofile,
)

TOKEN = "bench-token-0123456789abcdef"
PASSWORD = "pw"
CAMPAIGN = "Bench"
CALLING_LIST = "list1"
APPLICATION_ID = 101
DEVICE_PATH = "/devices/x"
NOTIFICATIONS = "/api/v2/notifications"
OUTBOUND = "/v2/me/outbound"
INTERNAL = "/me/internal"
ACK_KIND = "UpdateCallCompletionStatsAcknowledge"
SERVER_CORE = 0
CLIENT_CORE = 1
TARGET_RATE = 200.0
TARGET_P99_MS = 25.0
IMPORT_CLIENTS = 8
SETUP_CONCURRENCY = 50
HTTP_CONNECTIONS = 512
MIN_ACHIEVED = 0.95
GATEWAY_CONFIG = """\
server: {{host: 127.0.0.1, port: {port}}}
storage: {{url: "{storage}"}}
logging: {{level: warning, format: json}}
bayeux: {{max_sessions_per_browser: -1}}
users:
  - {{name: crm, role: service, token: {token}, clients: [1]}}
{agents}
campaigns:
  - {{id: 1, name: {campaign}, calling_list: {calling_list}, application_id: {app}, agent_group: g, client: 1}}
"""


# --gc-log: the gateway started through this wrapper reports its garbage-collector pauses on stderr.
GC_WRAPPER = """\
import gc, runpy, sys, time
_t = [0.0]
def _cb(phase, info):
    if phase == "start":
        _t[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _t[0]) * 1000
    if info["generation"] == 2 or ms > 10:
        sys.stderr.write(f"GCPAUSE gen={info['generation']} ms={ms:.1f} collected={info['collected']}\\n")
        sys.stderr.flush()
gc.callbacks.append(_cb)
runpy.run_module("gateway", run_name="__main__", alter_sys=True)
"""


def log(msg: str) -> None:
    print(f"[gws {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- machine --------------------------------------------------------------------------------------


def other_benchmarks() -> list[str]:
    """Other benchmark processes (bench/, loadgen, faye) running now, not ours."""
    me = psutil.Process()
    mine = {me.pid, *(p.pid for p in me.children(recursive=True)), *(p.pid for p in me.parents())}
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(p.info["cmdline"] or [])
            if p.pid not in mine and any(k in cmd for k in ("bench/", "loadgen", "faye")):
                found.append(f"pid {p.pid}: {cmd[:120]}")
    return found


def client_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


# -- the gateway ----------------------------------------------------------------------------------


class Gateway(ServerProcess):
    """The gateway under test, pinned to SERVER_CORE, optionally under cProfile."""

    def __init__(
        self,
        workdir: Path,
        agents: int,
        profile: Path | None,
        db_dir: Path | None,
        gc_log: bool = False,
        *,
        extra_config: str = "",
        port: int | None = None,
        db: Path | None = None,
        stderr_name: str = "gateway.stderr",
        storage_url: str | None = None,
    ) -> None:
        """`extra_config`: more top-level YAML (e.g. `replay:`); `port` and `db`: those of a gateway started before
        on this workdir (a restart on the same SQLite file); `storage_url`: another store than that SQLite file
        (e.g. postgresql+psycopg://...; the nodes of bench/nodes.py)."""
        port = port or free_port()
        self.db = db or (db_dir or workdir) / f"gws-bench-{port}.db"
        self.keep_db = False
        config = workdir / f"gws-bench-{port}.yaml"
        users = "\n".join(f"  - {{name: agent{i}, role: agent, password: {PASSWORD}}}" for i in range(agents))
        config.write_text(
            GATEWAY_CONFIG.format(
                port=port,
                storage=storage_url or f"sqlite:///{self.db}",
                token=TOKEN,
                agents=users,
                campaign=CAMPAIGN,
                calling_list=CALLING_LIST,
                app=APPLICATION_ID,
            )
            + extra_config
        )
        cmd = [str(PYTHON)]
        if profile is not None:
            cmd += ["-m", "cProfile", "-o", str(profile)]
        cmd += ["-c", GC_WRAPPER] if gc_log and profile is None else ["-m", "gateway"]
        cmd += ["--config", str(config), "--port", str(port)]
        self.base = f"http://{HOST}:{port}"
        super().__init__(pinned(cmd, SERVER_CORE), port=port, stderr_path=workdir / stderr_name, cwd=ROOT)

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Stop the gateway (see ServerProcess.stop) and remove its database (unless `keep_db`)."""
        lines = super().stop(timeout)
        if self.keep_db:
            return lines
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)
        return lines


# -- load generator -------------------------------------------------------------------------------


@dataclass(eq=False)
class Agent:
    """One agent: its CometD session over WebSocket, its HTTP session cookie and its record."""

    idx: int
    name: str
    ws: aiohttp.ClientWebSocketResponse | None = None
    client_id: str = ""
    cookie: str = ""
    handle: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    record_url: str = ""
    next_id: int = 0
    live: bool = False
    waiters: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    preview: asyncio.Future[dict[str, Any]] | None = None
    reader: asyncio.Task[None] | None = None
    renewals: int = 0
    replay_id: int | None = None  # --replay: the last replayId seen (subscribe baseline or event)


@dataclass(eq=False, slots=True)
class Op:
    """One UpdateRecord: who sent it, when it was due and sent, when the answers came (s)."""

    agent: int
    step: Step | None  # None: warm-up, not measured
    due: float
    sent: float = 0.0
    http_s: float | None = None
    ack_s: float | None = None
    twin: bool = False
    failed: bool = False


@dataclass(eq=False)
class Step:
    """One rate of the ladder."""

    rate: float
    ops: list[Op] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    wrong_agent: int = 0
    duplicates: int = 0
    bad_acks: int = 0
    details: list[str] = field(default_factory=list)
    window_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    cores: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)

    def note(self, detail: str) -> None:
        if len(self.details) < 20:
            self.details.append(detail)

    def stalls(self, slow_ms: float = 50.0, gap_s: float = 0.5) -> list[dict[str, float]]:
        """Bursts of slow acks: operations with ack > slow_ms sent within gap_s of each other."""
        if not self.ops:
            return []
        first = self.ops[0].due
        slow = sorted((op.due - first, (op.ack_s or math.inf) * 1000) for op in self.ops if not op.failed)
        out: list[dict[str, float]] = []
        for at, ms in slow:
            if ms <= slow_ms:
                continue
            if out and at - out[-1]["last_s"] <= gap_s:
                burst = out[-1]
                burst.update(last_s=at, ops=burst["ops"] + 1, max_ms=max(burst["max_ms"], ms))
            else:
                out.append({"at_s": at, "last_s": at, "ops": 1, "max_ms": ms})
        return out

    def summarize(self, p99_limit: float) -> dict[str, Any]:
        ack = [op.ack_s * 1000 for op in self.ops if op.ack_s is not None]
        http = [op.http_s * 1000 for op in self.ops if op.http_s is not None]
        lag = [max(0.0, (op.sent - op.due) * 1000) for op in self.ops if op.sent]
        sent = sorted(op.sent for op in self.ops if op.sent)
        achieved = (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] else 0.0
        # missing: answered 200 but no ack on the socket; unanswered: neither answer nor ack after the drain.
        missing = sum(1 for op in self.ops if op.ack_s is None and op.http_s is not None and not op.failed)
        unanswered = sum(1 for op in self.ops if op.ack_s is None and op.http_s is None and not op.failed)
        errors = sum(self.errors.values())
        twins_missing = sum(1 for op in self.ops if op.ack_s is not None and not op.twin)
        p99 = pct(ack, 99)
        reasons = []
        if p99 is None or p99 > p99_limit:
            reasons.append(f"p99 {fmt(p99)} ms > {p99_limit:g} ms")
        if errors:
            reasons.append(f"{errors} errors")
        if missing:
            reasons.append(f"{missing} missing acks")
        if unanswered:
            reasons.append(f"{unanswered} unanswered after the drain")
        if self.wrong_agent:
            reasons.append(f"{self.wrong_agent} wrong-agent acks")
        if achieved < MIN_ACHIEVED * self.rate:
            reasons.append(f"sent {achieved:.0f}/s < {MIN_ACHIEVED:.0%} of {self.rate:g}/s")
        w = self.window_s or 1.0
        self.result = {
            "stalls": self.stalls(),
            "rate": self.rate,
            "ops": len(self.ops),
            "achieved_per_s": achieved,
            "acked": len(ack),
            "acks_per_s": len(ack) / w,
            "errors": errors,
            "error_kinds": dict(self.errors.most_common(10)),
            "missing_acks": missing,
            "unanswered": unanswered,
            "wrong_agent_acks": self.wrong_agent,
            "duplicate_acks": self.duplicates,
            "bad_acks": self.bad_acks,
            "twins_missing": twins_missing,
            "details": self.details,
            "ack_p50_ms": pct(ack, 50),
            "ack_p90_ms": pct(ack, 90),
            "ack_p99_ms": p99,
            "ack_max_ms": pct(ack, 100),
            "http_p50_ms": pct(http, 50),
            "http_p99_ms": pct(http, 99),
            "http_max_ms": pct(http, 100),
            "lag_p99_ms": pct(lag, 99),
            "lag_max_ms": pct(lag, 100),
            "ack_over_100ms": sum(1 for x in ack if x > 100),
            "window_s": self.window_s,
            "server_cpu_pct": 100 * self.server_cpu_s / w,
            "client_cpu_pct": 100 * self.client_cpu_s / w,
            "core_busy_pct": self.cores,
            "server_rss_mb": self.rss_mb,
            "pass": not reasons,
            "fail_reasons": reasons,
        }
        return self.result


class LoadGen:
    """All agents, their sockets and the open-loop scheduler, in this process's event loop."""

    http_connections = HTTP_CONNECTIONS  # aiohttp's connection limit (WebSockets count against it; 0: none)

    def __init__(self, gateway: Gateway, args: argparse.Namespace) -> None:
        self.gateway = gateway
        self.args = args
        self.base = gateway.base
        self.ws_url = f"ws://{HOST}:{gateway.port}{NOTIFICATIONS}"
        self.agents = [Agent(i, f"agent{i}") for i in range(args.agents)]
        self.ops: dict[str, Op] = {}
        self.step_no = 0
        self.rr = 0
        self.unexpected_acks = 0
        self.connect_failures = 0
        self.closed_sockets = 0
        self.anomalies: list[str] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.http: aiohttp.ClientSession | None = None
        self.replay = bool(getattr(args, "replay", False))
        self.missing_replay_ids = 0  # --replay: events on the agents' channels without data.event.replayId

    def anomaly(self, detail: str) -> None:
        if len(self.anomalies) < 50:
            self.anomalies.append(detail)

    # -- setup -------------------------------------------------------------------------------------

    async def __aenter__(self) -> LoadGen:
        connector = aiohttp.TCPConnector(limit=self.http_connections, limit_per_host=self.http_connections)
        self.http = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # one JSESSIONID per agent, sent by hand
            timeout=aiohttp.ClientTimeout(total=60),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for a in self.agents:
            a.live = False
            if a.ws is not None:
                with contextlib.suppress(Exception):
                    await a.ws.close()
            if a.reader is not None:
                a.reader.cancel()
        for task in list(self.tasks):
            task.cancel()
        if self.http is not None:
            await self.http.close()

    async def import_contacts(self, count: int) -> float:
        assert self.http is not None
        url = f"{self.base}/rest/v1.0/1/dialler/contacts/import?overwriteDuplicates=false"
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        todo = iter(range(count))
        failures: list[str] = []

        async def worker() -> None:
            assert self.http is not None
            for k in todo:
                body = {"DiallerCampaignsID": 1, "Name": f"N{k}", "PhoneNumber1": "+4989123456", "UserData": f"U{k}"}
                async with self.http.post(url, data=orjson.dumps(body), headers=headers) as resp:
                    raw = await resp.read()
                    if resp.status != 200:
                        failures.append(f"HTTP {resp.status}: {raw[:200]!r}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IMPORT_CLIENTS)))
        elapsed = time.perf_counter() - started
        if failures:
            raise RuntimeError(f"{len(failures)} contact imports failed, e.g. {failures[0]}")
        return count / elapsed

    async def send(self, a: Agent, message: dict[str, Any]) -> None:
        assert a.ws is not None
        await a.ws.send_str(orjson.dumps([message]).decode())

    async def meta(self, a: Agent, message: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        a.next_id += 1
        mid = str(a.next_id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        a.waiters[mid] = future
        await self.send(a, {**message, "id": mid})
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            a.waiters.pop(mid, None)

    def connect_message(self, a: Agent, timeout_ms: int | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"channel": "/meta/connect", "clientId": a.client_id, "connectionType": "websocket"}
        if timeout_ms is not None:
            message["advice"] = {"timeout": timeout_ms}
        return message

    async def join(self, a: Agent, replay_from: int | None = None) -> None:
        """Open the agent's CometD session over WebSocket: handshake, first connect, subscribe, held connect.

        With --replay the handshake opts in to replay and each subscribe carries `ext.replay` with
        `replay_from` (default -1: only new events); the agent's replay_id starts at the reply's baseline.
        """
        assert self.http is not None
        a.ws = await self.http.ws_connect(self.ws_url, max_msg_size=0, autoclose=True, autoping=True)
        a.reader = asyncio.create_task(self.read(a))
        ext: dict[str, Any] = {"authentication": {"user": a.name, "password": PASSWORD}}
        if self.replay:
            ext["replay"] = True
        handshake = {
            "channel": "/meta/handshake",
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": ["websocket"],
            "ext": ext,
        }
        reply = await self.meta(a, handshake)
        if not reply.get("successful"):
            raise RuntimeError(f"{a.name}: handshake failed: {reply}")
        if self.replay and (reply.get("ext") or {}).get("replay") is not True:
            raise RuntimeError(f"{a.name}: the gateway did not agree to replay: {reply}")
        a.client_id = str(reply["clientId"])
        reply = await self.meta(a, self.connect_message(a, 0))
        if not reply.get("successful"):
            raise RuntimeError(f"{a.name}: first connect failed: {reply}")
        channels = [OUTBOUND] + ([] if self.args.no_twin else [INTERNAL])
        for channel in channels:
            subscribe: dict[str, Any] = {"channel": "/meta/subscribe", "clientId": a.client_id, "subscription": channel}
            if self.replay:
                subscribe["ext"] = {"replay": {channel: -1 if replay_from is None else replay_from}}
            reply = await self.meta(a, subscribe)
            if not reply.get("successful"):
                raise RuntimeError(f"{a.name}: subscribe {channel} failed: {reply}")
            baseline = ((reply.get("ext") or {}).get("replay") or {}).get(channel)
            if channel == OUTBOUND and isinstance(baseline, int) and baseline > (a.replay_id or -1):
                a.replay_id = baseline
        # Held connects from now on; the first asks 1-30 s so that renewals are spread over time.
        a.live = True
        a.next_id += 1
        await self.send(a, {**self.connect_message(a, random.randint(1000, 30000)), "id": str(a.next_id)})

    async def setup_agent(self, a: Agent) -> None:
        assert self.http is not None
        await self.join(a)

        basic = base64.b64encode(f"{a.name}:{PASSWORD}".encode()).decode()
        campaign_url = f"{self.base}/api/v2/me/outbound-campaigns/{CAMPAIGN}"
        body = {"operationName": "StartPreviewSession", "applicationId": APPLICATION_ID, "devicePath": DEVICE_PATH}
        headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}
        async with self.http.post(campaign_url, data=orjson.dumps(body), headers=headers) as resp:
            raw = await resp.read()
            cookie = resp.cookies.get("JSESSIONID")
            if resp.status != 200 or orjson.loads(raw).get("statusCode") != 0 or cookie is None:
                raise RuntimeError(f"{a.name}: StartPreviewSession: HTTP {resp.status} {raw[:200]!r}")
        a.cookie = cookie.value
        # A desktop's way: the session's CSRF token from a GET, sent with every cookie-authenticated POST
        # (gws.csrf: cookie, the default, refuses a cookie-only change without it).
        async with self.http.get(f"{self.base}/api/v2/me", headers={"Cookie": f"JSESSIONID={a.cookie}"}) as resp:
            await resp.read()
            token = resp.headers.get("X-CSRF-TOKEN")
            if resp.status != 200 or token is None:
                raise RuntimeError(f"{a.name}: GET /api/v2/me gave no CSRF token: HTTP {resp.status}")
        a.headers = {"Cookie": f"JSESSIONID={a.cookie}", "Content-Type": "application/json", "X-CSRF-TOKEN": token}
        a.preview = asyncio.get_running_loop().create_future()
        body = {
            "operationName": "GetPreviewRecord",
            "applicationId": APPLICATION_ID,
            "devicePath": DEVICE_PATH,
            "referenceId": f"setup-{a.idx}",
        }
        async with self.http.post(campaign_url, data=orjson.dumps(body), headers=a.headers) as resp:
            raw = await resp.read()
            if resp.status != 200 or orjson.loads(raw).get("statusCode") != 0:
                raise RuntimeError(f"{a.name}: GetPreviewRecord: HTTP {resp.status} {raw[:200]!r}")
        data = await asyncio.wait_for(a.preview, 20)
        if data.get("notificationType") != "PreviewRecord":
            raise RuntimeError(f"{a.name}: no record for the agent: {data.get('notificationType')}")
        a.handle = int(data["record"]["recordHandle"])
        a.record_url = f"{self.base}/api/v2/me/outbound-records/{a.handle}"

    async def setup(self) -> None:
        todo = iter(self.agents)

        async def worker() -> None:
            for a in todo:
                await self.setup_agent(a)

        await asyncio.gather(*(worker() for _ in range(SETUP_CONCURRENCY)))
        handles = {a.handle for a in self.agents}
        if len(handles) != len(self.agents):
            raise RuntimeError(f"{len(self.agents)} agents hold only {len(handles)} distinct records")

    # -- receiving ---------------------------------------------------------------------------------

    async def read(self, a: Agent) -> None:
        assert a.ws is not None
        async for frame in a.ws:
            now = time.perf_counter()
            if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue
            messages = orjson.loads(frame.data)
            renew = False
            for m in messages if isinstance(messages, list) else [messages]:
                renew |= self.dispatch(a, m, now)
            if renew and a.live:
                a.renewals += 1
                a.next_id += 1
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.send(a, {**self.connect_message(a), "id": str(a.next_id)})
        if a.live:
            self.closed_sockets += 1
            self.anomaly(f"{a.name}: WebSocket closed by the server ({a.ws.close_code})")

    def dispatch(self, a: Agent, m: dict[str, Any], now: float) -> bool:
        """Handle one received message; True when a held /meta/connect was answered (send the next)."""
        channel = m.get("channel")
        if channel is not None and channel.startswith("/meta/"):
            waiter = a.waiters.get(str(m.get("id")))
            if waiter is not None and not waiter.done():
                waiter.set_result(m)
                return False
            if channel == "/meta/connect":
                if m.get("successful"):
                    return True
                self.connect_failures += 1
                self.anomaly(f"{a.name}: connect failed: {m}")
            return False
        data = m.get("data")
        if not isinstance(data, dict):
            return False
        if self.replay and channel in (OUTBOUND, INTERNAL):
            event = data.get("event")
            found = event.get("replayId") if isinstance(event, dict) else None
            if not isinstance(found, int):
                self.missing_replay_ids += 1
            elif channel == OUTBOUND and found > (a.replay_id or -1):
                a.replay_id = found
        if channel == OUTBOUND:
            kind = data.get("notificationType")
            if kind in ("PreviewRecord", "PreviewRecordEmpty") and a.preview is not None and not a.preview.done():
                a.preview.set_result(data)
                return False
            ref = data.get("referenceId")
            if not isinstance(ref, str) or ref.startswith("setup-"):
                return False
            op = self.ops.get(ref)
            if op is None:
                self.unexpected_acks += 1
                self.anomaly(f"{a.name}: ack with unknown referenceId {ref}")
            elif op.agent != a.idx:
                if op.step is not None:
                    op.step.wrong_agent += 1
                    op.step.note(f"ack {ref} of agent{op.agent} arrived on {a.name}")
                self.anomaly(f"ack {ref} of agent{op.agent} arrived on {a.name}")
            elif op.ack_s is not None:
                if op.step is not None:
                    op.step.duplicates += 1
            else:
                op.ack_s = now - op.sent
                record = data.get("record") or {}
                if (kind != ACK_KIND or record.get("recordHandle") != a.handle) and op.step is not None:
                    op.step.bad_acks += 1
                    op.step.note(f"{ref}: {kind} for record {record.get('recordHandle')} (expected {a.handle})")
        elif channel == INTERNAL:
            user_data = data.get("userData") or {}
            ref = user_data.get("GSW_REFERENCE_ID")
            op = self.ops.get(ref) if isinstance(ref, str) else None
            if op is not None:
                if op.agent != a.idx:
                    if op.step is not None:
                        op.step.wrong_agent += 1
                        op.step.note(f"/me/internal twin {ref} of agent{op.agent} arrived on {a.name}")
                else:
                    op.twin = True
        return False

    # -- sending -----------------------------------------------------------------------------------

    def fail(self, op: Op, what: str) -> None:
        op.failed = True
        if op.step is not None:
            op.step.errors[what[:160]] += 1
        else:
            self.anomaly(f"warm-up error: {what[:160]}")

    async def run_op(self, ref: str, op: Op, a: Agent) -> None:
        assert self.http is not None
        body = orjson.dumps(
            {
                "operationName": "UpdateRecord",
                "applicationId": APPLICATION_ID,
                "campaignName": CAMPAIGN,
                "devicePath": DEVICE_PATH,
                "phoneNumber": "+4989123456",
                "referenceId": ref,
            }
        )
        op.sent = time.perf_counter()
        try:
            async with self.http.post(a.record_url, data=body, headers=a.headers) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.fail(op, f"{type(exc).__name__}: {exc}")
            return
        op.http_s = time.perf_counter() - op.sent
        if status != 200:
            self.fail(op, f"HTTP {status}: {raw[:120]!r}")
            return
        try:
            code = orjson.loads(raw).get("statusCode")
        except (orjson.JSONDecodeError, AttributeError):
            code = None
        if code != 0:
            self.fail(op, f"HTTP 200 statusCode {code}: {raw[:120]!r}")

    async def run_rate(self, rate: float, warmup_s: float, duration_s: float, drain_s: float) -> Step:
        """Open loop: operation i due at t0 + i / rate, whatever happened to the earlier ones."""
        self.step_no += 1
        step = Step(rate)
        n_warm = round(rate * warmup_s)
        n_total = n_warm + max(2, round(rate * duration_s))
        cpu0 = client0 = 0.0
        cores0: list[tuple[float, float]] = []
        t_start = 0.0
        t0 = time.perf_counter() + 0.05
        for i in range(n_total):
            due = t0 + i / rate
            if i == n_warm:
                cpu0, client0, cores0, t_start = self.gateway.cpu_s(), client_cpu_s(), core_times(), due
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            a = self.agents[self.rr % len(self.agents)]
            self.rr += 1
            ref = f"r{self.step_no}-{i}-a{a.idx}"
            op = Op(a.idx, step if i >= n_warm else None, due)
            if op.step is not None:
                step.ops.append(op)
            self.ops[ref] = op
            task = asyncio.create_task(self.run_op(ref, op, a))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        t_end = t0 + n_total / rate
        delay = t_end - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        step.window_s = time.perf_counter() - t_start
        step.server_cpu_s = self.gateway.cpu_s() - cpu0
        step.client_cpu_s = client_cpu_s() - client0
        step.cores = busy_pct(cores0, core_times())
        step.rss_mb = self.gateway.rss() / 2**20
        # Drain: every measured operation answered (acked or failed), or the drain time is up.
        deadline = time.perf_counter() + drain_s
        while time.perf_counter() < deadline:
            if all(op.failed or (op.ack_s is not None and op.http_s is not None) for op in step.ops):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # late duplicates or wrong-agent acks
        return step


# -- report ---------------------------------------------------------------------------------------

HEADER = (
    f"{'rate/s':>7} {'sent/s':>7} {'acks':>6} {'err':>4} {'miss':>4} {'wrong':>5} "
    f"{'ack p50':>7} {'p99':>7} {'max':>7} {'http p50':>8} {'p99':>7} {'lag p99':>7} "
    f"{'srv CPU%':>8} {'RSS MB':>6} {'cli CPU%':>8} {'core0%':>6} {'core1%':>6}  verdict"
)


def row(r: dict[str, Any]) -> str:
    cores = r["core_busy_pct"] + [0.0, 0.0]
    verdict = "pass" if r["pass"] else "FAIL: " + "; ".join(r["fail_reasons"])
    return (
        f"{r['rate']:>7g} {r['achieved_per_s']:>7.1f} {r['acked']:>6} {r['errors']:>4} {r['missing_acks']:>4} "
        f"{r['wrong_agent_acks']:>5} {fmt(r['ack_p50_ms']):>7} {fmt(r['ack_p99_ms']):>7} {fmt(r['ack_max_ms']):>7} "
        f"{fmt(r['http_p50_ms']):>8} {fmt(r['http_p99_ms']):>7} {fmt(r['lag_p99_ms']):>7} "
        f"{r['server_cpu_pct']:>8.1f} {r['server_rss_mb']:>6.0f} {r['client_cpu_pct']:>8.1f} "
        f"{cores[0]:>6.0f} {cores[1]:>6.0f}  {verdict}"
    )


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=None, help="agents over WebSocket (500; --quick: 50)")
    parser.add_argument(
        "--rates", default=None, help="total operations/s, ascending (50,100,200,400,800,1600,3200; --quick: 50,200)"
    )
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per rate (15; --quick: 5)")
    parser.add_argument("--warmup", type=float, default=None, help="unmeasured seconds before each rate (3; quick: 1)")
    parser.add_argument("--drain", type=float, default=30.0, help="longest wait for late acks after a rate (s)")
    parser.add_argument(
        "--refine", type=int, default=None, help="bisection steps after the first failure (2; quick: 0)"
    )
    parser.add_argument("--p99-limit", type=float, default=100.0, help="a rate passes with ack p99 <= this (ms)")
    parser.add_argument(
        "--db-dir", type=Path, default=None, help="folder of the gateway's SQLite file (default: a temporary one)"
    )
    parser.add_argument("--gc-log", action="store_true", help="report the gateway's garbage-collector pauses")
    parser.add_argument("--no-twin", action="store_true", help="do not subscribe to /me/internal")
    parser.add_argument("--replay", action="store_true", help="agents opt in to replay (ext.replay, subscribe -1)")
    parser.add_argument("--no-stop", action="store_true", help="run every rate even after a failure")
    parser.add_argument("--profile", action="store_true", help="run the gateway under cProfile and print the top")
    parser.add_argument("--quick", action="store_true", help="50 agents, 50 and 200 ops/s, 5 s each (< 1 minute)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default bench/results/gws-<ts>.json)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.agents = args.agents or (50 if quick else 500)
    args.rates = [float(x) for x in (args.rates or ("50,200" if quick else "50,100,200,400,800,1600,3200")).split(",")]
    args.duration = args.duration if args.duration is not None else (5.0 if quick else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 3.0)
    args.refine = args.refine if args.refine is not None else (0 if quick else 2)
    if quick:
        args.drain = min(args.drain, 10.0)
    return args


async def ladder(gen: LoadGen, args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    async def run(rate: float) -> dict[str, Any]:
        log(f"rate {rate:g}/s: {args.warmup:g} s warm-up + {args.duration:g} s measured")
        step = await gen.run_rate(rate, args.warmup, args.duration, args.drain)
        r = step.summarize(args.p99_limit)
        log(row(r))
        results.append(r)
        await asyncio.sleep(1.0)
        return r

    last_pass: float | None = None
    first_fail: float | None = None
    for rate in args.rates:
        r = await run(rate)
        if r["pass"]:
            last_pass = rate
        elif first_fail is None:
            first_fail = rate
            if not args.no_stop:
                break
    lo = last_pass if last_pass is not None else 0.0
    hi = first_fail
    for _ in range(args.refine):
        if hi is None:
            break
        mid = float(round((lo + hi) / 2 / 10) * 10 if hi - lo > 20 else round((lo + hi) / 2))
        if mid <= lo or mid >= hi:
            break
        r = await run(mid)
        if r["pass"]:
            lo = mid
        else:
            hi = mid
    return results


def verdicts(results: list[dict[str, Any]], args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    out: list[str] = []
    summary: dict[str, Any] = {}
    at_target = [r for r in results if r["rate"] == TARGET_RATE]
    if at_target:
        r = at_target[0]
        ok = (
            r["ack_p99_ms"] is not None
            and r["ack_p99_ms"] <= TARGET_P99_MS
            and not r["errors"]
            and not r["missing_acks"]
            and not r["unanswered"]
            and not r["wrong_agent_acks"]
            and r["achieved_per_s"] >= MIN_ACHIEVED * TARGET_RATE
        )
        out.append(
            f"{'PASS' if ok else 'FAIL'}  ack p99 <= {TARGET_P99_MS:g} ms at {TARGET_RATE:g} ops/s"
            f" ({args.agents} agents):"
            f" p99 {fmt(r['ack_p99_ms'])} ms, p50 {fmt(r['ack_p50_ms'])} ms, sent {r['achieved_per_s']:.1f}/s,"
            f" errors {r['errors']}, missing {r['missing_acks']}, wrong-agent {r['wrong_agent_acks']}"
        )
        summary["target_pass"] = ok
        summary["target_p99_ms"] = r["ack_p99_ms"]
    else:
        out.append(f"n/a   ack p99 <= {TARGET_P99_MS:g} ms at {TARGET_RATE:g} ops/s: that rate was not run")
        summary["target_pass"] = None
    passed = [r["rate"] for r in results if r["pass"]]
    failed = [r for r in results if not r["pass"]]
    best = max(passed) if passed else None
    above = [r for r in failed if best is None or r["rate"] > best]
    cross = min(above, key=lambda r: r["rate"]) if above else None
    summary["highest_pass_rate"] = best
    summary["crossing_rate"] = cross["rate"] if cross else None
    if cross is not None:
        out.append(
            f"info  highest rate with ack p99 <= {args.p99_limit:g} ms (no error, no missing ack):"
            f" {fmt(best, 'g')} ops/s;"
            f" fails at {cross['rate']:g} ops/s ({'; '.join(cross['fail_reasons'])})"
        )
    else:
        out.append(f"info  every rate passed; p99 stays <= {args.p99_limit:g} ms up to {fmt(best, 'g')} ops/s")
    cpu = max((r["client_cpu_pct"] for r in results), default=0.0)
    summary["client_cpu_max_pct"] = cpu
    if cpu > 80:
        out.append(f"WARNING: the load generator used up to {cpu:.0f}% of its core: latencies include client queueing")
    totals = {
        k: sum(r[k] for r in results)
        for k in (
            "errors",
            "missing_acks",
            "unanswered",
            "wrong_agent_acks",
            "duplicate_acks",
            "bad_acks",
            "twins_missing",
        )
    }
    summary["totals"] = totals
    out.append("totals: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    return out, summary


async def amain(args: argparse.Namespace, workdir: Path, profile: Path | None) -> dict[str, Any]:
    gateway = Gateway(workdir, args.agents, profile, args.db_dir, args.gc_log)
    log(f"gateway pid {gateway.proc.pid} on {gateway.base}, affinity {gateway.affinity()}")
    out: dict[str, Any] = {}
    lines: list[str] = []
    try:
        async with LoadGen(gateway, args) as gen:
            imports = args.agents + 10
            rate = await gen.import_contacts(imports)
            log(f"imported {imports} contacts ({rate:.0f}/s)")
            started = time.perf_counter()
            rss0 = gateway.rss()
            await gen.setup()
            log(
                f"{args.agents} agents connected over WebSocket with a record each in "
                f"{time.perf_counter() - started:.1f} s"
                f" (gateway RSS {rss0 / 2**20:.0f} -> {gateway.rss() / 2**20:.0f} MB)"
            )
            out["setup"] = {
                "imports": imports,
                "imports_per_s": rate,
                "setup_s": time.perf_counter() - started,
                "rss_before_agents_mb": rss0 / 2**20,
                "rss_after_agents_mb": gateway.rss() / 2**20,
            }
            out["steps"] = await ladder(gen, args)
            out["anomalies"] = {
                "unexpected_acks": gen.unexpected_acks,
                "connect_failures": gen.connect_failures,
                "closed_sockets": gen.closed_sockets,
                "connect_renewals": sum(a.renewals for a in gen.agents),
                "missing_replay_ids": gen.missing_replay_ids,
                "samples": gen.anomalies,
            }
    finally:
        lines = gateway.stop()
    pauses = [line for line in lines if line.startswith("GCPAUSE ")]
    lines = [line for line in lines if not line.startswith("GCPAUSE ")]
    if args.gc_log:
        gen2 = [float(line.split("ms=")[1].split()[0]) for line in pauses if " gen=2 " in line]
        other = [float(line.split("ms=")[1].split()[0]) for line in pauses if " gen=2 " not in line]
        out["gc"] = {
            "gen2_collections": len(gen2),
            "gen2_max_ms": max(gen2, default=None),
            "gen2_total_ms": sum(gen2),
            "gen2_ms": gen2,
            "young_over_10ms": other,
        }
    out["gateway_log_lines"] = len(lines)
    out["gateway_log"] = lines[:30]
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    nofile = raise_nofile()
    pinned = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    if pinned:
        os.sched_setaffinity(0, {CLIENT_CORE})
    else:
        log("WARNING: no taskset or fewer than 2 cores: gateway and client are not pinned")
    others = other_benchmarks()
    if others:
        log("WARNING: other benchmarks are running; figures will be disturbed:\n  " + "\n  ".join(others))
    load = os.getloadavg()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    profile = results_dir / f"gws-{stamp}.prof" if args.profile else None
    log(
        f"{args.agents} agents, rates {','.join(f'{r:g}' for r in args.rates)}/s, {args.duration:g} s each"
        f" (+{args.warmup:g} s warm-up), open files {nofile}, load average {load[0]:.2f}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="gws-bench-"))
    started = time.time()
    try:
        run = asyncio.run(amain(args, workdir, profile))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    steps = run.get("steps", [])
    lines, summary = verdicts(steps, args)

    print()
    print(
        f"GWS outbound: {args.agents} agents over WebSocket, UpdateRecord open loop; latency = POST -> "
        f"ack on the agent's CometD socket (ms){' [gateway under cProfile]' if profile else ''}"
    )
    print(HEADER)
    for r in steps:
        print(row(r))
    print()
    for line in lines:
        print(line)
    anomalies = run.get("anomalies", {})
    print(
        f"anomalies: unexpected acks {anomalies.get('unexpected_acks')}, connect failures "
        f"{anomalies.get('connect_failures')}, sockets closed {anomalies.get('closed_sockets')}, "
        f"held connects renewed {anomalies.get('connect_renewals')}"
        + (f", events without data.event.replayId {anomalies.get('missing_replay_ids')}" if args.replay else "")
    )
    for r in steps:
        for kind, n in r["error_kinds"].items():
            print(f"  rate {r['rate']:g}: {n} x {kind}")
        for detail in r["details"][:5]:
            print(f"  rate {r['rate']:g}: {detail}")
    for r in steps:
        bursts = r["stalls"]
        if bursts:
            shown = ", ".join(f"{b['at_s']:.1f} s: {b['ops']:.0f} ops up to {b['max_ms']:.0f} ms" for b in bursts[:6])
            more = f" (+{len(bursts) - 6} more)" if len(bursts) > 6 else ""
            print(f"  rate {r['rate']:g}: {len(bursts)} burst(s) of acks > 50 ms (time into the window): {shown}{more}")
    for sample in anomalies.get("samples", [])[:10]:
        print(f"  {sample}")
    print(f"gateway log lines (warning and above): {run.get('gateway_log_lines')}")
    for line in run.get("gateway_log", [])[:5]:
        print(f"  {line[:200]}")
    if "gc" in run:
        gc_info = run["gc"]
        longest = fmt(gc_info["gen2_max_ms"])
        each = ", ".join(f"{x:.0f}" for x in gc_info["gen2_ms"])
        print(
            f"gateway GC: {gc_info['gen2_collections']} full (gen 2) collections, longest {longest} ms,"
            f" total {gc_info['gen2_total_ms']:.0f} ms; each (ms): {each};"
            f" younger collections > 10 ms: {len(gc_info['young_over_10ms'])}"
        )
    if others:
        print("machine NOT idle at start: " + "; ".join(others))
    else:
        print(f"machine: no other benchmark running at start (load average {load[0]:.2f})")

    if profile is not None and profile.exists():
        print()
        for line in profile_top(profile, "gateway profile"):
            print(line)
    out_path = args.out or results_dir / f"gws-{stamp}.json"
    record = {
        "benchmark": "gws",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_s": time.time() - started,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "pinned": pinned,
        "other_benchmarks_at_start": others,
        "load_average_at_start": load,
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "summary": summary,
        **run,
    }
    out_path.write_text(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())
    print(f"results: {out_path}")
    return 0 if summary.get("target_pass") is not False else 1


if __name__ == "__main__":
    sys.exit(main())
