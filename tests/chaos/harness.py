"""The chaos harness: a gateway process to kill, a TCP proxy to black-hole, agents that count what arrives.

Each agent works serially (one operation at a time), so what it must receive is known exactly: every
operation answered 200 produces one notification at its agent, in order; a refused one (an HTTP error
status, or a connection that never opened) produces none; one whose answer was lost with the process
(`unknown`) produces at most one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiocometd_ng import Client, ConnectionType

from gateway.client import ReplayExtension, replay_client_options, replay_id
from tests.chaos.trace import Trace, stack
from tests.conftest import free_port, gateway_command, listening
from tests.interop.cometd_auth import ExtAuth

OUTBOUND = "/v2/me/outbound"
TOKEN = "chaos-service-token-0123456789"
CAMPAIGN = {"id": 1, "name": "Retention", "calling_list": "ret", "application_id": 101, "agent_group": "g1"}


def config(path: Path, port: int, agents: int) -> Path:
    """A gateway config: `agents` agents (agent00...), the service `crm`, one campaign, SQLite beside the file."""
    users: list[dict[str, Any]] = [{"name": "crm", "role": "service", "token": TOKEN, "clients": [1]}]
    users += [{"name": f"agent{i:02d}", "role": "agent", "password": f"pw-{i:02d}"} for i in range(agents)]
    settings = {
        "server": {"host": "127.0.0.1", "port": port},
        "bayeux": {"timeout_ms": 2000, "max_interval_ms": 3000, "sweep_period_ms": 200},
        # info: sessions created, connected and removed stay in artifacts/chaos/<test>/gateway.log for a failed run.
        "logging": {"level": os.environ.get("CHAOS_LOG", "info"), "format": "json"},
        "storage": {"url": f"sqlite:///{path.with_suffix('.db')}"},
        "users": users,
        "campaigns": [{**CAMPAIGN, "client": 1}],
    }
    path.write_text(yaml.safe_dump(settings))
    return path


class GatewayProcess:
    """`python -m gateway` on a fixed port: started, killed with SIGKILL, started again on the same file."""

    def __init__(self, config_path: Path, port: int, log: Path) -> None:
        self.config_path, self.port, self.log = config_path, port, log
        self.proc: asyncio.subprocess.Process | None = None
        self.started: list[asyncio.subprocess.Process] = []
        self.kills = 0

    async def start(self) -> None:
        """Start and wait until it listens."""
        with self.log.open("ab") as out:
            self.proc = await gateway_command("--config", str(self.config_path), stdout=out, stderr=out)
        self.started.append(self.proc)
        await listening(self.port, self.proc)

    async def kill9(self) -> None:
        """SIGKILL, then wait for the process to be gone."""
        assert self.proc is not None
        if self.proc.returncode is not None:
            raise RuntimeError(f"the gateway exited by itself with {self.proc.returncode}: see {self.log}")
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self.kills += 1

    async def stop(self) -> None:
        """SIGTERM (graceful), or SIGKILL after 10 s; any earlier process still running (a failed start,
        an interrupted kill) is killed too, so no test leaves a gateway behind."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for proc in self.started:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


