"""A gateway on PostgreSQL (the server the tests start): jtel import, a GWS agent's record and its
acknowledgement with a replayId from the log in PostgreSQL, the REST catch-up; and what check-config and a
start without a reachable PostgreSQL say."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import (
    AGENT_PASSWORD,
    CRM_TOKEN,
    IDENTITIES,
    Gateway,
    StartGateway,
    free_port,
    gateway_command,
    run_cli,
    write_config,
)
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.jtel_client import Jtel
from tests.integration.raw import Message, RawHttp
from tests.servers.postgres import PostgresServer

OUTBOUND = "/v2/me/outbound"
AUTH1 = {"authentication": {"user": "agent1", "password": AGENT_PASSWORD}}


@pytest.fixture
async def pg_gateway(start_gateway: StartGateway, postgres_server: PostgresServer) -> Gateway:
    """A gateway with the test identities, its store a new PostgreSQL database."""
    return await start_gateway(extra={**IDENTITIES, "storage": {"url": postgres_server.create_database()}})


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A jar that keeps the BAYEUX_BROWSER cookie at 127.0.0.1: it is what binds a long-polling session.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def next_event(client: RawHttp, kind: str) -> Message:
    """Connect until an outbound event of `kind` arrives."""
    for _ in range(10):
        for m in await client.connect():
            if m.get("channel") == OUTBOUND and m.get("data", {}).get("notificationType") == kind:
                return m
    raise AssertionError(f"no {kind}")


async def test_import_reserve_reject_replay_on_postgresql(pg_gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """jtel import -> GetPreviewRecord -> RejectRecord: the acknowledgement carries its replayId, and the REST
    catch-up returns it from the log in PostgreSQL."""
    jtel = Jtel(http, pg_gateway.base, CRM_TOKEN)
    imported = await jtel.import_contact(UserData="PG-1", PhoneNumber1="+4930123")
    assert imported.status == 200, imported.body
    contact_id = imported.body["records"][0]["ID"]
    client = RawHttp(pg_gateway.url, http)
    assert (await client.handshake(ext={**AUTH1, "replay": True}))["successful"]
    await client.connect()
    subscribed = await client.send(
        {"channel": "/meta/subscribe", "subscription": OUTBOUND, "ext": {"replay": {OUTBOUND: -1}}}
    )
    assert subscribed[0]["successful"], subscribed
    async with Agent(pg_gateway.base, "agent1", AGENT_PASSWORD, DEVICE1) as agent:
        assert (await agent.campaign_op("StartPreviewSession")).status == 200
        await next_event(client, "PreviewSessionStarted")
        assert (await agent.campaign_op("GetPreviewRecord")).status == 200
        record = await next_event(client, "PreviewRecord")
        handle = record["data"]["record"]["recordHandle"]
        assert handle == contact_id
        assert (await agent.record_op(handle, "RejectRecord", reference="rej-1")).status == 200
        ack = await next_event(client, "RecordRejectAcknowledge")
        replay_id = ack["data"]["event"]["replayId"]
        assert isinstance(replay_id, int) and replay_id > record["data"]["event"]["replayId"]
        caught_up = await agent.get("/notifications?after=-2")
    assert caught_up.status == 200, caught_up.body
    by_id = {n["data"]["event"]["replayId"]: n for n in caught_up.body["notifications"]}
    assert by_id[replay_id]["data"]["notificationType"] == "RecordRejectAcknowledge"
    assert by_id[replay_id]["data"]["referenceId"] == "rej-1"
    assert caught_up.body["latestReplayId"] >= replay_id
    # The rejected record is free again, in PostgreSQL.
    after = await jtel.call("POST", "/contacts", {"IDList": [contact_id]})
    assert after.status == 200 and after.body


def test_check_config_names_the_store_engine(tmp_path: Path) -> None:
    """check-config says store=postgresql (or sqlite), with the password hidden."""
    pg = write_config(
        tmp_path / "pg.yaml", 8080, extra={"storage": {"url": "postgresql+psycopg://gw:secret@db.example:5432/gw"}}
    )
    result = run_cli("check-config", str(pg))
    assert result.returncode == 0, result.stderr
    assert "store=postgresql (postgresql+psycopg://gw:***@db.example:5432/gw)" in result.stdout
    assert "secret" not in result.stdout
    lite = run_cli("check-config", str(write_config(tmp_path / "lite.yaml", 8080)))
    assert lite.returncode == 0 and "store=sqlite (sqlite+pysqlite:///" in lite.stdout


async def test_unreachable_postgresql_fails_the_start(tmp_path: Path) -> None:
    """A node whose PostgreSQL does not answer says so and exits non-zero; nothing listens."""
    dead = free_port()  # nothing listens there
    http_port = free_port()
    url = f"postgresql+psycopg://postgres:pw@127.0.0.1:{dead}/gateway"
    cfg = write_config(tmp_path / "c.yaml", http_port, extra={"storage": {"url": url}})
    proc = await gateway_command("--config", str(cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    message = err.decode()
    assert f"gateway: cannot start: store postgresql at postgresql+psycopg://postgres:***@127.0.0.1:{dead}/gateway" in (
        message
    )
    assert "pw@" not in message and "Traceback" not in message
    logged: list[dict[str, Any]] = [orjson.loads(line) for line in err.splitlines() if line.startswith(b"{")]
    assert any(e.get("event") == "store_unavailable" for e in logged), err
    assert not any(e.get("event") == "listening" for e in logged)
