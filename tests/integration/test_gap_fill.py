"""Gap fill after a Redis gap: agents on node A, a backend posting their operations on node B (one PostgreSQL,
one Redis). CLIENT KILL TYPE pubsub twice and a Redis restart mid-flow: every operation answered 200 has its
notification at its agent once, in order, for agents that opted into replay and for those that did not."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import pytest
from aiocometd_ng import Client, ConnectionType

from gateway.client import replay_client_options
from tests.chaos.harness import CAMPAIGN, TOKEN, Agent, Workload, tally
from tests.conftest import StartGateway, wait_for
from tests.integration.test_metrics import scrape
from tests.interop.cometd_auth import ExtAuth
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer

AGENTS = 16
SECONDS = 12.0
PAUSE = 0.16  # per agent between operations: about 100 operations/s for 16 agents

pytestmark = pytest.mark.timeout(180)


class PlainAgent(Agent):
    """An agent whose client does not opt into replay: the gateway alone must fill its gaps."""

    async def listen(self, url: str) -> None:
        """Open the session (no replay extension) and collect notifications until cancelled."""
        self.client = Client(
            url, self.transport, connection_timeout=None, ssl=True,
            auth=ExtAuth(user=self.name, password=self.password), **replay_client_options(),
        )  # fmt: skip
        await self.client.open()
        await self.client.subscribe("/v2/me/outbound")
        self.task = asyncio.create_task(self._collect())


def nodes_config(postgres_url: str, redis_url: str) -> dict[str, Any]:
    users: list[dict[str, Any]] = [{"name": "crm", "role": "service", "token": TOKEN, "clients": [1]}]
    users += [{"name": f"agent{i:02d}", "role": "agent", "password": f"pw-{i:02d}"} for i in range(AGENTS)]
    return {
        "users": users,
        "campaigns": [{**CAMPAIGN, "client": 1}],
        "storage": {"url": postgres_url},
        "broker": {"url": redis_url, "reconnect_min_s": 0.05, "reconnect_max_s": 0.5},
    }


async def test_every_answered_operation_arrives_once_across_redis_gaps(
    start_gateway: StartGateway, postgres_server: PostgresServer, redis_url: str, redis_server: RedisServer
) -> None:
    """Agents on A (half replaying, half not; both transports), operations on B; the pub/sub connections
    killed twice and Redis restarted once while the operations flow: nothing lost, nothing twice."""
    extra = nodes_config(postgres_server.create_database(), redis_url)
    a = await start_gateway(extra=extra)
    b = await start_gateway(extra=extra)
    transports = (ConnectionType.WEBSOCKET, ConnectionType.LONG_POLLING)
    agents = [
        (Agent if i % 4 < 2 else PlainAgent)(f"agent{i:02d}", f"pw-{i:02d}", transports[i % 2]) for i in range(AGENTS)
    ]
    async with aiohttp.ClientSession() as http:
        for n in range(AGENTS * 8):
            body = {"DiallerCampaignsID": 1, "Name": f"C{n}", "PhoneNumber1": f"+49{n:08d}"}
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with http.post(b.base + "/rest/v1.0/1/dialler/contacts/import", json=body, headers=headers) as r:
                assert r.status == 200
        await asyncio.gather(*(agent.listen(a.url) for agent in agents))
        await wait_for(lambda: len(a.hub.sessions) == AGENTS)

        async def chaos() -> None:
            for moment in (2.5, 5.0):
                await asyncio.sleep(moment - (asyncio.get_running_loop().time() - began))
                with redis_server.client() as admin:
                    assert admin.client_kill_filter(_type="pubsub") == 2
            await asyncio.sleep(8.0 - (asyncio.get_running_loop().time() - began))
            await asyncio.to_thread(redis_server.restart)

        workload = Workload(b.base, agents, http, seed=12)
        began = asyncio.get_running_loop().time()
        try:
            await asyncio.gather(workload.run(SECONDS, PAUSE), chaos())
            with contextlib.suppress(TimeoutError):  # the assertions below say what is missing
                await wait_for(lambda: tally(agents)["lost"] == 0, timeout=30)
            await asyncio.sleep(1.0)  # a late duplicate would show now
            counts = tally(agents)
        finally:
            await asyncio.gather(*(agent.close() for agent in agents))
    figures = {k: v for k, v in counts.items() if k != "problems"}
    metrics = await scrape(a)
    print(f"\ngap fill: {figures}; node A filled {metrics[('gateway_broker_gap_filled_total', ())]}")
    assert int(counts["ok"]) > 400
    assert metrics[("gateway_broker_gap_fills_total", ())] >= 3
    assert metrics[("gateway_broker_gap_filled_total", ())] > 0  # the log, not luck, closed the gaps
    assert counts["lost"] == counts["duplicated"] == counts["spurious"] == 0, counts["problems"]
    assert counts["problems"] == [], counts["problems"][:10]
