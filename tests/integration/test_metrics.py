"""/metrics in the Prometheus text format: sessions, deliveries, queues, operations, ack latency."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import AGENT_PASSWORD, Gateway
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.jtel_client import Jtel
from tests.integration.raw import RawHttp


async def scrape(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(gw.base + "/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_follow_the_traffic(gw: Gateway, jtel: Jtel) -> None:
    """Sessions by transport, delivered messages, operations by dialect and outcome, ack latency."""
    async with aiohttp.ClientSession() as http:
        raw = RawHttp(gw.url, http)
        await raw.handshake(ext={"authentication": {"user": "supervisor1", "password": "sup-pass"}})
        await raw.connect()
        await raw.send({"channel": "/meta/subscribe", "subscription": "/v2/dialler/contacts"})
        assert (await jtel.import_contact(UserData="M")).status == 200
        assert (await jtel.import_contact(Name=...)).status == 400
        async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as agent:
            await agent.connect()
            await agent.campaign_op("StartPreviewSession")
            await agent.next("PreviewSessionStarted")
            m = await scrape(gw)
    assert m[("gateway_sessions", (("transport", "long-polling"),))] == 1
    assert m[("gateway_sessions", (("transport", "websocket"),))] == 1
    assert m[("gateway_messages_delivered_total", ())] >= 3  # the event, and the agent's two notifications
    assert m[("gateway_operations_total", (("dialect", "jtel"), ("outcome", "ok")))] == 1
    assert m[("gateway_operations_total", (("dialect", "jtel"), ("outcome", "client_error")))] == 1
    assert m[("gateway_operations_total", (("dialect", "gws"), ("outcome", "ok")))] == 1
    assert m[("gateway_operation_ack_seconds_count", (("dialect", "gws"),))] == 1
    assert m[("gateway_queue_depth", ())] >= 0 and m[("gateway_correlation_entries", ())] == 0
    assert m[("gateway_messages_dropped_total", ())] == 0
