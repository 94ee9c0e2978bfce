"""Input limits of the REST dialects: what the gateway cannot write back is refused in the dialect's envelope,
referenceId is at most 128 characters everywhere, and the correlation registry is bounded in bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.app import REGISTRY
from gateway.events.correlation import MemoryCorrelationRegistry
from tests.conftest import AGENT_PASSWORD, CRM_TOKEN, IDENTITIES, Gateway, StartGateway
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.jtel_client import Jtel
from tests.integration.sntial_client import Sntial
from tests.integration.test_waitfield import WAITFIELD

DEEP = b"[" * 300 + b"]" * 300
U64 = 18446744073709551615
ADD_RECORD = (
    b'{"operationName":"AddRecord","applicationId":101,"campaignName":"Retention","callingList":"ret",'
    b'"devicePath":"/devices/' + DEVICE1.encode() + b'","phoneNumber":"+4989123456","timeZone":"UTC",'
    b'"phoneType":"Mobile","from":0,"until":86400'
)


@pytest.fixture
async def gw(start_gateway: StartGateway) -> Gateway:
    """A gateway with the test identities, campaigns and waiting-field queues."""
    return await start_gateway(extra=WAITFIELD)


@pytest.fixture
async def agent(gw: Gateway) -> AsyncIterator[Agent]:
    """agent1 (REST only)."""
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as a:
        yield a


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def test_gws_deep_other_fields(agent: Agent) -> None:
    """GWS AddRecord with otherFields nested 300 deep: 400, statusCode 2, no traceback (was a 500)."""
    deep = b'{"x":' * 299 + b"1" + b"}" * 299
    reply = await agent.post("/outbound-records", raw=ADD_RECORD + b',"otherFields":' + deep + b"}")
    assert reply.status == 400, reply.body
    assert reply.body == {"statusCode": 2, "statusMessage": "Request body is nested deeper than 64 levels"}


async def test_gws_integer_beyond_64_bits(agent: Agent) -> None:
    """GWS AddRecord with an integer beyond 64 bits in otherFields: 400, statusCode 2."""
    reply = await agent.post("/outbound-records", raw=ADD_RECORD + b',"otherFields":{"Comment":%d}}' % U64)
    assert reply.status == 400, reply.body
    assert reply.body == {"statusCode": 2, "statusMessage": "Request body holds an integer outside the 64-bit range"}


async def test_jtel_deep_and_huge_integer(gw: Gateway, http: aiohttp.ClientSession) -> None:
    """jtel import: a body nested too deep, or DiallerCampaignsID beyond 64 bits, is {status: 400, error}."""
    jtel = Jtel(http, gw.base, CRM_TOKEN)
    body = b'{"DiallerCampaignsID":1,"Name":"M","PhoneNumber1":"+4989123456","UserData":' + DEEP + b"}"
    reply = await jtel.call("POST", "/contacts/import", raw=body)
    assert (reply.status, reply.body) == (400, {"status": 400, "error": "Request body is nested deeper than 64 levels"})
    body = b'{"DiallerCampaignsID":%d,"Name":"M","PhoneNumber1":"+4989123456"}' % U64
    reply = await jtel.call("POST", "/contacts/import", raw=body)
    assert reply.status == 400 and reply.body["error"] == "Request body holds an integer outside the 64-bit range"
    assert (await jtel.call("GET", "/contacts")).body["records"] == []


async def test_sntial_deep_additional(gw: Gateway, http: aiohttp.ClientSession) -> None:
    """SNtial CreateContact with `additional` nested 300 deep: its envelope with 400."""
    api = Sntial(http, gw.base, CRM_TOKEN)
    body = b'{"externalId":"e","callingNumber":"+491701234567","calledNumber":"0800","queue":"Support",'
    status, reply = await api.call("POST", "contact", raw=body + b'"additional":{"x":' + DEEP + b"}}")
    assert status == 400
    assert reply == {
        "statusText": "BadRequest",
        "statusCode": 400,
        "item": None,
        "message": "Request body is nested deeper than 64 levels",
    }


async def test_gws_reference_id_at_most_128(agent: Agent) -> None:
    """GWS referenceId: 129 characters is 400 statusCode 2 (as jtel and SNtial cap it); 128 is accepted."""
    reply = await agent.campaign_op("StartPreviewSession", reference="r" * 129)
    assert reply.status == 400, reply.body
    assert reply.body["statusCode"] == 2 and "referenceId" in reply.body["statusMessage"]
    assert set(reply.body) == {"statusCode", "statusMessage"}
    assert (await agent.campaign_op("StartPreviewSession", reference="r" * 128)).status == 200


async def test_registry_bounded_in_bytes(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """A flood of correlated imports keeps the registry under correlation.max_bytes (oldest dropped); the newest
    still correlate: a retry answers as the first time and imports nothing again."""
    bound = 40_000
    gw = await start_gateway(
        extra={**IDENTITIES, "correlation": {"max_entries": 10_000, "ttl_s": 600, "max_bytes": bound}}
    )
    registry = gw.app[REGISTRY] if gw.app is not None else None
    assert isinstance(registry, MemoryCorrelationRegistry)
    jtel = Jtel(http, gw.base, CRM_TOKEN)
    fields: dict[str, Any] = {"Comment": "c" * 1000, "Address": "s" * 64}
    for n in range(120):
        reply = await jtel.import_contact(reference=f"{n:04d}" + "x" * 124, UserData=f"U{n}", **fields)
        assert reply.status == 200, reply.body
        assert registry.bytes_used() <= bound
    kept = await registry.count()
    assert 0 < kept < 120
    last = f"{119:04d}" + "x" * 124
    again = await jtel.import_contact(reference=last, UserData="U119", **fields)
    assert again.status == 200 and again.body["records"][0]["ID"] == 120
    assert len((await jtel.call("GET", "/contacts")).body["records"]) == 120
    assert registry.bytes_used() <= bound
