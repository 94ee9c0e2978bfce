"""Replay with real clients: aiocometd-ng with gateway.client's extension, and `gateway listen --replay-from`."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from aiocometd_ng import Client, ConnectionType

from gateway.client import ReplayExtension, replay_client_options, replay_id
from tests.conftest import CRM_TOKEN, IDENTITIES, SUPERVISOR_TOKEN, StartGateway, gateway_command, wait_for
from tests.integration.jtel_client import Jtel
from tests.interop.cometd_auth import ExtAuth

CONTACTS = "/v2/dialler/contacts"
TRANSPORTS = [ConnectionType.WEBSOCKET, ConnectionType.LONG_POLLING]


async def imports(jtel: Jtel, first: int, n: int) -> None:
    """n contact imports: each one ContactImported on /v2/dialler/contacts."""
    for i in range(first, first + n):
        assert (await jtel.import_contact(UserData=f"U{i}")).status == 200


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
async def test_extension_resumes_after_a_lost_session(start_gateway: StartGateway, transport: ConnectionType) -> None:
    """The session is dropped while events are published: the re-handshake replays them, none lost or twice."""
    gw = await start_gateway(extra=IDENTITIES, timeout_ms=500)
    replay = ReplayExtension(start=-1)
    async with (
        aiohttp.ClientSession() as http,
        Client(
            gw.url, transport, ssl=True, auth=ExtAuth(token=SUPERVISOR_TOKEN), extensions=[replay],
            **replay_client_options(),
        ) as client,
    ):  # fmt: skip
        jtel = Jtel(http, gw.base, CRM_TOKEN)
        await client.subscribe(CONTACTS)
        assert replay.enabled and replay.ids == {CONTACTS: 0}  # the reply's baseline: an empty log
        await imports(jtel, 0, 3)
        got = [await asyncio.wait_for(client.receive(), 5) for _ in range(3)]
        (session,) = gw.hub.sessions.values()
        gw.hub.remove(session, "test")  # the client learns only at its next connect
        await imports(jtel, 3, 5)  # published while the client has no session
        await wait_for(lambda: any(CONTACTS in s.subscriptions for s in gw.hub.sessions.values()), 10)
        await imports(jtel, 8, 2)
        got += [await asyncio.wait_for(client.receive(), 5) for _ in range(7)]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.receive(), 0.5)
    names = [m["data"]["UserData"] for m in got]
    assert names == [f"U{i}" for i in range(10)]
    assert [replay_id(m) for m in got] == list(range(1, 11))
    assert replay.ids[CONTACTS] == 10


@pytest.mark.parametrize("transport", ["websocket", "long-polling"])
async def test_listen_replays_more_than_aiocometd_queues(start_gateway: StartGateway, transport: str) -> None:
    """`gateway listen --replay-from -2` prints 150 replayed events (more than aiocometd's default 100) with ids."""
    gw = await start_gateway(extra=IDENTITIES)
    async with aiohttp.ClientSession() as http:
        await imports(Jtel(http, gw.base, CRM_TOKEN), 0, 150)
    proc = await gateway_command(
        "listen", CONTACTS, "--url", gw.url, "--token", SUPERVISOR_TOKEN, "--transport", transport,
        "--replay-from", "-2", "--count", "150",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err
    lines = [orjson.loads(line) for line in out.splitlines()]
    assert [line["replayId"] for line in lines] == list(range(1, 151))
    assert [line["data"]["UserData"] for line in lines] == [f"U{i}" for i in range(150)]


async def test_listen_refuses_a_bad_replay_from(start_gateway: StartGateway) -> None:
    """--replay-from takes an id, -1 or -2: anything else is a usage error (exit 2), not a traceback."""
    gw = await start_gateway(extra=IDENTITIES)
    proc = await gateway_command(
        "listen", CONTACTS, "--url", gw.url, "--replay-from", "-7",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2 and b"a replayId, -1 or -2" in err and b"Traceback" not in err
