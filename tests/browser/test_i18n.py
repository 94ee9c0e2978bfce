"""Both pages in German and English: Chromium started with --lang=de-DE shows German labels on the agent
desktop and the wallboard (static and drawn by the pages' scripts); the switch changes to English, and the
choice is remembered across pages and reloads (i18n.mjs)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from tests.browser.test_desktop import CHROMIUM, COMETD_DIR, HERE, require_browser
from tests.conftest import AGENT_PASSWORD, IDENTITIES, ROOT, StartGateway
from tests.interop.node_client import NodeClient


async def test_german_by_browser_language_english_by_switch(start_gateway: StartGateway) -> None:
    node = require_browser()
    gw = await start_gateway(extra={**IDENTITIES, "desktop": {"cometd_dir": str(COMETD_DIR)}})
    proc = await asyncio.create_subprocess_exec(
        node,
        str(HERE / "i18n.mjs"),
        gw.base,
        "agent1",
        AGENT_PASSWORD,
        "supervisor1",
        "sup-pass",
        str(ROOT / "artifacts" / "i18n"),
        env={**os.environ, "CHROMIUM_PATH": CHROMIUM},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT / "tests",
    )
    page = NodeClient(proc, "i18n.mjs")
    try:
        assert await page.finish(timeout=60) == 0, page.describe()
    finally:
        await page.close()

    def at(name: str) -> dict[str, Any]:
        (event,) = page.of(name)
        return event

    desktop = at("desktop")
    assert desktop["navigator"] == "de-DE" and desktop["lang"] == "de" and desktop["pressed"] == "de"
    assert (desktop["heading"], desktop["signIn"], desktop["connection"]) == ("Agenten-Desktop", "Anmelden", "getrennt")
    assert desktop["user"].startswith("Benutzer")
    signed_in = at("desktop-signed-in")
    assert (signed_in["start"], signed_in["connection"], signed_in["record"]) == (
        "Sitzung starten",
        "verbunden",
        "Datensatz",
    )
    english = at("desktop-english")
    assert (english["lang"], english["pressed"]) == ("en", "en")
    assert (english["start"], english["connection"], english["record"]) == ("Start session", "connected", "Record")

    remembered = at("board-remembered")
    assert (remembered["lang"], remembered["heading"], remembered["queue"]) == ("en", "Supervisor wallboard", "Queue")
    board = at("board")
    assert (board["heading"], board["queue"], board["waiting"], board["agents"]) == (
        "Supervisor-Wallboard",
        "Warteschlange",
        "Wartend",
        "Agenten",
    )
    assert (board["connection"], board["state"]) == ("verbunden", "offline")
    board_en = at("board-english")
    assert (board_en["heading"], board_en["waiting"], board_en["connection"]) == (
        "Supervisor wallboard",
        "Waiting",
        "connected",
    )
    reloaded = at("board-reloaded")
    assert (reloaded["lang"], reloaded["pressed"], reloaded["heading"]) == ("en", "en", "Supervisor wallboard")
