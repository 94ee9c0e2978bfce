"""/meta/handshake (bayeux.md checklist 8-11, 13-15)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
import pytest

from gateway.bayeux.security import Denied, Identity
from tests.conftest import Gateway, StartGateway
from tests.integration.raw import Message, RawHttp, handshake_message


@pytest.fixture
async def raw(gateway: Gateway) -> AsyncIterator[RawHttp]:
    async with aiohttp.ClientSession() as http:
        yield RawHttp(gateway.url, http)


async def test_handshake_reply_fields(raw: RawHttp) -> None:
    """#8-#11: a new unguessable clientId, version 1.0, served transports, full advice, same id."""
    reply = await raw.handshake()
    assert reply["successful"] is True
    assert reply["channel"] == "/meta/handshake"
    assert reply["id"] == "1"
    assert reply["version"] == "1.0" and reply["minimumVersion"] == "1.0"
    assert reply["supportedConnectionTypes"] == ["websocket", "long-polling", "callback-polling"]
    assert reply["advice"] == {"reconnect": "retry", "interval": 0, "timeout": 2000}
    assert len(reply["clientId"]) >= 32 and reply["clientId"].isalnum()  # 160 random bits, hex


async def test_client_ids_are_unique(raw: RawHttp) -> None:
    """#8: every handshake creates a new session."""
    ids = {(await raw.handshake())["clientId"] for _ in range(20)}
    assert len(ids) == 20


async def test_reply_without_id_when_request_has_none(raw: RawHttp) -> None:
    """#15: no id in, no id out; otherwise processed normally."""
    reply = await raw.post([handshake_message(None)])
    assert "id" not in reply.body[0] and reply.body[0]["successful"] is True


async def test_numeric_id_echoed_verbatim(raw: RawHttp) -> None:
    """#14: the id comes back identical (here a number stays a number)."""
    reply = await raw.post([handshake_message(None, id=7)])
    assert reply.body[0]["id"] == 7


async def test_invalid_id_is_in_band_error(raw: RawHttp) -> None:
    """A non-alphanumeric id gets 405::message_id_invalid, as the reference server does."""
    reply = await raw.post([handshake_message("a-b-c")])
    assert reply.status == 200
    assert reply.body[0]["successful"] is False
    assert reply.body[0]["error"] == "405::message_id_invalid"


class _DenyAll:
    async def authenticate(
        self, handshake: Message, headers: Mapping[str, str], address: str | None = None
    ) -> Identity | Denied | None:
        return Denied("no credentials")

    def can_subscribe(self, identity: Identity | None, pattern: str) -> bool:
        return True

    def can_publish(self, identity: Identity | None, channel: str) -> bool:
        return True


async def test_denied_handshake(start_gateway: StartGateway) -> None:
    """#13: denied by policy -> 403::handshake_denied, reconnect none, no clientId, no session."""
    gw = await start_gateway(policy=_DenyAll())
    async with aiohttp.ClientSession() as http:
        reply = await RawHttp(gw.url, http).handshake()
    assert reply["successful"] is False
    assert reply["error"] == "403::handshake_denied"
    assert reply["advice"]["reconnect"] == "none"
    assert "clientId" not in reply
    assert gw.hub.sessions == {}
