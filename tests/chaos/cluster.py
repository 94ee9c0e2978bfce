"""Three gateway processes on one PostgreSQL and one Redis, docs/nginx.conf in front, and agents of both kinds.

Builds on harness.py (GatewayProcess, Agent, Workload, tally): aiocometd-ng agents are harness Agents pointed
at nginx; CometD JavaScript agents are js_agent.mjs processes whose JSON lines feed the same Agent records, so
one Workload drives all of them and one tally counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from yarl import URL

from tests.chaos.harness import CAMPAIGN, TOKEN, Agent, GatewayProcess, Workload
from tests.conftest import free_port
from tests.interop.node_client import TESTS, require_node
from tests.servers.nginx import NginxServer

HERE = Path(__file__).resolve().parent


def node_config(path: Path, port: int, agents: int, *, storage: str, redis: str, log: str = "sql") -> Path:
    """One node's config: `agents` agents, the service `crm`, one campaign, the shared store and broker."""
    users: list[dict[str, Any]] = [{"name": "crm", "role": "service", "token": TOKEN, "clients": [1]}]
    users += [{"name": f"agent{i:02d}", "role": "agent", "password": f"pw-{i:02d}"} for i in range(agents)]
    settings = {
        "server": {"host": "127.0.0.1", "port": port},
        # A held connect of 10 s: aiocometd-ng gives a long-poll 1.2 x advice.timeout, and on this loaded machine
        # (three nodes, 30 Node agents, nginx, PostgreSQL, Redis) a reply sent at 2 s can take more than the
        # 0.4 s of slack a 2 s hold leaves; a reply the client gave up on is lost to it (no ack extension).
        "bayeux": {"timeout_ms": 10000, "max_interval_ms": 5000, "sweep_period_ms": 200},
        "logging": {"level": os.environ.get("CHAOS_LOG", "info"), "format": "json"},
        "storage": {"url": storage},
        "broker": {"url": redis, "reconnect_min_s": 0.05, "reconnect_max_s": 0.5},
        "replay": {"backend": log},
        "users": users,
        "campaigns": [{**CAMPAIGN, "client": 1}],
    }
    path.write_text(yaml.safe_dump(settings))
    return path


@dataclass
class Cluster:
    """The nodes (gw1, gw2, gw3 in nginx's words) and nginx."""

    nodes: list[GatewayProcess]
    nginx: NginxServer

    @property
    def base(self) -> str:
        """Everything through nginx."""
        return self.nginx.base

    async def stop(self) -> None:
        """nginx, then every node (any process still running is killed)."""
        await asyncio.to_thread(self.nginx.stop)
        await asyncio.gather(*(node.stop() for node in self.nodes))


def node_processes(workdir: Path, agents: int, *, storage: str, redis: str, log: str = "sql") -> list[GatewayProcess]:
    """Three nodes, not started: their configs and logs in `workdir` (emptied first)."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    nodes = []
    for n in range(1, 4):
        port = free_port()
        config = node_config(workdir / f"gw{n}.yaml", port, agents, storage=storage, redis=redis, log=log)
        nodes.append(GatewayProcess(config, port, workdir / f"gw{n}.log"))
    return nodes


async def start_cluster(workdir: Path, agents: int, *, storage: str, redis: str, log: str = "sql") -> Cluster:
    """Three nodes (their configs and logs in `workdir`; the log in SQL or in Redis Streams) and nginx."""
    nodes = node_processes(workdir, agents, storage=storage, redis=redis, log=log)
    # Sequentially: the first one migrates the schema (the others would wait for its advisory lock anyway).
    for node in nodes:
        await node.start()
    nginx = NginxServer(workdir / "nginx", [node.port for node in nodes])
    await asyncio.to_thread(nginx.start)
    return Cluster(nodes, nginx)


def node_of(agent: Agent) -> str | None:
    """The node nginx keeps an aiocometd-ng agent on (its GW_NODE cookie), if it has one."""
    session = getattr(agent.client, "_http_session", None) if agent.client is not None else None
    if session is None:
        return None
    found = session.cookie_jar.filter_cookies(URL("http://localhost/")).get("GW_NODE")
    return found.value if found is not None else None


@dataclass
class JsAgent(Agent):
    """An agent whose session is the CometD JavaScript client in a Node process (js_agent.mjs)."""

    proc: asyncio.subprocess.Process | None = None
    reader: asyncio.Task[None] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    async def listen(self, url: str) -> None:
        """Start the Node agent and wait until it subscribed."""
        self.proc = await asyncio.create_subprocess_exec(
            require_node(), str(HERE / "js_agent.mjs"), url, self.transport.value, self.name, self.password,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            cwd=TESTS,
        )  # fmt: skip
        self.reader = asyncio.create_task(self._read())
        for _ in range(300):
            if any(s.get("event") == "subscribed" and s.get("successful") for s in self.steps):
                return
            if self.reader.done():
                break
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} (CometD JS, {self.transport.value}) did not subscribe: {self.steps[-5:]}")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(raw)
                if event.get("event") != "message":
                    self.steps.append(event)
                    continue
                if event.get("type") is None:
                    continue
                self.received.append({k: event.get(k) for k in ("replayId", "type", "ref", "handle", "replayed")})
                self.arrived.set()

    async def close(self) -> None:
        """Ask the agent to disconnect, then make sure the process is gone."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(ConnectionError):
                proc.stdin.write(b"exit\n")
                await proc.stdin.drain()
            try:
                await asyncio.wait_for(proc.wait(), 3)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self.reader is not None:
            await self.reader

    def subscriptions(self) -> list[str]:
        """What the JS agent reported: its last handshake and subscribe steps."""
        return [json.dumps(s) for s in self.steps[-4:]]


class ClusterWorkload(Workload):
    """The harness workload through nginx: a 502/504 is nginx saying the node died with the request (unknown)."""

    async def _call(self, method: str, url: str, body: Any, headers: dict[str, str]) -> str:
        try:
            async with self.http.request(
                method, url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=15)
            ) as resp:
                await resp.read()
                if resp.status in (502, 504):
                    return "unknown"  # sent to a node that died before answering: applied or not
                return "ok" if resp.status == 200 else "refused"
        except aiohttp.ClientConnectorError:
            return "refused"
        except (aiohttp.ClientError, TimeoutError):
            return "unknown"
