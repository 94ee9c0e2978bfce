"""Nothing lost: 50 agents (half WebSocket, half long-polling) through kill -9 of the gateway and through cut-offs.

A backend posts GWS operations and jtel locks of held records with referenceIds at about 100/s for 30 s.
Every operation answered 200 must reach its agent exactly once, in order; none that was refused may.
The counts are printed and written to artifacts/chaos/<scenario>.json (the figures of the closing note).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiocometd_ng import ConnectionType

from tests.chaos.harness import TOKEN, Agent, GatewayProcess, Proxy, Workload, config, tally
from tests.conftest import ROOT, free_port

AGENTS = 50
SECONDS = 30.0
PAUSE = 0.45  # per agent between operations: about 100 operations/s for 50 agents
CONTACTS = 3000

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def gateway(request: pytest.FixtureRequest) -> AsyncIterator[GatewayProcess]:
    # Config, SQLite file and the gateway's log stay in artifacts/chaos/<test>/ for a look after a failure.
    workdir = ROOT / "artifacts" / "chaos" / request.node.name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    port = free_port()
    process = GatewayProcess(config(workdir / "chaos.yaml", port, AGENTS), port, workdir / "gateway.log")
    await process.start()
    yield process
    await process.stop()


async def prepare(gateway: GatewayProcess, http: aiohttp.ClientSession) -> tuple[Proxy, list[Agent]]:
    """Import the contacts, start the proxy and connect every agent through it (replay on)."""
    base = f"http://127.0.0.1:{gateway.port}"
    url = base + "/rest/v1.0/1/dialler/contacts/import"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    semaphore = asyncio.Semaphore(20)

    async def one(n: int) -> None:
        async with (
            semaphore,
            http.post(
                url, json={"DiallerCampaignsID": 1, "Name": f"C{n}", "PhoneNumber1": f"+49{n:08d}"}, headers=headers
            ) as resp,
        ):
            assert resp.status == 200

    await asyncio.gather(*(one(n) for n in range(CONTACTS)))
    proxy = Proxy(gateway.port)
    await proxy.start()
    transports = (ConnectionType.WEBSOCKET, ConnectionType.LONG_POLLING)
    agents = [Agent(f"agent{i:02d}", f"pw-{i:02d}", transports[i % 2]) for i in range(AGENTS)]
    bayeux = f"http://127.0.0.1:{proxy.port}/api/v2/notifications"
    await asyncio.gather(*(agent.listen(bayeux) for agent in agents))
    return proxy, agents


async def settle(agents: list[Agent], timeout: float = 60.0) -> None:
    """Wait until every operation answered 200 has its notification at its agent (or `timeout`)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if tally(agents)["lost"] == 0:
            return
        await asyncio.sleep(0.5)


def report(name: str, counts: dict[str, object], **extra: object) -> None:
    """Print the figures and keep them in artifacts/chaos/."""
    out = ROOT / "artifacts" / "chaos"
    out.mkdir(parents=True, exist_ok=True)
    figures = {**{k: v for k, v in counts.items() if k != "problems"}, **extra}
    (out / f"{name}.json").write_text(json.dumps({**figures, "problems": counts["problems"]}, indent=2))
    print(f"\nchaos {name}: {figures}")


def check(counts: dict[str, object]) -> None:
    problems = counts["problems"]
    assert isinstance(problems, list)
    assert counts.get("lost", 0) == 0 and counts.get("duplicated", 0) == 0 and counts.get("spurious", 0) == 0, problems
    assert problems == [], problems[:10]


async def run(gateway: GatewayProcess, seed: int, chaos: Callable[[Proxy], Awaitable[None]]) -> dict[str, Any]:
    """Connect the agents, run the workload for SECONDS with `chaos` beside it, settle; the tally."""
    async with aiohttp.ClientSession() as http:
        proxy, agents = await prepare(gateway, http)
        workload = Workload(f"http://127.0.0.1:{gateway.port}", agents, http, seed=seed)
        try:
            await asyncio.gather(workload.run(SECONDS, PAUSE), chaos(proxy))
            await settle(agents)
            return tally(agents)
        finally:
            await asyncio.gather(*(agent.close() for agent in agents))
            await proxy.close()


def verify(counts: dict[str, Any]) -> None:
    """The workload really ran (about 100/s), the log closed the gaps, and nothing was lost or doubled."""
    # About 100/s for 30 s, less the restarts (a few seconds each on a loaded machine): never a vacuous run.
    assert int(counts.get("ok", 0)) > 500
    assert int(counts.get("replayed", 0)) > 0  # the log, not luck, closed the gaps
    check(counts)


async def test_kill9_three_times(gateway: GatewayProcess) -> None:
    """kill -9 the gateway three times at random moments; restarted on the same SQLite file, agents resume."""
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(1 << 30)))  # printed: CHAOS_SEED=<n> replays it
    rng = random.Random(seed)

    async def chaos(proxy: Proxy) -> None:
        moments = sorted(rng.uniform(4, SECONDS - 4) for _ in range(3))
        started = asyncio.get_running_loop().time()
        for moment in moments:
            await asyncio.sleep(max(0.0, moment - (asyncio.get_running_loop().time() - started)))
            await gateway.kill9()
            await gateway.start()

    counts = await run(gateway, seed, chaos)
    report("kill9", counts, kills=gateway.kills, seed=seed)
    assert gateway.kills == 3
    verify(counts)


async def test_agents_cut_off_longer_than_max_interval(gateway: GatewayProcess) -> None:
    """Three times every agent's connection goes silent for longer than max_interval, then drops; they resume."""

    async def chaos(proxy: Proxy) -> None:
        began = asyncio.get_running_loop().time()
        for start in (5.0, 14.0, 23.0):
            await asyncio.sleep(start - (asyncio.get_running_loop().time() - began))
            await proxy.cut_off(3.0 + 2.0 + 1.0)  # max_interval 3 s (+ the held connect's 2 s) and more

    counts = await run(gateway, 8, chaos)
    report("cut-off", counts, cut_offs=3)
    verify(counts)
