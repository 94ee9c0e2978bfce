"""aiocometd-ng extensions that present gateway credentials (header, or ext.authentication on handshake)."""

from __future__ import annotations

import base64
from typing import Any

from aiocometd_ng.extensions import AuthExtension


class BasicAuth(AuthExtension):
    """Sends `Authorization: Basic` on every transport request (HTTP and the WebSocket upgrade)."""

    def __init__(self, user: str, password: str) -> None:
        self._header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def outgoing(self, payload: list[dict[str, Any]], headers: dict[str, str]) -> None:
        headers["Authorization"] = self._header

    async def incoming(self, payload: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        return None


class ExtAuth(AuthExtension):
    """Puts `ext.authentication` ({user, password} or {token}) into every message it sends.

    A session is bound to its identity: a request on another connection (every long-polling request of a
    client that keeps no cookie, as aiohttp at an IP address; a new WebSocket) must prove it again.
    """

    def __init__(self, **credentials: str) -> None:
        self._credentials = credentials

    async def outgoing(self, payload: list[dict[str, Any]], headers: dict[str, str]) -> None:
        for message in payload:
            message.setdefault("ext", {})["authentication"] = dict(self._credentials)

    async def incoming(self, payload: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        return None