class Proxy:
    """A TCP relay in front of the gateway that can cut its clients off: relay nothing, then drop everything."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._open = asyncio.Event()
        self._open.set()
        self._pairs: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        self.drop()

    def drop(self) -> None:
        """Close every relayed connection (both sides)."""
        for writer in list(self._pairs):
            writer.transport.abort()
        self._pairs.clear()

    async def cut_off(self, seconds: float) -> None:
        """Relay nothing for `seconds` (sockets stay open, nothing is sent), then drop every connection."""
        self._open.clear()
        await asyncio.sleep(seconds)
        self.drop()
        self._open.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._pairs |= {writer, up_writer}
        pipes = {asyncio.create_task(self._pipe(reader, up_writer)), asyncio.create_task(self._pipe(up_reader, writer))}
        # One side gone (a FIN, or a reset: a killed gateway with unread bytes resets), both go, as a load balancer
        # does: waiting for both would keep the client's side open forever while it waits for an answer.
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for w in (writer, up_writer):
            self._pairs.discard(w)
            w.transport.abort()
        await asyncio.gather(*pipes, return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await self._open.wait()  # while cut off, nothing reaches the other side
            if writer.transport.is_closing():
                break
            writer.write(data)
            await writer.drain()


@dataclass
class Op:
    """One operation the harness ran and how it ended."""

    agent: str
    kind: str
    key: str  # the referenceId, or "cancel:<handle>" for a lock's RecordCancel
    outcome: str = "pending"  # ok, refused, unknown


@dataclass
class Agent:
    """One agent: a CometD session with replay (through the proxy) counting /v2/me/outbound, and its REST work."""

    name: str
    password: str
    transport: ConnectionType
    received: list[dict[str, Any]] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    started: bool = False
    client: Client | None = None
    task: asyncio.Task[None] | None = None
    replay: ReplayExtension = field(default_factory=lambda: ReplayExtension(start=-1))
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    trace: Trace = field(default_factory=Trace)
    failure: str | None = None  # why the collector stopped, if it did

    async def listen(self, url: str) -> None:
        """Open the session and collect notifications until cancelled.

        connection_timeout=None: aiocometd-ng 0.5.6's timeout task calls asyncio.wait_for(loop=...), a
        TypeError on Python 3.10+; without it the client retries until the gateway is back.
        """
        self.client = Client(
            url, self.transport, connection_timeout=None, ssl=True,
            auth=ExtAuth(user=self.name, password=self.password), extensions=[self.replay, self.trace],
            **replay_client_options(),
        )  # fmt: skip
        await self.client.open()
        await self.client.subscribe(OUTBOUND)
        self.task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        assert self.client is not None
        while True:
            try:
                message = await self.client.receive()
            except Exception as error:  # the report says why this agent stopped receiving
                self.failure = f"{time.time():.3f} {error!r}"
                raise
            if message.get("channel") != OUTBOUND:
                continue
            data = message["data"]
            record = data.get("record") or {}
            self.received.append(
                {
                    "replayId": replay_id(message),
                    "type": data["notificationType"],
                    "ref": data.get("referenceId"),
                    "handle": record.get("recordHandle"),
                    "replayed": bool((message.get("ext") or {}).get("replayed")),
                }
            )
            self.arrived.set()

    async def wait_for(self, ref: str, timeout: float) -> dict[str, Any] | None:
        """The notification carrying `ref`, once it arrived (None after `timeout`)."""
        end = asyncio.get_running_loop().time() + timeout
        while True:
            for item in self.received:
                if item["ref"] == ref:
                    return item
            remaining = end - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), min(remaining, 0.5))

    async def close(self) -> None:
        """Stop collecting and close the session."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.close(), 5)

    def subscriptions(self) -> list[str]:
        """The channels the client believes it is subscribed to (it resubscribes these after a re-handshake)."""
        return sorted(self.client.subscriptions) if self.client is not None else []

    def diagnosis(self) -> str:
        """Everything the client knows about its connection: for an agent that lost notifications."""
        client = self.client
        transport = getattr(client, "_transport", None)
        state = getattr(transport, "state", None)
        collecting = "no task" if self.task is None else ("stopped" if self.task.done() else "running")
        last = self.received[-1] if self.received else None
        return (
            f"{self.name}: collector {collecting} ({self.failure}), transport {state}, "
            f"clientId {getattr(transport, 'client_id', None)}, replay ids {dict(self.replay.ids)}, "
            f"enabled {self.replay.enabled}, last received {last}, "
            f"connect task: {stack(getattr(transport, '_connect_task', None))}, "
            f"receive task: {stack(getattr(transport, '_receive_task', None))}, "
            f"pending exchanges: {list(getattr(transport, '_pending_exhanges', {}))}, "
            "meta trace:\n  " + "\n  ".join(self.trace.entries)
        )

    def basic(self) -> dict[str, str]:
        """The Authorization header of the agent's REST calls."""
        return {"Authorization": "Basic " + base64.b64encode(f"{self.name}:{self.password}".encode()).decode()}


