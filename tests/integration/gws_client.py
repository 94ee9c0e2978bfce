"""An agent for the GWS tests: REST with Basic auth (and its session cookie), CometD with aiocometd-ng."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiocometd_ng import Client, ConnectionType

from tests.interop.cometd_auth import BasicAuth

DEVICE1 = "5c0c2f1e-6f1b-4d7a-9a3e-1b2c3d4e5f60"


@dataclass
class GwsReply:
    """HTTP status and body."""

    status: int
    body: Any
    headers: Any = None


@dataclass
class Agent:
    """One agent desktop: HTTP session plus (after `connect`) a CometD client."""

    base: str
    user: str
    password: str
    device: str | None = None
    http: aiohttp.ClientSession = field(init=False)
    cometd: Client | None = None
    csrf: str | None = None

    async def __aenter__(self) -> Agent:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.cometd is not None:
            await self.cometd.close()
        await self.http.close()

    @property
    def device_path(self) -> str:
        """The agent's devicePath."""
        return f"/devices/{self.device}" if self.device else "/devices/none"

    def auth(self) -> dict[str, str]:
        """The Basic Authorization header."""
        return {"Authorization": "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()}

    async def connect(self, transport: ConnectionType = ConnectionType.WEBSOCKET) -> Client:
        """Open a CometD session subscribed to the agent's outbound and internal channels."""
        self.cometd = Client(
            self.base + "/api/v2/notifications", transport, ssl=True, auth=BasicAuth(self.user, self.password)
        )
        await self.cometd.open()
        await self.cometd.subscribe("/v2/me/outbound")
        await self.cometd.subscribe("/me/internal")
        return self.cometd

    async def post(
        self,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        auth: bool = True,
        headers: dict[str, str] | None = None,
    ) -> GwsReply:
        """POST to /api/v2/me/... ."""
        hdrs = {"Content-Type": "application/json", **(self.auth() if auth else {}), **(headers or {})}
        if self.csrf:
            hdrs["X-CSRF-TOKEN"] = self.csrf
        data = raw if raw is not None else orjson.dumps(body)
        async with self.http.post(self.base + "/api/v2/me" + path, data=data, headers=hdrs) as resp:
            return GwsReply(resp.status, await resp.json(), resp.headers)

    async def get(self, path: str = "", *, auth: bool = True) -> GwsReply:
        """GET /api/v2/me... ."""
        async with self.http.get(self.base + "/api/v2/me" + path, headers=self.auth() if auth else {}) as resp:
            return GwsReply(resp.status, await resp.json(), resp.headers)

    async def campaign_op(
        self, name: str, campaign: str = "Retention", application: int = 101, reference: str | None = None
    ) -> GwsReply:
        """Start/End preview session or GetPreviewRecord."""
        body: dict[str, Any] = {"operationName": name, "applicationId": application, "devicePath": self.device_path}
        if reference is not None:
            body["referenceId"] = reference
        return await self.post(f"/outbound-campaigns/{campaign}", body)

    async def record_op(self, handle: int | str, name: str, reference: str | None = None, **fields: Any) -> GwsReply:
        """An operation on one record (Retention campaign defaults)."""
        body: dict[str, Any] = {
            "operationName": name,
            "applicationId": 101,
            "campaignName": "Retention",
            "callingList": "ret",
            "devicePath": self.device_path,
            **fields,
        }
        body = {k: v for k, v in body.items() if v is not ...}
        if reference is not None:
            body["referenceId"] = reference
        return await self.post(f"/outbound-records/{handle}", body)

    async def next(self, kind: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """The next /v2/me/outbound message (skipping /me/internal ones), optionally of one kind."""
        assert self.cometd is not None
        while True:
            message: dict[str, Any] = await asyncio.wait_for(self.cometd.receive(), timeout)
            if message["channel"] != "/v2/me/outbound":
                continue
            if kind is None or message["data"]["notificationType"] == kind:
                return message

    async def internal(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next /me/internal DeviceUserEventMessage for user event `kind` (skipping others)."""
        assert self.cometd is not None
        while True:
            message: dict[str, Any] = await asyncio.wait_for(self.cometd.receive(), timeout)
            if message["channel"] == "/me/internal" and message["data"]["userData"]["GSW_USER_EVENT"] == kind:
                return message

    async def next_any(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next message on any subscribed channel."""
        assert self.cometd is not None
        message: dict[str, Any] = await asyncio.wait_for(self.cometd.receive(), timeout)
        return message

    async def preview(self) -> int:
        """Start a preview session and reserve one record; return its handle."""
        assert (await self.campaign_op("StartPreviewSession")).status == 200
        await self.next("PreviewSessionStarted")
        assert (await self.campaign_op("GetPreviewRecord")).status == 200
        record = await self.next()
        assert record["data"]["notificationType"] == "PreviewRecord", record
        handle: int = record["data"]["record"]["recordHandle"]
        return handle
