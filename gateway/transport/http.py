"""Shared HTTP concerns of the Bayeux endpoint: origin allow-list, CORS headers, browser cookie."""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import SimpleCookie

from aiohttp import web

from gateway.settings import BayeuxSettings

_ALLOW_HEADERS = "Accept, Authorization, Content-Type, Pragma, X-Requested-With, X-Reference-Id"

Headers = list[tuple[str, str]]


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

    def cors_headers(self, headers: Mapping[str, str]) -> Headers:
        """Echo an allowed Origin with credentials (the JS client sends cookies: never `*`)."""
        origin = headers.get("Origin")
        if origin is None or not self.origin_allowed(headers):
            return []
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        ]

    def cors(self, request: web.Request, response: web.StreamResponse) -> None:
        """Add the CORS headers of `request` to `response`."""
        for name, value in self.cors_headers(request.headers):
            response.headers[name] = value

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

    def browser_id(self, headers: Mapping[str, str]) -> str | None:
        """The browser cookie sent with the request, if any."""
        header = headers.get("Cookie")
        if header is None:
            return None  # most long-polling clients send none: skip parsing
        name = self.settings.browser_cookie_name
        for pair in header.split(";"):
            key, sep, value = pair.partition("=")
            if sep and key.strip() == name:
                return value.strip().strip('"') or None
        return None

    def browser_cookie(self, value: str) -> str:
        """The Set-Cookie value for a handshake reply (HttpOnly, path /)."""
        s = self.settings
        cookie: SimpleCookie = SimpleCookie()
        cookie[s.browser_cookie_name] = value
        morsel = cookie[s.browser_cookie_name]
        morsel["path"] = "/"
        morsel["httponly"] = True
        if s.browser_cookie_secure:
            morsel["secure"] = True
        if s.browser_cookie_samesite:
            morsel["samesite"] = s.browser_cookie_samesite
        return morsel.OutputString()
