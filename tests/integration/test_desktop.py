"""The agent desktop's HTTP side without a browser: page, assets, the CometD client's files, the JSON views.

(The page itself is driven in Chromium by tests/browser/test_desktop.py.)
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from gateway.settings import Settings
from tests.conftest import AGENT_PASSWORD, IDENTITIES, ROOT, SUPERVISOR_TOKEN, Gateway, StartGateway


def basic(user: str, password: str) -> dict[str, str]:
    """An HTTP Basic Authorization header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def raw_get(gw: Gateway, target: str) -> tuple[int, bytes]:
    """GET `target` exactly as written (no client-side normalization of `..` or percent escapes)."""
    host, port = urlsplit(gw.base).hostname, urlsplit(gw.base).port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture
def cometd_dir(tmp_path: Path) -> Path:
    """A stand-in for the installed npm package: two modules, a non-module file, and a symlink out of it."""
    package = tmp_path / "node_modules" / "cometd"
    package.mkdir(parents=True)
    (package / "cometd.js").write_text('export * from "./Client.js";\n')
    (package / "Client.js").write_text("export class CometD {}\n")
    (package / "package.json").write_text('{"name": "cometd"}\n')
    (tmp_path / "secret.js").write_text("secret\n")
    (package / "leak.js").symlink_to(tmp_path / "secret.js")
    return package


async def desktop_gateway(start_gateway: StartGateway, cometd_dir: Path, **desktop: object) -> Gateway:
    """A gateway with the test identities whose desktop serves `cometd_dir`."""
    return await start_gateway(extra={**IDENTITIES, "desktop": {"cometd_dir": str(cometd_dir), **desktop}})


async def test_page_and_assets(start_gateway: StartGateway, cometd_dir: Path) -> None:
    """/desktop redirects to /desktop/, which is the page (with a CSP); its module and stylesheet are served
    with their types; unknown names are 404."""
    gw = await desktop_gateway(start_gateway, cometd_dir)
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.base + "/desktop", allow_redirects=False) as resp:
            assert resp.status == 301 and resp.headers["Location"] == "/desktop/"
        async with http.get(gw.base + "/desktop/") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
            page = await resp.text()
            assert '<script type="module" src="desktop.js">' in page
        for name, kind in [("desktop.js", "text/javascript"), ("desktop.css", "text/css")]:
            async with http.get(f"{gw.base}/desktop/{name}") as resp:
                assert resp.status == 200 and resp.content_type == kind, name
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(gw.base + "/desktop/desktop.js") as resp:
            assert 'from "./vendor/cometd/cometd.js"' in await resp.text()  # no bundler: a relative import
        for missing in ("/desktop/nothing.js", "/desktop/index.htm", "/desktop/site.py"):
            async with http.get(gw.base + missing) as resp:
                assert resp.status == 404, missing


async def test_wallboard_page_and_assets(start_gateway: StartGateway, cometd_dir: Path) -> None:
    """/desktop/supervisor is the wallboard (with the CSP); its module, stylesheet and the shared i18n module are
    served; the page files are served at their own URLs only."""
    gw = await desktop_gateway(start_gateway, cometd_dir)
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.base + "/desktop/supervisor") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
            assert '<script type="module" src="supervisor.js">' in await resp.text()
        for name, kind in [
            ("supervisor.js", "text/javascript"),
            ("supervisor.css", "text/css"),
            ("i18n.js", "text/javascript"),
        ]:
            async with http.get(f"{gw.base}/desktop/{name}") as resp:
                assert resp.status == 200 and resp.content_type == kind, name
        async with http.get(gw.base + "/desktop/supervisor.js") as resp:
            text = await resp.text()
            assert 'from "./vendor/cometd/cometd.js"' in text and 'from "./i18n.js"' in text
        for page in ("/desktop/supervisor.html", "/desktop/index.html"):
            async with http.get(gw.base + page) as resp:
                assert resp.status == 404, page


