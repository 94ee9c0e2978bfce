"""The agent desktop in Chromium resumes from its last replayId: what happened while it was closed shows as missed.

The page gets two records and is closed. A service locks one of them (RecordCancel) and the agent's personal
callback on the other falls due (ScheduledCall) while no page is open. Opened again in the same browser
profile, the page signs in, resumes from the replayId it kept in localStorage and shows both notifications
marked as missed, with the replayIds the log gave them. Once over each transport.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import Any

import pytest

from tests.browser.test_desktop import ARTIFACTS, COMETD_DIR, drive, require_browser
from tests.conftest import AGENT_PASSWORD, CRM_TOKEN, IDENTITIES, StartGateway
from tests.integration.gws_client import Agent
from tests.integration.jtel_client import Jtel
from tests.interop.node_client import TRANSPORTS

OUTBOUND = "/v2/me/outbound"
DEVICE = next(u["device"] for u in IDENTITIES["users"] if u["name"] == "agent1")  # the devicePath the page uses


async def logged(agent: Agent, kind: str, handle: int, timeout: float = 20.0) -> dict[str, Any]:
    """The notification of `kind` about `handle` in the agent's log, read over REST (GET /notifications)."""
    end = time.monotonic() + timeout
    while True:
        reply = await agent.get("/notifications?after=-2&limit=1000")
        assert reply.status == 200, reply.body
        for note in reply.body["notifications"]:
            data = note["data"]
            if (
                note["channel"] == OUTBOUND
                and data.get("notificationType") == kind
                and data["record"]["recordHandle"] == handle
            ):
                return dict(note)
        assert time.monotonic() < end, f"no {kind} for record {handle} in the log: {reply.body}"
        await asyncio.sleep(0.3)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_desktop_shows_what_it_missed(start_gateway: StartGateway, transport: str) -> None:
    """Closed page, a lock and a due personal callback meanwhile; reopened, both are shown as missed."""
    node = require_browser()
    gw = await start_gateway(extra={**IDENTITIES, "desktop": {"cometd_dir": str(COMETD_DIR)}})
    shots = ARTIFACTS / "replay" / transport
    shutil.rmtree(shots, ignore_errors=True)
    page = await drive(node, "desktop_replay.mjs", gw.base, shots, transport)

    async def reached(name: str) -> dict[str, Any]:
        event: dict[str, Any] = await page.wait_for(lambda e: e.get("event") in (name, "fail", "deadline"), 45)
        assert event["event"] == name, page.describe()
        return event

    try:
        async with Agent(gw.base, "agent1", AGENT_PASSWORD, device=DEVICE) as rest:
            jtel = Jtel(rest.http, gw.base, CRM_TOKEN)
            for n in range(2):
                assert (await jtel.import_contact(Name=f"Missed{n}", PhoneNumber1=f"+4930555{n}")).status == 200
            closed = await reached("closed")
            first, second = closed["records"]
            assert closed["stored"] and closed["stored"][OUTBOUND] > 0, closed  # the page kept its last replayId

            # While no page is open: the agent's personal callback on one record falls due, the other is locked.
            due = int(time.time()) + 2
            reply = await rest.record_op(first, "RescheduleRecord", callbackType="Personal", timestamp=due)
            assert reply.body == {"statusCode": 0}, reply.body
            locked = await jtel.call("PATCH", f"/contacts/contact/{second}/lock")
            assert locked.status == 200, locked.body
            cancel = await logged(rest, "RecordCancel", second)
            scheduled = await logged(rest, "ScheduledCall", first)

            await page.send({"reopen": True})
            missed = (await reached("missed"))["missed"]
            assert missed["RecordCancel"]["handle"] == second
            assert missed["RecordCancel"]["replayId"] == cancel["data"]["event"]["replayId"]
            assert missed["ScheduledCall"]["handle"] == first
            assert missed["ScheduledCall"]["replayId"] == scheduled["data"]["event"]["replayId"]
            assert "missed" in missed["ScheduledCall"]["text"] and "replayId" in missed["ScheduledCall"]["text"]
            await reached("done")
            assert await page.finish(timeout=20) == 0, page.describe()
    finally:
        await page.close()
    assert page.of("pageerror") == [], page.describe()
    assert (shots / "missed.png").stat().st_size > 0
