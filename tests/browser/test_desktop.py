"""The agent desktop page in a real browser: headless Chromium driven by playwright-core (desktop.mjs).

An agent signs in, starts a preview session, gets a record, rejects it and sees RecordRejectAcknowledge with
the referenceId it sent; the server drops its CometD session and the page reconnects by itself; it gets a
record again, a service locks that record through the jtel API and the page shows it cancelled; it gets the
other record, reschedules it as a personal callback already due, sees the ScheduledCall and completes it.
Screenshots go to artifacts/desktop/<transport>/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.hub.session import WakeReason
from tests.conftest import AGENT_PASSWORD, CRM_TOKEN, IDENTITIES, ROOT, Gateway, StartGateway
from tests.integration.jtel_client import Jtel
from tests.interop.node_client import TRANSPORTS, NodeClient

HERE = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "tests" / "node_modules"
COMETD_DIR = ROOT / "desktop" / "node_modules" / "cometd"
ARTIFACTS = ROOT / "artifacts" / "desktop"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def require_browser() -> str:
    """The node executable once Chromium, playwright-core and the desktop's cometd are in place.

    Missing pieces fail the test; only a missing Chromium outside CI is a skip (`make test` installs it).
    """
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js 20) is not on PATH: the browser test needs it", pytrace=False)
    if not (NODE_MODULES / "playwright-core" / "package.json").is_file():
        pytest.fail(f"playwright-core missing from {NODE_MODULES}: run `npm ci --prefix tests`", pytrace=False)
    if not (COMETD_DIR / "cometd.js").is_file():
        pytest.fail(f"the desktop's cometd package is missing ({COMETD_DIR}): run `npm ci --prefix desktop`")
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium; `make test` installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return node


async def drive(
    node: str, script: str, base: str, shots: Path, transport: str, user: str = "agent1", password: str = AGENT_PASSWORD
) -> NodeClient:
    """Start a page driver (`node <script> <base> <user> <password> <shots> <transport>`), stdin a pipe."""
    proc = await asyncio.create_subprocess_exec(
        node,
        str(HERE / script),
        base,
        user,
        password,
        str(shots),
        transport,
        env={**os.environ, "CHROMIUM_PATH": CHROMIUM},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT / "tests",
    )
    return NodeClient(proc, f"{script} {transport}")


async def drop_sessions(gw: Gateway, user: str) -> int:
    """Forget every CometD session of `user` on the server, as if they had expired; return how many."""
    sessions = [s for s in gw.hub.sessions.values() if s.user == user]
    for session in sessions:
        gw.hub.remove(session, "test", wake=WakeReason.EVICTED)
    return len(sessions)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_agent_works_records_in_chromium(start_gateway: StartGateway, transport: str) -> None:
    """Sign in, get a record, reject it (acknowledged with its referenceId), survive a lost session, and see
    a record cancelled by a jtel lock, all in the page."""
    node = require_browser()
    gw = await start_gateway(extra={**IDENTITIES, "desktop": {"cometd_dir": str(COMETD_DIR)}})
    shots = ARTIFACTS / transport
    shutil.rmtree(shots, ignore_errors=True)
    page = await drive(node, "desktop.mjs", gw.base, shots, transport)

    def step(name: str) -> Any:
        return page.wait_for(lambda e: e.get("event") in (name, "fail", "deadline"), timeout=30)

    async def reached(name: str) -> dict[str, Any]:
        event: dict[str, Any] = await step(name)
        assert event["event"] == name, page.describe()
        return event

    try:
        async with aiohttp.ClientSession() as http:
            jtel = Jtel(http, gw.base, CRM_TOKEN)
            for n, (first, last) in enumerate([("Erika", "Mustermann"), ("Max", "Moritz")]):
                reply = await jtel.import_contact(
                    Name=last, FirstName=first, PhoneNumber1=f"+49891234{n}", UserData=f"DESK{n}"
                )
                assert reply.status == 200, reply.body

            connected = await reached("connected")
            assert connected["transport"] == transport
            assert (await reached("campaigns"))["names"] == ["Callbacks", "Other Client", "Retention"]

            record = await reached("record")
            assert record["fields"]["Name"] in ("Mustermann", "Moritz")
            assert record["fields"]["PhoneNumber1"].startswith("+49891234")
            assert "FirstName" in record["fields"], record

            rejected = await reached("rejected")
            assert rejected["referenceId"].startswith("desk-")
            assert "Rejected" in rejected["banner"]
            assert await drop_sessions(gw, "agent1") == 1
            assert (await reached("reconnected"))["transport"] == transport

            again = (await reached("record-again"))["handle"]
            locked = await jtel.call("PATCH", f"/contacts/contact/{again}/lock")
            assert locked.status == 200, locked.body
            cancelled = await reached("cancelled")
            assert cancelled["handle"] == again and "cancelled" in cancelled["banner"]

            scheduled = await reached("scheduled-call")
            assert scheduled["handle"] != again and "Scheduled call due" in scheduled["banner"]
            completed = await reached("completed")
            contact = await jtel.call("GET", f"/contacts/{completed['handle']}")
            assert contact.body["records"][0]["DiallerCampaignsResultCodesID"] == 8, contact.body  # Busy

            await reached("done")
            assert await page.finish(timeout=20) == 0, page.describe()
    finally:
        await page.close()
    assert page.of("pageerror") == [], page.describe()
    shown = ("01-sign-in", "02-record", "03-rejected", "04-record-again", "05-cancelled", "06-scheduled-call")
    for name in (*shown, "07-completed"):
        assert (shots / f"{name}.png").stat().st_size > 0