async def test_cometd_modules_from_the_installed_package(start_gateway: StartGateway, cometd_dir: Path) -> None:
    """Modules of the cometd package are served as JavaScript; other files, paths out of the package (`..`,
    escaped or not, symlinks) and hidden names are 404."""
    gw = await desktop_gateway(start_gateway, cometd_dir)
    async with aiohttp.ClientSession() as http:
        for name in ("cometd.js", "Client.js"):
            async with http.get(f"{gw.base}/desktop/vendor/cometd/{name}") as resp:
                assert resp.status == 200 and resp.content_type == "text/javascript"
                assert await resp.read() == (cometd_dir / name).read_bytes()
    refused = [
        "/desktop/vendor/cometd/package.json",
        "/desktop/vendor/cometd/leak.js",
        "/desktop/vendor/cometd/../secret.js",
        "/desktop/vendor/cometd/../../secret.js",
        "/desktop/vendor/cometd/%2e%2e/%2e%2e/secret.js",
        "/desktop/vendor/cometd/..%2f..%2fsecret.js",
        "/desktop/vendor/cometd/%2E%2E%5C%2E%2E%5Csecret.js",
        "/desktop/vendor/cometd/.hidden.js",
        "/desktop/vendor/cometd//etc/passwd",
        "/desktop/vendor/cometd/",
    ]
    for target in refused:
        status, body = await raw_get(gw, target)
        assert status == 404, (target, status)
        assert b"secret" not in body


async def test_missing_cometd_package_is_a_clear_503(start_gateway: StartGateway, tmp_path: Path) -> None:
    """Without the npm package the page says how to install it (503), never a traceback."""
    gw = await desktop_gateway(start_gateway, tmp_path / "not-installed")
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.base + "/desktop/") as resp:
            assert resp.status == 503 and resp.content_type == "text/html"
            text = await resp.text()
            assert "npm ci --prefix desktop" in text and "desktop.cometd_dir" in text
        async with http.get(gw.base + "/desktop/vendor/cometd/cometd.js") as resp:
            assert resp.status == 404


async def test_disabled(start_gateway: StartGateway, cometd_dir: Path) -> None:
    """desktop.enabled: false serves nothing under /desktop."""
    gw = await desktop_gateway(start_gateway, cometd_dir, enabled=False)
    async with aiohttp.ClientSession() as http:
        for path in ("/desktop/", "/desktop/desktop.js", "/desktop/api/config"):
            async with http.get(gw.base + path) as resp:
                assert resp.status == 404, path


async def test_campaigns_for_signed_in_agents(start_gateway: StartGateway, cometd_dir: Path) -> None:
    """/desktop/api/campaigns lists every campaign for an agent (Basic or its token); 401 without a browser
    prompt for wrong or no credentials; 403 for other roles. /desktop/api/config names the Bayeux path."""
    gw = await desktop_gateway(start_gateway, cometd_dir)
    url = gw.base + "/desktop/api/campaigns"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=basic("agent1", AGENT_PASSWORD)) as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["user"] == "agent1"
        assert [c["name"] for c in body["campaigns"]] == ["Callbacks", "Other Client", "Retention"]
        assert body["campaigns"][2] == {
            "name": "Retention",
            "applicationId": 101,
            "callingList": "ret",
            "dialingMode": "Preview",
            "agentGroup": "g1",
        }
        async with http.get(url, headers={"Authorization": "Bearer agent1-token-0123456789abcdef"}) as resp:
            assert resp.status == 200
        for headers in ({}, basic("agent1", "wrong"), basic("nobody", "x"), {"Authorization": "Basic !!"}):
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 401, headers
                assert "WWW-Authenticate" not in resp.headers
                assert await resp.json() == {"error": "wrong user name or password"}
        for headers in (basic("supervisor1", "sup-pass"), {"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}):
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 403
        async with http.get(gw.base + "/desktop/api/config") as resp:
            assert await resp.json() == {"bayeuxPath": "/api/v2/notifications"}


def test_desktop_package_pins_the_tested_cometd() -> None:
    """desktop/package.json pins the cometd the interop tests use, and the default desktop.cometd_dir is where
    `npm ci --prefix desktop` (run by `make run` and `make test`) installs it."""
    pinned = {
        name: json.loads((ROOT / name / "package.json").read_text())["dependencies"]["cometd"]
        for name in ("desktop", "tests")
    }
    assert pinned["desktop"] == pinned["tests"], pinned
    assert Settings().desktop.cometd_dir == Path("desktop/node_modules/cometd")
