"""The supervisor wallboard in a real browser: headless Chromium driven by playwright-core (supervisor.mjs).

A supervisor signs in; the test, as the backends, creates waiting-field contacts (SNtial), imports dialler
contacts (jtel), and an agent takes and completes a record (GWS); after each step the page's numbers are the
expected ones (the script waits for them in the DOM and reports them). Then the test drops the wallboard's
CometD session: the page shows the reconnect banner, handshakes again and reads the state again. Screenshots
go to artifacts/supervisor/<transport>/.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.browser.test_desktop import COMETD_DIR, drive, drop_sessions, require_browser
from tests.conftest import AGENT_PASSWORD, CRM_TOKEN, IDENTITIES, ROOT, StartGateway
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.jtel_client import Jtel
from tests.integration.sntial_client import Sntial
from tests.interop.node_client import TRANSPORTS

HERE = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "artifacts" / "supervisor"
FAST = {"waitingFieldMultiplier": 1, "minimumWaitingTime": 1, "outboundNumber": "+4930999"}
QUEUES = [
    {"name": "Support", "skills": [], "settings": {**FAST, "maximumWaitingTime": 600}, "campaign": 2},
    {"name": "Express", "skills": [], "settings": {**FAST, "maximumWaitingTime": 2}, "campaign": 2},
]
CONFIG = {**IDENTITIES, "waitfield": {"queues": QUEUES}, "desktop": {"cometd_dir": str(COMETD_DIR)}}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_wallboard_follows_the_floor(start_gateway: StartGateway, transport: str) -> None:
    """Queues, campaigns, agents and the operations feed follow SNtial, jtel and GWS calls live; a lost
    session is shown and recovered."""
    node = require_browser()
    gw = await start_gateway(extra=CONFIG)
    shots = ARTIFACTS / transport
    shutil.rmtree(shots, ignore_errors=True)
    page = await drive(node, "supervisor.mjs", gw.base, shots, transport, "supervisor1", "sup-pass")

    async def reached(name: str) -> dict[str, Any]:
        event: dict[str, Any] = await page.wait_for(lambda e: e.get("event") in (name, "fail", "deadline"), 40)
        assert event["event"] == name, page.describe()
        board: dict[str, Any] = event["board"]
        return board

    try:
        async with (
            aiohttp.ClientSession() as http,
            Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as agent,
        ):
            jtel, sntial = Jtel(http, gw.base, CRM_TOKEN), Sntial(http, gw.base, CRM_TOKEN)
            board = await reached("signed-in")
            assert board["agents"]["agent1"]["state"] == "offline" and board["agents"]["agent2"]["online"] is False

            for ref, queue in (("wall-w1", "Support"), ("wall-w2", "Support"), ("wall-x1", "Express")):
                status, body = await sntial.call(
                    "POST",
                    "contact",
                    {"externalId": ref, "callingNumber": "+491701234567", "calledNumber": "08001234", "queue": queue},
                    params={"referenceId": ref},
                )
                assert status == 200, body
            assert (await reached("waiting"))["queues"]["Support"]["waiting"] == 2
            board = await reached("routed")
            assert board["queues"]["Express"]["elapsedToday"] == 1
            assert ":" in board["queues"]["Support"]["longestWait"]  # m:ss

            for n in (1, 2, 3):
                reply = await jtel.import_contact(
                    reference=f"wall-i{n}", UserData=f"WALL{n}", PhoneNumber1=f"+4989555{n}"
                )
                assert reply.status == 200, reply.body
            assert (await reached("imported"))["campaigns"]["Retention"]["total"] == 3

            await agent.connect()
            assert (await agent.campaign_op("StartPreviewSession", "Callbacks", 102)).status == 200
            assert (await agent.campaign_op("GetPreviewRecord", "Callbacks", 102, reference="wall-g1")).status == 200
            record = await agent.next("PreviewRecord")
            handle = record["data"]["record"]["recordHandle"]
            board = await reached("taken")
            assert board["agents"]["agent1"]["held"] == 1 and board["queues"]["Support"]["waiting"] == 1

            done = await agent.record_op(
                handle, "CompleteRecord", "wall-c1", campaignName="Callbacks", applicationId=102, callingList="cb"
            )
            assert done.status == 200, done.body
            board = await reached("completed")
            before = board["loads"]

            assert await drop_sessions(gw, "supervisor1") == 1
            reply = await jtel.import_contact(reference="wall-i4", UserData="WALL4", PhoneNumber1="+49895554")
            assert reply.status == 200, reply.body
            board = await reached("recovered")
            assert board["loads"] > before, "the state was not read again after the re-handshake"
            assert board["campaigns"]["Retention"]["total"] == 4
            assert board["missedImport"], "the import made during the gap is not in the feed as missed (replay)"

        assert (await reached("offline"))["agents"]["agent1"]["online"] is False
        await page.wait_for(lambda e: e.get("event") in ("done", "fail"), 20)
        assert await page.finish(timeout=20) == 0, page.describe()
    finally:
        await page.close()
    assert page.of("pageerror") == [], page.describe()
    for name in ("01-sign-in", "02-taken", "03-completed", "04-reconnecting", "05-offline"):
        assert (shots / f"{name}.png").stat().st_size > 0
