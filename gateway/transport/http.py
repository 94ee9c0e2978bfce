"""Shared HTTP concerns of the Bayeux endpoint: origin allow-list, CORS headers, browser cookie."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.settings import BayeuxSettings

_ALLOW_HEADERS = "Accept, Authorization, Content-Type, Pragma, X-Requested-With, X-Reference-Id"


class HttpPolicy:
    """Origin checks and response headers common to the Bayeux HTTP transports."""

    def __init__(self, settings: BayeuxSettings) -> None:
        self.settings = settings
        self._origins = frozenset(settings.allowed_origins)

    def origin_allowed(self, headers: Mapping[str, str]) -> bool:
        """Requests without Origin (non-browser clients) pass; browsers must be on the allow-list."""
        origin = headers.get("Origin")
        return origin is None or not self._origins or origin in self._origins

    def refuse_origin(self) -> web.Response:
        """The reply to a browser from an origin not on the allow-list."""
        return web.json_response({"error": "origin not allowed"}, status=403)

    def cors(self, request: web.Request, response: web.StreamResponse) -> None:
        """Echo an allowed Origin with credentials (the JS client sends cookies: never `*`)."""
        origin = request.headers.get("Origin")
        if origin is not None and self.origin_allowed(request.headers):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"

    def preflight(self, request: web.Request) -> web.Response:
        """Answer a CORS preflight (OPTIONS)."""
        if not self.origin_allowed(request.headers):
            return self.refuse_origin()
        response = web.Response(status=200)
        self.cors(request, response)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = _ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = "3600"
        return response

    def browser_id(self, request: web.Request) -> str | None:
        """The browser cookie sent with the request, if any."""
        if "Cookie" not in request.headers:
            return None  # most long-polling clients send none: skip parsing
        return request.cookies.get(self.settings.browser_cookie_name) or None

    def set_browser_cookie(self, response: web.StreamResponse, value: str) -> None:
        """Set the browser cookie on a handshake reply (HttpOnly, path /)."""
        s = self.settings
        response.set_cookie(
            s.browser_cookie_name,
            value,
            path="/",
            httponly=True,
            secure=s.browser_cookie_secure or None,
            samesite=s.browser_cookie_samesite or None,
        )
