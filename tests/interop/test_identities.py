"""Identities over Bayeux with aiocometd-ng, and the dialler's change events and referenceId acks."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiocometd_ng import Client, ConnectionType
from aiocometd_ng.exceptions import ServerError

from tests.conftest import AGENT_PASSWORD, CRM_TOKEN, IDENTITIES, SUPERVISOR_TOKEN, Gateway, StartGateway
from tests.integration.jtel_client import Jtel
from tests.interop.cometd_auth import BasicAuth, ExtAuth

TRANSPORTS = [ConnectionType.LONG_POLLING, ConnectionType.WEBSOCKET]


async def next_message(client: Client, timeout: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = await asyncio.wait_for(client.receive(), timeout)
    return message


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
@pytest.mark.parametrize(
    "auth",
    [
        BasicAuth("supervisor1", "sup-pass"),
        ExtAuth(user="supervisor1", password="sup-pass"),
        ExtAuth(token=SUPERVISOR_TOKEN),
    ],
    ids=["basic-header", "ext-password", "ext-token"],
)
async def test_handshake_credentials(gw: Gateway, transport: ConnectionType, auth: Any) -> None:
    """Authorization header or ext.authentication ({user, password} or {token}) open a session."""
    async with Client(gw.url, transport, ssl=True, auth=auth) as client:
        await client.subscribe("/v2/dialler/contacts")
        (session,) = gw.hub.sessions.values()
        assert session.user == "supervisor1"


@pytest.mark.parametrize(
    "auth",
    [
        None,
        BasicAuth("supervisor1", "wrong"),
        ExtAuth(token="no-such-token-000000"),
        ExtAuth(user="ghost", password="x"),
    ],
    ids=["none", "bad-password", "bad-token", "unknown-user"],
)
async def test_bad_credentials_denied(gw: Gateway, auth: Any) -> None:
    """Anything else is 403::handshake_denied with reconnect none; no session is created."""
    client = Client(gw.url, ConnectionType.LONG_POLLING, ssl=True, auth=auth)
    with pytest.raises(ServerError) as denied:
        await client.open()
    await client.close()
    reply = denied.value.response
    assert reply["error"] == "403::handshake_denied" and reply["advice"]["reconnect"] == "none"
    assert gw.hub.sessions == {}


@pytest.mark.parametrize(
    ("pattern", "allowed"),
    [
        ("/v2/me/outbound", True),
        ("/me/internal", True),
        ("/v2/me/**", True),
        ("/v2/dialler/contacts", False),
        ("/v2/waitfield/**", False),
        ("/**", False),
        ("/v2/**", False),
    ],
)
async def test_agent_channels(gw: Gateway, pattern: str, allowed: bool) -> None:
    """Agents read only their own channels; a pattern covering anything else is refused with 403."""
    async with Client(gw.url, ConnectionType.WEBSOCKET, ssl=True, auth=BasicAuth("agent1", AGENT_PASSWORD)) as client:
        if allowed:
            await client.subscribe(pattern)
        else:
            with pytest.raises(ServerError) as refused:
                await client.subscribe(pattern)
            assert refused.value.response["error"].startswith("403:")


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.value)
async def test_change_events_and_reference_ack(gw: Gateway, jtel: Jtel, transport: ConnectionType) -> None:
    """Changes reach /v2/dialler/contacts subscribers; the requester's own sessions get the ack."""
    crm = ExtAuth(token=CRM_TOKEN)
    async with (
        Client(gw.url, transport, ssl=True, auth=crm) as own,
        Client(gw.url, transport, ssl=True, auth=ExtAuth(token=SUPERVISOR_TOKEN)) as supervisor,
    ):
        await own.subscribe("/v2/me/operations")
        await supervisor.subscribe("/v2/me/operations")
        await supervisor.subscribe("/v2/dialler/contacts")
        reply = await jtel.import_contact(reference="ref-1", UserData="EV1")
        cid = reply.body["records"][0]["ID"]
        event = await next_message(supervisor)
        assert event == {
            "channel": "/v2/dialler/contacts",
            "data": {
                "type": "ContactImported",
                "ID": cid,
                "UserData": "EV1",
                "DiallerCampaignsID": 1,
                "referenceId": "ref-1",
            },
        }
        ack = await next_message(own)
        assert ack["channel"] == "/v2/me/operations"
        assert ack["data"]["referenceId"] == "ref-1" and ack["data"]["operation"] == "ImportContact"
        assert ack["data"]["status"] == 200 and ack["data"]["result"] == reply.body

        for path, kind in (
            (f"/contacts/contact/{cid}/lock", "ContactLocked"),
            (f"/contacts/contact/{cid}/unlock", "ContactUnlocked"),
        ):
            assert (await jtel.call("PATCH", path, headers={"X-Reference-Id": kind})).status == 200
            event = await next_message(supervisor)
            assert event["data"]["type"] == kind and event["data"]["referenceId"] == kind
        await jtel.import_contact(overwrite=True, UserData="EV1", Company="new")
        assert (await next_message(supervisor))["data"]["type"] == "ContactUpdated"
        await jtel.call("DELETE", f"/contacts/contact/{cid}")
        assert (await next_message(supervisor))["data"] == {
            "type": "ContactDeleted",
            "ID": cid,
            "UserData": "EV1",
            "DiallerCampaignsID": 1,
            "referenceId": None,
        }
        # The supervisor never sees the crm service's acknowledgements.
        with pytest.raises(asyncio.TimeoutError):
            await next_message(supervisor, timeout=0.3)


