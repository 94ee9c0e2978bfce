"""GWS outbound with the official CometD JavaScript client as the agents' desktop, over both transports."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import AGENT_PASSWORD, Gateway
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.jtel_client import Jtel
from tests.interop.node_client import TRANSPORTS, NodeClient, run_client


def outbound(client: NodeClient, kind: str) -> list[dict]:  # type: ignore[type-arg]
    """The /v2/me/outbound payloads of one notificationType the JS client received."""
    return [
        e["data"]
        for e in client.of("message")
        if e["channel"] == "/v2/me/outbound" and e["data"].get("notificationType") == kind
    ]


async def arrival(client: NodeClient, kind: str) -> dict:  # type: ignore[type-arg]
    """Wait for a /v2/me/outbound message of `kind`."""
    event = await client.wait_for(
        lambda e: (
            e.get("event") == "message"
            and e["channel"] == "/v2/me/outbound"
            and e["data"].get("notificationType") == kind
        )
    )
    return event["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_two_js_agents(gw: Gateway, jtel: Jtel, transport: str) -> None:
    """Start session, get record, reject with referenceId: RecordRejectAcknowledge (and its /me/internal twin)
    with that referenceId reaches agent1's JS client only; agent2's JS client receives nothing."""
    for i in range(2):
        await jtel.import_contact(UserData=f"JS{i}")
    async with (
        run_client("gws_agent.mjs", gw.url, transport, "agent1", AGENT_PASSWORD) as js1,
        run_client("gws_agent.mjs", gw.url, transport, "agent2", "agent2-test-password") as js2,
        Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as rest,
    ):
        ready = await js1.wait_event("ready")
        assert ready["transport"] == transport
        await js2.wait_event("ready")
        assert (await rest.campaign_op("StartPreviewSession", reference="js-s")).body == {"statusCode": 0}
        started = await js1.wait_for(
            lambda e: e.get("event") == "message" and e["data"].get("notificationType") == "PreviewSessionStarted"
        )
        assert started["data"]["referenceId"] == "js-s"
        await rest.campaign_op("GetPreviewRecord", reference="js-p")
        preview = await arrival(js1, "PreviewRecord")
        handle = preview["record"]["recordHandle"]
        assert preview["record"]["userData"]["GSW_RECORD_HANDLE"] == handle
        assert (await rest.record_op(handle, "RejectRecord", reference="js-r")).body == {"statusCode": 0}
        ack = await arrival(js1, "RecordRejectAcknowledge")
        assert ack["referenceId"] == "js-r" and ack["record"]["recordHandle"] == handle
        twin = await js1.wait_for(
            lambda e: (
                e.get("event") == "message"
                and e["channel"] == "/me/internal"
                and e["data"]["userData"]["GSW_USER_EVENT"] == "RecordRejectAcknowledge"
            )
        )
        assert twin["data"]["deviceId"] == DEVICE1
        await rest.campaign_op("GetPreviewRecord")
        again = await arrival(js1, "PreviewRecord")
        assert (await rest.record_op(again["record"]["recordHandle"], "CompleteRecord", callResult="Answer")).body == {
            "statusCode": 0
        }
        assert (await arrival(js1, "RecordProcessedAcknowledge"))["record"]["recordHandle"] == again["record"][
            "recordHandle"
        ]
        await asyncio.sleep(0.3)
        assert js2.of("message") == []  # never another agent's notifications
        for client in (js1, js2):
            assert client.proc.stdin is not None
            client.proc.stdin.write(b"exit\n")
            assert await client.finish() == 0
