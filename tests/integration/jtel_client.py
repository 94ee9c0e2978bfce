"""A small jtel REST client for the tests: real HTTP, Bearer token, JSON in and out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson


@dataclass
class JtelReply:
    """Status and parsed body."""

    status: int
    body: Any


@dataclass
class Jtel:
    """Calls {base}/rest/v1.0/{client}/dialler/... with a bearer token."""

    http: aiohttp.ClientSession
    base: str
    token: str | None
    client: int | str = 1

    def url(self, path: str) -> str:
        """The full URL of a path below the dialler base."""
        return f"{self.base}/rest/v1.0/{self.client}/dialler{path}"

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> JtelReply:
        """One request."""
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if self.token is not None:
            hdrs.setdefault("Authorization", f"Bearer {self.token}")
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        async with self.http.request(method, self.url(path), data=data, params=params, headers=hdrs) as resp:
            text = await resp.read()
            return JtelReply(resp.status, orjson.loads(text) if text else None)

    async def import_contact(self, overwrite: bool = False, reference: str | None = None, **fields: Any) -> JtelReply:
        """POST /contacts/import with defaults for the mandatory fields."""
        body = {"DiallerCampaignsID": 1, "Name": "Mustermann", "PhoneNumber1": "+4989123456", **fields}
        body = {k: v for k, v in body.items() if v is not ...}
        params = {"overwriteDuplicates": "true" if overwrite else "false"}
        if reference is not None:
            params["referenceId"] = reference
        return await self.call("POST", "/contacts/import", body, params=params)
