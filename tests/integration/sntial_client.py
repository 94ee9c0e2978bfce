"""A SNtial Wait client for the tests: Bearer token, the vendor's envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson


@dataclass
class Sntial:
    """Calls /api/v1/SNtialWait/... with a bearer token."""

    http: aiohttp.ClientSession
    base: str
    token: str | None

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request; returns status and parsed body."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        async with self.http.request(
            method, f"{self.base}/api/v1/SNtialWait/{path}", data=data, params=params, headers=headers
        ) as resp:
            return resp.status, orjson.loads(await resp.read())

    async def create(self, queue: str = "Support", **fields: Any) -> tuple[int, Any]:
        """CreateContact with valid defaults."""
        body = {
            "externalId": "ext-1",
            "callingNumber": "+491701234567",
            "calledNumber": "08001234",
            "queue": queue,
            "additional": {"Vorname": "Max", "Nachname": "Moritz", "KDNR": "111222"},
            **fields,
        }
        return await self.call("POST", "contact", {k: v for k, v in body.items() if v is not ...})