async def test_retry_with_same_reference_is_not_applied_twice(gw: Gateway, jtel: Jtel) -> None:
    """Same referenceId and request: the first result again, no second contact, no second event."""
    async with Client(gw.url, ConnectionType.WEBSOCKET, ssl=True, auth=ExtAuth(token=SUPERVISOR_TOKEN)) as sup:
        await sup.subscribe("/v2/dialler/contacts")
        first = await jtel.import_contact(reference="once", UserData="R1")
        again = await jtel.import_contact(reference="once", UserData="R1")
        assert first.status == again.status == 200 and first.body == again.body
        assert (await next_message(sup))["data"]["referenceId"] == "once"
        with pytest.raises(asyncio.TimeoutError):
            await next_message(sup, timeout=0.3)
    listing = await jtel.call("GET", "/contacts")
    assert listing.body["count"] == 1


async def test_same_reference_different_request_is_409(jtel: Jtel) -> None:
    """Same referenceId with another request: 409, and the other request is not applied."""
    assert (await jtel.import_contact(reference="r2", UserData="A")).status == 200
    clash = await jtel.import_contact(reference="r2", UserData="B")
    assert clash.status == 409 and clash.body == {
        "status": 409,
        "error": "referenceId was already used for a different request",
    }
    assert (await jtel.call("GET", "/contacts")).body["count"] == 1


async def test_failed_operation_is_remembered_too(jtel: Jtel) -> None:
    """A rejected request under a referenceId gives the same answer on retry (and is not retried)."""
    first = await jtel.import_contact(reference="bad", Name=...)
    again = await jtel.import_contact(reference="bad", Name=...)
    assert first.status == again.status == 400 and first.body == again.body


async def test_concurrent_duplicates_apply_once(jtel: Jtel) -> None:
    """Ten identical requests at once under one referenceId create one contact."""
    replies = await asyncio.gather(*(jtel.import_contact(reference="burst", UserData="B1") for _ in range(10)))
    assert {r.status for r in replies} == {200}
    assert len({r.body["records"][0]["ID"] for r in replies}) == 1
    assert (await jtel.call("GET", "/contacts")).body["count"] == 1


async def test_bad_reference_id(jtel: Jtel) -> None:
    """A referenceId with spaces or over 128 characters is refused before anything happens."""
    for bad in ("has space", "x" * 129):
        reply = await jtel.import_contact(reference=bad, UserData="Z")
        assert reply.status == 400 and "referenceId" in reply.body["error"]
    assert (await jtel.call("GET", "/contacts")).body["count"] == 0


async def test_registry_is_bounded(start_gateway: StartGateway) -> None:
    """The registry keeps at most correlation.max_entries entries."""
    gw = await start_gateway(extra={**IDENTITIES, "correlation": {"max_entries": 3, "ttl_s": 60}})
    async with aiohttp.ClientSession() as http:
        jtel = Jtel(http, gw.base, CRM_TOKEN)
        for n in range(6):
            await jtel.import_contact(reference=f"b{n}", UserData=f"B{n}")
    from gateway.app import REGISTRY

    assert gw.app is not None
    registry = gw.app[REGISTRY]
    assert await registry.count() == 3
    assert await registry.get("crm", "b0") is None and await registry.get("crm", "b5") is not None
