"""/metrics in the Prometheus text format: sessions, deliveries, queues, operations, ack latency."""

from __future__ import annotations

import asyncio
import os
import shutil

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import AGENT_PASSWORD, Gateway
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.jtel_client import Jtel
from tests.integration.raw import RawHttp


async def scrape_text(gw: Gateway) -> str:
    """GET /metrics: the exposition text."""
    async with aiohttp.ClientSession() as http, http.get(gw.base + "/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        return await resp.text()


async def scrape(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = await scrape_text(gw)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_follow_the_traffic(gw: Gateway, jtel: Jtel) -> None:
    """Sessions by transport, delivered messages, operations by dialect and outcome, ack latency."""
    # A jar that keeps the browser cookie at 127.0.0.1: the session is bound to it (or to credentials).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
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


def promtool() -> str:
    """promtool (Debian's prometheus package; `make test` installs it as root). Missing: a skip, under CI a failure."""
    found = shutil.which(os.environ.get("PROMTOOL", "promtool"))
    if found is None:
        reason = "promtool not found (apt-get install prometheus; `make test` installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


async def promtool_check(text: str) -> tuple[int, str]:
    """`promtool check metrics` of `text` (its lint findings make it exit non-zero): exit code and output."""
    proc = await asyncio.create_subprocess_exec(
        promtool(),
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(text.encode()), 30)
    return proc.returncode or 0, out.decode()


async def test_metrics_pass_promtool_check(gw: Gateway, jtel: Jtel) -> None:
    """`promtool check metrics` finds nothing, on a fresh gateway and after traffic (every family has samples:
    sessions of both transports, operations ok and refused, an acknowledgement latency)."""
    code, out = await promtool_check(await scrape_text(gw))
    assert code == 0 and not out.strip(), out
    # A jar that keeps the browser cookie at 127.0.0.1: the session is bound to it (or to credentials).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        raw = RawHttp(gw.url, http)
        await raw.handshake(ext={"authentication": {"user": "supervisor1", "password": "sup-pass"}})
        await raw.connect()
        assert (await jtel.import_contact(UserData="M")).status == 200
        assert (await jtel.import_contact(Name=...)).status == 400
        async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as agent:
            await agent.connect()
            await agent.campaign_op("StartPreviewSession")
            await agent.next("PreviewSessionStarted")
            text = await scrape_text(gw)
    assert 'gateway_sessions{transport="websocket"}' in text and "gateway_operation_ack_seconds_bucket" in text
    code, out = await promtool_check(text)
    assert code == 0 and not out.strip(), out
