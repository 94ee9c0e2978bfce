"""What bench/soak.py and bench/storm.py share: users with real password hashes, the gateway, /metrics, counts.

The clients themselves are in bench/lightclient.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import BENCH, HOST, PYTHON, ROOT, ServerProcess, free_port

from gateway.credentials import hash_password

TOKEN = "bench-token-0123456789abcdef"
CAMPAIGN = "Bench"
APPLICATION_ID = 101
DEVICE_PATH = "/devices/x"
BAYEUX = "/api/v2/notifications"
OUTBOUND = "/v2/me/outbound"
HASHES = BENCH / "results" / "password-hashes.json"
Message = dict[str, Any]


def password(i: int) -> str:
    """Agent i's password (each agent its own, each hashed with its own salt)."""
    return f"soak-pw-{i:05d}"


def password_hashes(count: int) -> list[str]:
    """`count` scrypt hashes at the gateway's default cost (`gateway hash-password`), cached in bench/results/.

    Hashing 2,000 passwords costs ~100 s of CPU; the cache keeps reruns from paying it again. The cost is the
    real one: the gateway checks each at the parameters stored in the hash.
    """
    cached: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        cached = list(json.loads(HASHES.read_text()))
    if len(cached) < count:
        with multiprocessing.Pool(os.cpu_count() or 1) as pool:
            cached += pool.map(hash_password, [password(i) for i in range(len(cached), count)])
        HASHES.parent.mkdir(exist_ok=True)
        HASHES.write_text(json.dumps(cached))
    return cached[:count]


def gateway_config(
    port: int, db: Path, agents: int, extra_users: str = "", bayeux: str = "", password_nice: int | None = None
) -> str:
    """YAML for a gateway with `agents` hashed-password agents (agent0...), one service and the Bench campaign."""
    users = "\n".join(
        f'  - {{name: agent{i}, role: agent, password_hash: "{h}"}}' for i, h in enumerate(password_hashes(agents))
    )
    return (
        f"server: {{host: {HOST}, port: {port}}}\n"
        f'storage: {{url: "sqlite:///{db}"}}\n'
        "logging: {level: warning, format: json}\n"
        f'bayeux: {{max_sessions_per_browser: -1, client_publish: ["/bench/**"]{bayeux}}}\n'
        f"users:\n  - {{name: crm, role: service, token: {TOKEN}, clients: [1]}}\n{users}\n{extra_users}"
        f"campaigns:\n  - {{id: 1, name: {CAMPAIGN}, calling_list: list1, application_id: {APPLICATION_ID}, "
        "agent_group: g, client: 1}\n"
        + ("" if password_nice is None else f"security: {{password_nice: {password_nice}}}\n")
    )


def start_gateway(workdir: Path, config: str, port: int | None = None, log_name: str = "gateway.stderr") -> Gateway:
    """A `python -m gateway` process on `config` (not pinned: its password pool may use both cores)."""
    port = port or free_port()
    path = workdir / f"gateway-{port}.yaml"
    path.write_text(config)
    cmd = [str(PYTHON), "-m", "gateway", "--config", str(path), "--port", str(port)]
    return Gateway(cmd, port=port, stderr_path=workdir / log_name, cwd=ROOT)


class Gateway(ServerProcess):
    """The gateway under test: its RSS from /proc and its /metrics."""

    @property
    def base(self) -> str:
        """http://host:port"""
        return f"http://{HOST}:{self.port}"

    def vm_rss_mb(self) -> float:
        """VmRSS from /proc/<pid>/status, in MiB (0 when the process is gone)."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def log_text(self) -> str:
        """Everything the gateway wrote on stderr so far."""
        return self.stderr_path.read_text(errors="replace")


def metrics(base: str) -> dict[str, float]:
    """/metrics as {'name{labels}': value}, plus each name's sum over its labels under 'name' (blocking)."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if not line or line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
            name = key.partition("{")[0]
            if name != key:
                out[name] = out.get(name, 0.0) + float(value)
    return out


def basic(user: str, secret: str) -> str:
    """An Authorization: Basic header value."""
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


class Counters:
    """Client-side counts shared by every client of a run (5xx, errors by kind)."""

    def __init__(self) -> None:
        self.http_5xx = 0
        self.errors: dict[str, int] = {}
        self.examples: dict[str, str] = {}  # the first of each kind

    def status(self, status: int, what: str) -> None:
        """Count a 5xx answer."""
        if status >= 500:
            self.http_5xx += 1
            self.error(f"{what}: HTTP {status}")

    def error(self, what: str) -> None:
        """Count an unexpected outcome (the kind is the text before the first ':')."""
        kind = what.split(":", 1)[0]
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.examples.setdefault(kind, what[:240])


def client_session(limit: int = 0, **connector: Any) -> aiohttp.ClientSession:
    """An aiohttp session without a cookie jar (cookies are sent by hand, per Bayeux or GWS session)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, **connector),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=90),
    )


async def gather_limited(count: int, concurrency: int, one: Callable[[int], Any]) -> list[BaseException]:
    """Run one(i) for i in range(count), `concurrency` at a time; the exceptions raised."""
    todo = iter(range(count))
    failures: list[BaseException] = []

    async def worker() -> None:
        for i in todo:
            try:
                await one(i)
            except (aiohttp.ClientError, TimeoutError, RuntimeError, OSError) as exc:
                failures.append(exc)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures
