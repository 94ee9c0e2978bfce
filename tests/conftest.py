"""Shared fixtures: real gateways on real loopback sockets, the test identities, and small waiting helpers."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from gateway.app import BAYEUX, HUB, PROTOCOL, create_app, make_site
from gateway.bayeux.protocol import BayeuxProtocol
from gateway.bayeux.security import SecurityPolicy
from gateway.bayeux.server import BayeuxServer
from gateway.hub.hub import Hub
from gateway.settings import Settings
from tests.integration.jtel_client import Jtel

# Servers the tests start themselves, as session fixtures (postgres_server, redis_server and redis_url).
pytest_plugins = ["tests.servers.postgres", "tests.servers.redis"]

ROOT = Path(__file__).resolve().parent.parent

# Fast settings for tests: short holds and expiry so the suite runs in seconds.
FAST_BAYEUX: dict[str, Any] = {
    "timeout_ms": 2000,
    "max_interval_ms": 3000,
    "sweep_period_ms": 200,
    "client_publish": ["/chat/**", "/bench/**"],
}


@dataclass
class Gateway:
    """A running gateway: its URLs and (in-process only) its internals."""

    base: str
    path: str
    app: web.Application | None = None

    @property
    def url(self) -> str:
        """The Bayeux endpoint over HTTP."""
        return self.base + self.path

    @property
    def ws_url(self) -> str:
        """The Bayeux endpoint over WebSocket (wss:// for an https:// gateway)."""
        return "ws" + self.url.removeprefix("http")

    @property
    def hub(self) -> Hub:
        """The in-process hub."""
        assert self.app is not None
        return self.app[HUB]

    @property
    def server(self) -> BayeuxServer:
        """The in-process server API (publish, deliver to a user or session)."""
        assert self.app is not None
        return self.app[BAYEUX]

    @property
    def protocol(self) -> BayeuxProtocol:
        """The in-process protocol."""
        assert self.app is not None
        return self.app[PROTOCOL]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(*, db: Path, extra: dict[str, Any] | None = None, **bayeux: Any) -> Settings:
    """Settings with the fast test defaults, a database file, `bayeux` overrides and other sections."""
    raw: dict[str, Any] = {
        "bayeux": {**FAST_BAYEUX, **bayeux},
        "logging": {"level": "warning"},
        "storage": {"url": f"sqlite:///{db}"},
        **(extra or {}),
    }
    return Settings.model_validate(raw)


StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[StartGateway]:
    """Start in-process gateways on real loopback sockets: `await start_gateway(timeout_ms=500)`.

    `extra={...}` adds config sections (users, campaigns, ...); `db=` picks the database file.
    """
    runners: list[web.AppRunner] = []

    async def start(
        *,
        policy: SecurityPolicy | None = None,
        extra: dict[str, Any] | None = None,
        db: Path | None = None,
        **bayeux: Any,
    ) -> Gateway:
        settings = make_settings(db=db or tmp_path / f"gw-{len(runners)}.db", extra=extra, **bayeux)
        app = create_app(settings, policy=policy)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        port = free_port()
        await make_site(runner, "127.0.0.1", port).start()
        runners.append(runner)
        scheme = "https" if settings.server.tls.enabled else "http"
        return Gateway(base=f"{scheme}://127.0.0.1:{port}", path=settings.bayeux.path, app=app)

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> Gateway:
    """One in-process gateway with the fast test settings."""
    return await start_gateway()


def write_config(path: Path, port: int, *, extra: dict[str, Any] | None = None, **bayeux: Any) -> Path:
    """Write a config file for a subprocess gateway (its database beside the file unless `extra` says)."""
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "bayeux": {**FAST_BAYEUX, **bayeux},
        "logging": {"level": "info", "format": "json"},
        "storage": {"url": f"sqlite:///{path.with_suffix('.db')}"},
        **(extra or {}),
    }
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m gateway ARGS…` to its end (text output captured, `stdin` given)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=30
    )


async def gateway_command(*args: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """Run `python -m gateway ARGS…` from the checkout as a subprocess (kwargs go to create_subprocess_exec)."""
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", *args, cwd=ROOT, **kwargs)


async def listening(port: int, proc: asyncio.subprocess.Process) -> None:
    """Wait until a gateway subprocess accepts connections on `port` (fail if it exits first)."""
    for _ in range(300):
        if proc.returncode is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise TimeoutError(f"gateway not listening on {port}")


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `predicate` until true (for state that settles asynchronously)."""
    end = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > end:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


# Identities and campaigns for the REST dialects (tests only; the demo users are in config.yaml).
CRM_TOKEN = "crm-test-token-0123456789abcdef"
OTHER_TOKEN = "other-test-token-0123456789abcd"
SUPERVISOR_TOKEN = "supervisor-test-token-012345678"
AGENT_PASSWORD = "agent1-test-password"
IDENTITIES: dict[str, Any] = {
    "users": [
        {"name": "crm", "role": "service", "token": CRM_TOKEN, "clients": [1]},
        {"name": "other", "role": "service", "token": OTHER_TOKEN, "clients": [2]},
        {
            "name": "supervisor1",
            "role": "supervisor",
            "token": SUPERVISOR_TOKEN,
            "password": "sup-pass",
            "clients": [1],
        },
        {
            "name": "agent1",
            "role": "agent",
            "password": AGENT_PASSWORD,
            "token": "agent1-token-0123456789abcdef",
            "device": "5c0c2f1e-6f1b-4d7a-9a3e-1b2c3d4e5f60",
            "skills": ["english"],
            "clients": [1],
        },
        {"name": "agent2", "role": "agent", "password": "agent2-test-password"},
    ],
    "campaigns": [
        {
            "id": 1,
            "name": "Retention",
            "calling_list": "ret",
            "application_id": 101,
            "agent_group": "g1",
            "client": 1,
            "jtel": {"ContactPreviewTime": 5},
        },
        {"id": 2, "name": "Callbacks", "calling_list": "cb", "application_id": 102, "agent_group": "g2"},
        {
            "id": 3,
            "name": "Other Client",
            "calling_list": "oc",
            "application_id": 103,
            "agent_group": "g3",
            "client": 2,
        },
    ],
}


@pytest.fixture
async def gw(start_gateway: StartGateway) -> Gateway:
    """A gateway with the test identities and campaigns."""
    return await start_gateway(extra=IDENTITIES)


@pytest.fixture
async def jtel(gw: Gateway) -> AsyncIterator[Jtel]:
    """A jtel client of `gw` acting as the crm service (ClientsID 1)."""
    async with aiohttp.ClientSession() as http:
        yield Jtel(http, gw.base, CRM_TOKEN)
