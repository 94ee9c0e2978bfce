"""aiocometd-ng, the Python CometD client, against the real server over both transports (checklist 69)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiocometd_ng import Client, ConnectionType

from tests.conftest import IDENTITIES, SUPERVISOR_TOKEN, Gateway, StartGateway, gateway_command, wait_for

TRANSPORTS = [ConnectionType.LONG_POLLING, ConnectionType.WEBSOCKET]
# ssl=True is aiohttp's default; aiocometd-ng's own default (None) is deprecated by aiohttp 3.10+.


async def next_message(client: Client, timeout: float = 5.0) -> dict[str, Any]:
    """The next delivered message."""
    message: dict[str, Any] = await asyncio.wait_for(client.receive(), timeout)
    return message


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
async def test_open_subscribe_publish_receive_close(gateway: Gateway, transport: ConnectionType) -> None:
    """open -> subscribe -> publish -> receive exactly {channel, data} -> close (session removed)."""
    async with Client(gateway.url, transport, ssl=True) as client:
        assert client.subscriptions == set()
        await client.subscribe("/chat/demo")
        (session,) = gateway.hub.sessions.values()
        assert session.transport == transport.value
        await client.publish("/chat/demo", {"text": "hello", "n": 1})
        assert await next_message(client) == {"channel": "/chat/demo", "data": {"text": "hello", "n": 1}}
        await client.unsubscribe("/chat/demo")
        await client.publish("/chat/demo", {"text": "not for me"})
        with pytest.raises(asyncio.TimeoutError):
            await next_message(client, timeout=0.5)
    assert gateway.hub.sessions == {}


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
async def test_two_clients_exchange(gateway: Gateway, transport: ConnectionType) -> None:
    """A message published by one client reaches another client subscribed by wildcard."""
    async with Client(gateway.url, transport, ssl=True) as alice, Client(gateway.url, transport, ssl=True) as bob:
        await bob.subscribe("/chat/**")
        await alice.publish("/chat/room/1", ["a", 1, None])
        assert await next_message(bob) == {"channel": "/chat/room/1", "data": ["a", 1, None]}


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
async def test_server_push_while_connect_held(gateway: Gateway, transport: ConnectionType) -> None:
    """A server-side publish reaches a client whose /meta/connect is held."""
    async with Client(gateway.url, transport, ssl=True) as client:
        await client.subscribe("/chat/push")
        session = next(iter(gateway.hub.sessions.values()))
        await wait_for(lambda: session.held is not None)
        await gateway.protocol.server.publish("/chat/push", {"k": "v"})
        assert await next_message(client) == {"channel": "/chat/push", "data": {"k": "v"}}


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
async def test_recovers_after_server_drops_session(start_gateway: StartGateway, transport: ConnectionType) -> None:
    """The server drops the session: the client re-handshakes, re-subscribes and receives again."""
    gw = await start_gateway(timeout_ms=500)
    async with Client(gw.url, transport, ssl=True) as client:
        await client.subscribe("/chat/again")
        (old,) = gw.hub.sessions.values()
        gw.hub.remove(old, "test")
        await wait_for(lambda: any("/chat/again" in s.subscriptions for s in gw.hub.sessions.values()), 10)
        assert old.client_id not in gw.hub.sessions
        await gw.protocol.server.publish("/chat/again", 2)
        assert await next_message(client) == {"channel": "/chat/again", "data": 2}


@pytest.mark.parametrize("transport", ["websocket", "long-polling"])
async def test_gateway_listen_prints_json_lines(start_gateway: StartGateway, transport: str) -> None:
    """`gateway listen` (an aiocometd-ng subscriber) prints one JSON line per message, with credentials."""
    gw = await start_gateway(extra=IDENTITIES)
    proc = await gateway_command(
        "listen",
        "/chat/**",
        "--url",
        gw.url,
        "--token",
        SUPERVISOR_TOKEN,
        "--transport",
        transport,
        "--count",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        status = await asyncio.wait_for(proc.stderr.readline(), 15)
        assert orjson.loads(status) == {"event": "subscribed", "channels": ["/chat/**"]}
        await gw.protocol.server.publish("/chat/a", {"n": 1})
        await gw.protocol.server.publish("/chat/b/c", "two")
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    lines = [orjson.loads(line) for line in out.splitlines()]
    assert lines == [{"channel": "/chat/a", "data": {"n": 1}}, {"channel": "/chat/b/c", "data": "two"}]


async def test_gateway_listen_refused_credentials(start_gateway: StartGateway) -> None:
    """Wrong credentials: a clear one-line error and exit status 1, no traceback."""
    gw = await start_gateway(extra=IDENTITIES)
    proc = await gateway_command(
        "listen",
        "/chat/**",
        "--url",
        gw.url,
        "--user",
        "agent1",
        "--password",
        "wrong",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 1
    assert b"gateway listen:" in err and b"Traceback" not in err
