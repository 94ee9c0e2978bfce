"""The supervisor's views under /api/v2/supervisor: agents, campaigns and queues as they are now.

A wallboard reads them once (and again after a re-handshake), then follows the events. Answers are in
GWS's style: `{"statusCode": 0, ...}`, errors `{"statusCode", "statusMessage"}`.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.common import Reply
from gateway.api.edge import Call, Handler
from gateway.api.errors import SUPERVISOR
from gateway.api.failures import NotPermitted, Unauthenticated
from gateway.logins import Logins
from gateway.services.supervision import Supervision

WATCHERS = ("supervisor", "service")


class SupervisorApi:
    """Its edge (Basic or Bearer of a supervisor or service) and its three views."""

    errors = SUPERVISOR

    def __init__(self, *, logins: Logins, supervision: Supervision) -> None:
        self._logins = logins
        self._supervision = supervision

    def handlers(self) -> dict[str, Handler]:
        """Handlers by the operation table's keys (spec_supervisor)."""
        return {"agents": self.agents, "campaigns": self.campaigns, "queues": self.queues}

    async def authenticate(self, request: web.Request) -> Call:
        """A supervisor's or service's credentials; an agent's are refused (403)."""
        # Off the event loop, limited per user and address, one cost for every name (gateway.logins).
        identity = await self._logins.authorization(request.headers.get("Authorization"), request.remote)
        if identity is None:
            raise Unauthenticated
        if identity.role not in WATCHERS:
            raise NotPermitted("Only supervisors and services see the supervisor's views")
        return Call(request, identity)

    def finish(self, request: web.Request, call: Call | None, reply: Reply, response: web.StreamResponse) -> None:
        """No Basic challenge: the wallboard asks for credentials itself, the browser must not."""

    async def agents(self, call: Call) -> Reply:
        """GET /api/v2/supervisor/agents"""
        return Reply(200, {"statusCode": 0, "agents": await self._supervision.agents()})

    async def campaigns(self, call: Call) -> Reply:
        """GET /api/v2/supervisor/campaigns"""
        return Reply(200, {"statusCode": 0, "campaigns": await self._supervision.campaigns()})

    async def queues(self, call: Call) -> Reply:
        """GET /api/v2/supervisor/queues"""
        return Reply(200, {"statusCode": 0, "queues": await self._supervision.queues()})
