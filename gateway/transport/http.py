"""Shared HTTP concerns of the Bayeux endpoint: origin allow-list, CORS headers, browser cookie.

A browser request (one with an `Origin` header) is served when its origin is the gateway's own (the request's
scheme and `Host` as the server sees them: https when server.tls is on), is in bayeux.allowed_origins, or when
bayeux.allow_any_origin is on; any other is refused with 403 and gets no CORS headers. Requests without
`Origin` are not from a page of another site (non-browser clients, same-origin GETs): they always pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import SimpleCookie

from aiohttp import web

from gateway.settings import BayeuxSettings

_ALLOW_HEADERS = "Accept, Authorization, Content-Type, Pragma, X-Requested-With, X-Reference-Id"

Headers = list[tuple[str, str]]


class HttpPolicy:
    """Origin checks and response headers common to the Bayeux HTTP transports."""

    def __init__(self, settings: BayeuxSettings, *, tls: bool = False) -> None:
        self.settings = settings
        self._origins = frozenset(o.lower() for o in settings.allowed_origins)
        self._any = settings.allow_any_origin
        self._scheme = "https://" if tls else "http://"
        self._default_port = ":443" if tls else ":80"

    def origin_allowed(self, headers: Mapping[str, str]) -> bool:
        """Requests without Origin (non-browser clients) pass; a browser's must be ours, listed, or any allowed."""
        origin = headers.get("Origin")
        if origin is None or self._any:
            return True
        origin = origin.lower()
        return origin in self._origins or self._same_origin(origin, headers.get("Host"))

    def _same_origin(self, origin: str, host: str | None) -> bool:
        """True when `origin` is scheme://Host of this request (default ports left out on either side)."""
        if not host or not origin.startswith(self._scheme):
            return False
        return _without_port(origin[len(self._scheme) :], self._default_port) == _without_port(
            host.lower(), self._default_port
        )

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


def _without_port(authority: str, default: str) -> str:
    """`host[:port]` with the scheme's default port removed (http://a:80 is the origin http://a)."""
    return authority[: -len(default)] if authority.endswith(default) else authority