class Workload:
    """Runs every agent's serial loop of GWS operations and service locks against the gateway's REST API."""

    def __init__(self, base: str, agents: list[Agent], http: aiohttp.ClientSession, seed: int) -> None:
        self.base, self.agents, self.http = base, agents, http
        self.random = random.Random(seed)
        self.counter = 0

    async def run(self, seconds: float, pause: float) -> None:
        """Each agent works for `seconds`, pausing `pause` (+-50%) between operations."""
        end = asyncio.get_running_loop().time() + seconds
        await asyncio.gather(*(self._agent(agent, end, pause) for agent in self.agents))

    async def _agent(self, agent: Agent, end: float, pause: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < end:
            if not agent.started:
                op = await self._gws(agent, "StartPreviewSession", "/outbound-campaigns/Retention", {})
                agent.started = op.outcome == "ok"
            elif not agent.held:
                op = await self._gws(agent, "GetPreviewRecord", "/outbound-campaigns/Retention", {})
                if op.outcome == "ok":
                    got = await agent.wait_for(op.key, 30)
                    if got is not None and got["type"] == "PreviewRecord":
                        agent.held.append(got["handle"])
                elif op.outcome == "refused":
                    agent.started = False  # a restart forgot the preview session
            else:
                handle = agent.held.pop()
                if self.random.random() < 0.5:
                    body = {"campaignName": "Retention", "callingList": "ret"}
                    await self._gws(agent, "RejectRecord", f"/outbound-records/{handle}", body)
                else:
                    await self._lock(agent, handle)
            await asyncio.sleep(pause * self.random.uniform(0.5, 1.5))

    def _ref(self, agent: Agent) -> str:
        self.counter += 1
        return f"{agent.name}-{self.counter}"

    async def _gws(self, agent: Agent, name: str, path: str, fields: dict[str, Any]) -> Op:
        op = Op(agent.name, name, self._ref(agent))
        agent.ops.append(op)
        body = {"operationName": name, "applicationId": 101, "devicePath": "/devices/none", "referenceId": op.key}
        op.outcome = await self._call("POST", self.base + "/api/v2/me" + path, {**body, **fields}, agent.basic())
        return op

    async def _lock(self, agent: Agent, handle: int) -> Op:
        # The service locks a record the agent holds: the agent must get one RecordCancel for it.
        op = Op(agent.name, "LockContact", f"cancel:{handle}")
        agent.ops.append(op)
        url = f"{self.base}/rest/v1.0/1/dialler/contacts/contact/{handle}/lock?referenceId=lock-{handle}"
        op.outcome = await self._call("PATCH", url, None, {"Authorization": f"Bearer {TOKEN}"})
        return op

    async def _call(self, method: str, url: str, body: Any, headers: dict[str, str]) -> str:
        try:
            async with self.http.request(
                method, url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=15)
            ) as resp:
                await resp.read()
                return "ok" if resp.status == 200 else "refused"
        except aiohttp.ClientConnectorError:
            return "refused"  # never reached the gateway: nothing was applied
        except (aiohttp.ClientError, TimeoutError):
            return "unknown"  # sent, and the answer was lost (the process died meanwhile)


def tally(agents: list[Agent]) -> dict[str, Any]:
    """What every agent should have got against what it got; every figure the test asserts on."""
    figures = ("ok", "refused", "unknown", "received", "replayed", "lost", "duplicated", "spurious")
    counts: Counter[str] = Counter(dict.fromkeys(figures, 0))
    problems: list[str] = []
    for agent in agents:
        keys = [r["ref"] if r["type"] != "RecordCancel" else f"cancel:{r['handle']}" for r in agent.received]
        ids = [r["replayId"] for r in agent.received if r["replayId"] is not None]  # None: not replaying
        got = Counter(keys)
        counts["received"] += len(keys)
        counts["replayed"] += sum(1 for r in agent.received if r["replayed"])
        # A key may be due more than once (the same record locked again after it came back): count what exceeds it.
        due = Counter(op.key for op in agent.ops if op.outcome in ("ok", "unknown"))
        for key, n in got.items():
            extra = n - max(due.get(key, 0), 1)
            if extra > 0:
                counts["duplicated"] += extra
                copies = [r for r in agent.received if key in (r["ref"], f"cancel:{r['handle']}")]
                problems.append(f"{agent.name}: {key} arrived {n} times for {due.get(key, 0)} operations: {copies}")
        if len(set(ids)) != len(ids):
            problems.append(f"{agent.name}: a replayId arrived twice")
        if ids != sorted(ids):
            at = next(i for i in range(1, len(ids)) if ids[i] < ids[i - 1])
            around = agent.received[max(0, at - 3) : at + 3]
            problems.append(f"{agent.name}: replayIds out of order at {at}: {around}")
        expected = [op.key for op in agent.ops if op.outcome == "ok"]
        for op in agent.ops:
            counts[op.outcome] += 1
            n = got.get(op.key, 0)
            if op.outcome == "ok" and n == 0:
                counts["lost"] += 1
                problems.append(
                    f"{agent.name}: {op.kind} {op.key} answered 200, never notified "
                    f"(the client's subscriptions: {agent.subscriptions()})"
                )
            elif op.outcome == "refused" and n:
                counts["spurious"] += 1
                problems.append(f"{agent.name}: {op.kind} {op.key} refused, yet notified")
        if any(op.outcome == "ok" and got.get(op.key, 0) == 0 for op in agent.ops):
            problems.append(agent.diagnosis())
        known = {op.key for op in agent.ops}
        counts["spurious"] += sum(1 for k in keys if k not in known)
        wanted = set(expected)
        in_order = [k for k in keys if k in wanted]
        if in_order != expected:
            problems.append(f"{agent.name}: notifications not in the order of the operations")
    return {**counts, "problems": problems}
