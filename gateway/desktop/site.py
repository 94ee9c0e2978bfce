"""The agent desktop at /desktop/ and the supervisor wallboard at /desktop/supervisor: their static files, the
CometD client's modules, and two small JSON views.

The page is plain HTML, one ES module and CSS from `static/` beside this file (package data). The official
CometD JavaScript client is served from the installed npm package (`desktop.cometd_dir`), never committed to
the repository; an installed wheel carries a copy made at build time (`vendor/cometd/` beside this file,
see setup.py), used when `desktop.cometd_dir` has no client. The page imports it with a relative URL, so no
bundler is needed. The JSON views are ours, not GWS's: GWS has no campaign listing.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web

from gateway.logins import Logins
from gateway.services.campaigns import Campaigns
from gateway.settings import DesktopSettings

log = structlog.get_logger("gateway.desktop")

STATIC: Final = Path(__file__).resolve().parent / "static"
# The CometD client a wheel carries (copied from the npm package when the wheel was built; absent in a checkout
# until a wheel or sdist is built there).
PACKAGED_COMETD: Final = Path(__file__).resolve().parent / "vendor" / "cometd"
PREFIX: Final = "/desktop"
PAGES: Final = frozenset({"index.html", "supervisor.html"})  # served at their own URLs only
VENDOR: Final = PREFIX + "/vendor/cometd"
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
# Scripts only from this origin (no inline script, no eval); fetch, XHR and WebSocket to this origin only.
# CometD runs its timers in a Worker made from a blob (so a background tab's timers are not throttled).
CSP: Final = (
    "default-src 'self'; script-src 'self'; worker-src blob:; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS: Final = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

_MISSING_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agent desktop unavailable</title></head>
<body><h1>Agent desktop unavailable</h1>
<p>The page needs the official CometD JavaScript client (npm package <code>cometd</code>), which is not
installed where <code>desktop.cometd_dir</code> points (<code>{where}</code>), and this installation of the
gateway carries no copy of its own (a wheel built with <code>python -m build</code> does).</p>
<p>Install it from the repository root with <code>npm ci --prefix desktop</code> (<code>make run</code> does
this), or set <code>desktop.cometd_dir</code> in the config file to the installed package, then reload.</p>
</body></html>
"""


def _file_response(path: Path) -> web.FileResponse:
    headers = {**_HEADERS, "Content-Type": CONTENT_TYPES[path.suffix]}
    if path.suffix == ".html":
        headers["Content-Security-Policy"] = CSP
    return web.FileResponse(path, headers=headers)


class DesktopSite:
    """Routes of the agent desktop page."""

    def __init__(self, *, logins: Logins, campaigns: Campaigns, settings: DesktopSettings, bayeux_path: str) -> None:
        self._logins = logins
        self._campaigns = campaigns
        self._settings = settings
        self._bayeux_path = bayeux_path
        # Our own files, by name: nothing else under /desktop/ is ever served from `static/`.
        self._static = {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in CONTENT_TYPES}

    @property
    def cometd_dir(self) -> Path:
        """Where the CometD client is served from (resolved; it may not exist).

        `desktop.cometd_dir` when the client is there, else the copy an installed wheel carries, else (neither
        exists) `desktop.cometd_dir` again, which the 503 page names.
        """
        configured = self._settings.cometd_dir.resolve()
        if not (configured / "cometd.js").is_file() and (PACKAGED_COMETD / "cometd.js").is_file():
            return PACKAGED_COMETD
        return configured

    def installed(self) -> bool:
        """True when the CometD client is where the settings say."""
        return (self.cometd_dir / "cometd.js").is_file()

    def check(self) -> None:
        """Log once at start when the page cannot work, or when it uses the packaged client."""
        if not self.installed():
            log.warning(
                "desktop_unavailable",
                detail="npm package cometd not installed; run `npm ci --prefix desktop`",
                cometd_dir=str(self.cometd_dir),
            )
        elif self.cometd_dir == PACKAGED_COMETD:
            log.info("desktop_packaged_cometd", cometd_dir=str(PACKAGED_COMETD))

    def routes(self) -> list[web.RouteDef]:
        """The page's routes (none when `desktop.enabled` is false)."""
        if not self._settings.enabled:
            return []
        return [
            web.get(PREFIX, self.redirect, allow_head=False),
            web.get(PREFIX + "/", self.index),
            web.get(PREFIX + "/api/config", self.config),
            web.get(PREFIX + "/api/campaigns", self.campaign_list),
            web.get(PREFIX + "/supervisor", self.supervisor),
            web.get(VENDOR + "/{path:.+}", self.vendor),
            web.get(PREFIX + "/{name:[A-Za-z0-9_.-]+}", self.asset),
        ]

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        """GET /desktop -> /desktop/ (relative URLs in the page need the slash)."""
        raise web.HTTPMovedPermanently(PREFIX + "/")

    async def index(self, request: web.Request) -> web.StreamResponse:
        """GET /desktop/: the page, or a 503 page saying how to install the CometD client."""
        return self._page("index.html")

    async def supervisor(self, request: web.Request) -> web.StreamResponse:
        """GET /desktop/supervisor: the wallboard (its relative URLs resolve under /desktop/, as the desktop's)."""
        return self._page("supervisor.html")

    def _page(self, name: str) -> web.StreamResponse:
        if not self.installed():
            return web.Response(
                status=503,
                text=_MISSING_PAGE.format(where=html.escape(str(self._settings.cometd_dir))),
                content_type="text/html",
                headers=_HEADERS,
            )
        return _file_response(self._static[name])

    async def asset(self, request: web.Request) -> web.StreamResponse:
        """GET /desktop/{name}: one of the page's own files."""
        path = self._static.get(request.match_info["name"])
        if path is None or path.name in PAGES:
            raise web.HTTPNotFound()
        return _file_response(path)

    async def vendor(self, request: web.Request) -> web.StreamResponse:
        """GET /desktop/vendor/cometd/{path}: a module of the installed CometD client (.js files under it only)."""
        root = self.cometd_dir
        relative = request.match_info["path"]
        if "\\" in relative or "\0" in relative or any(part.startswith(".") for part in relative.split("/")):
            raise web.HTTPNotFound()
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or path.suffix != ".js" or not path.is_file():
            raise web.HTTPNotFound()
        return _file_response(path)

    async def config(self, request: web.Request) -> web.StreamResponse:
        """GET /desktop/api/config: what the page needs before sign-in (the Bayeux endpoint's path)."""
        return web.json_response({"bayeuxPath": self._bayeux_path}, headers=_HEADERS)

    async def campaign_list(self, request: web.Request) -> web.StreamResponse:
        """GET /desktop/api/campaigns: the campaigns an agent can work (HTTP Basic of an agent).

        No `WWW-Authenticate` on 401: the page asks for credentials itself, the browser must not.
        """
        identity = await self._logins.authorization(request.headers.get("Authorization"), request.remote)
        if identity is None:
            return web.json_response({"error": "wrong user name or password"}, status=401, headers=_HEADERS)
        if identity.role != "agent":
            return web.json_response({"error": "only agents use the desktop"}, status=403, headers=_HEADERS)
        campaigns = [
            {
                "name": c.name,
                "applicationId": c.application_id,
                "callingList": c.calling_list,
                "dialingMode": c.dialing_mode,
                "agentGroup": c.agent_group,
            }
            for c in self._campaigns.all()
        ]
        return web.json_response({"user": identity.name, "campaigns": campaigns}, headers=_HEADERS)
