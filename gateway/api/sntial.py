"""The SNtial Wait waiting-field dialect, under /api/v1/SNtialWait/.

Envelope `{statusText, statusCode, item}` as the vendor's example; errors carry `item: null` (and, for bad
requests, a `message` saying what is wrong).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.api.common import Reply, fingerprint, read_json
from gateway.api.common import reference_id as get_reference
from gateway.api.correlator import Correlator
from gateway.api.edge import Call, Handler
from gateway.api.errors import SNTIAL, sntial_envelope
from gateway.api.failures import BadRequest, Unauthenticated
from gateway.identity import Directory
from gateway.services.waitfield import Waitfield


def envelope(status: int, item: object) -> Reply:
    """A successful answer: the item in SNtial's envelope."""
    return sntial_envelope(status, item)


class SntialApi:
    """The waiting-field dialect: its edge (a service's Bearer token) and its handlers."""

    errors = SNTIAL

    def __init__(self, *, directory: Directory, waitfield: Waitfield, correlator: Correlator) -> None:
        self._directory = directory
        self._waitfield = waitfield
        self._correlator = correlator

    def handlers(self) -> dict[str, Handler]:
        """Handlers by the operation table's keys (spec_sntial)."""
        return {
            "create": self.create,
            "list_contacts": self.list_contacts,
            "get": self.get,
            "remove": self.remove,
            "get_settings": self.get_settings,
            "put_settings": self.put_settings,
        }

    async def authenticate(self, request: web.Request) -> Call:
        """A service's (or supervisor's) bearer token."""
        identity = self._directory.service_from_bearer(request.headers.get("Authorization"))
        if identity is None:
            raise Unauthenticated
        return Call(request, identity)

    def finish(self, request: web.Request, call: Call | None, reply: Reply, response: web.StreamResponse) -> None:
        """Nothing to add."""

    async def create(self, call: Call) -> Reply:
        """POST contact (CreateContact)."""
        body, raw = await read_json(call.request)
        if not isinstance(body, dict):
            raise BadRequest("body must be a contact object")
        reference = get_reference(call.request)

        async def apply() -> Reply:
            return envelope(200, await self._waitfield.create(body, reference))

        return await self._correlated(call, "CreateContact", raw, apply)

    async def get(self, call: Call) -> Reply:
        """GET contact/{id} (GetContact)."""
        return envelope(200, await self._waitfield.get(call.request.match_info["id"]))

    async def list_contacts(self, call: Call) -> Reply:
        """GET contacts[?queue=&state=&externalId=]."""
        q = call.request.query
        items = await self._waitfield.find(queue=q.get("queue"), state=q.get("state"), external_id=q.get("externalId"))
        return envelope(200, items)

    async def remove(self, call: Call) -> Reply:
        """DELETE contact/{id} and POST contact/remove/{id} (RemoveContact)."""
        contact_id = call.request.match_info["id"]
        reference = get_reference(call.request)

        async def apply() -> Reply:
            return envelope(200, await self._waitfield.remove(contact_id, reference))

        return await self._correlated(call, "RemoveContact", b"", apply)

    async def get_settings(self, call: Call) -> Reply:
        """GET queues/{queue}/settings."""
        return envelope(200, self._waitfield.settings(call.request.match_info["queue"]))

    async def put_settings(self, call: Call) -> Reply:
        """PUT queues/{queue}/settings."""
        body, _ = await read_json(call.request)
        return envelope(200, await self._waitfield.put_settings(call.request.match_info["queue"], body))

    async def _correlated(self, call: Call, operation: str, raw: bytes, apply: Callable[[], Awaitable[Reply]]) -> Reply:
        # A refused request is an outcome too: remembered under its referenceId like a success.
        return await self._correlator.run(
            user=call.identity.name,
            reference=get_reference(call.request),
            operation=operation,
            fingerprint=fingerprint(call.request, raw),
            apply=apply,
            errors=SNTIAL,
        )
