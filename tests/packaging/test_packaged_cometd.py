"""Which CometD client the desktop serves: `desktop.cometd_dir` when the client is there, else a wheel's copy.

In process and fast; tests/packaging/test_wheel.py shows the same with a real wheel in a new venv.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

import gateway.desktop.site as site
from tests.conftest import StartGateway


def _client(folder: Path, marker: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "cometd.js").write_text(f"// {marker}\n")
    return folder


async def _served(start_gateway: StartGateway, cometd_dir: Path) -> tuple[int, str]:
    gw = await start_gateway(extra={"desktop": {"cometd_dir": str(cometd_dir)}})
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.base + "/desktop/") as page:
            status = page.status
        async with http.get(gw.base + "/desktop/vendor/cometd/cometd.js") as module:
            return status, await module.text() if module.status == 200 else str(module.status)


async def test_configured_client_first_then_the_packaged_copy(
    start_gateway: StartGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configured npm package wins; without it the packaged copy is served; without both, 503 as before."""
    monkeypatch.setattr(site, "PACKAGED_COMETD", tmp_path / "absent")
    assert await _served(start_gateway, tmp_path / "nowhere") == (503, "404")
    packaged = _client(tmp_path / "wheel" / "vendor" / "cometd", "packaged")
    monkeypatch.setattr(site, "PACKAGED_COMETD", packaged)
    assert await _served(start_gateway, tmp_path / "nowhere") == (200, "// packaged\n")
    npm = _client(tmp_path / "node_modules" / "cometd", "npm")
    assert await _served(start_gateway, npm) == (200, "// npm\n")
