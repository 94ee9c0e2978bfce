"""The SNtial Wait waiting-field dialect, under /api/v1/SNtialWait/.

Envelope `{statusText, statusCode, item}` as the vendor's example; errors carry `item: null` (and, for bad
requests, a `message` saying what is wrong).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiohttp import web

from gateway.api.common import BadRequest, Correlator, ReferenceConflict, Reply, fingerprint, json_response, read_json
from gateway.api.common import reference_id as get_reference
from gateway.api.errors import sntial_envelope as envelope
from gateway.api.spec import bind
from gateway.api.spec_sntial import OPERATIONS
from gateway.identity import Directory, Identity
from gateway.services.errors import DomainError, InvalidInput, NotFound
from gateway.services.waitfield import Waitfield

log = structlog.get_logger("gateway.api.sntial")


@dataclass(frozen=True, slots=True)
class Call:
    """An authenticated SNtial request."""

    request: web.Request
    identity: Identity


class SntialApi:
    """Routes and handlers of the waiting-field dialect."""

    def __init__(self, *, directory: Directory, waitfield: Waitfield, correlator: Correlator) -> None:
        self._directory = directory
        self._waitfield = waitfield
        self._correlator = correlator

    def routes(self) -> list[web.RouteDef]:
        """The dialect's routes: the operations of spec_sntial."""
        handlers = {
            "create": self.create,
            "list_contacts": self.list_contacts,
            "get": self.get,
            "remove": self.remove,
            "get_settings": self.get_settings,
            "put_settings": self.put_settings,
        }
        return [web.route(op.method, op.path, self._endpoint(h)) for op, h in bind(OPERATIONS, handlers)]

    def _endpoint(
        self, handler: Callable[[Call], Awaitable[Reply]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            try:
                identity = self._directory.service_from_bearer(request.headers.get("Authorization"))
                if identity is None:
                    reply = envelope(401, None, "a service's bearer token is required")
                else:
                    reply = await handler(Call(request, identity))
            except BadRequest as exc:
                reply = envelope(exc.status, None, exc.message)
            except ReferenceConflict:
                reply = envelope(409, None, "referenceId was already used for a different request")
            except DomainError as exc:
                reply = _domain(exc)
            except Exception:
                log.exception("sntial_handler_failed", path=request.path)
                reply = envelope(500, None, "internal error")
            return json_response(reply)

        return endpoint

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
        async def guarded() -> Reply:
            # A refused request is an outcome too: remembered under its referenceId like a success.
            try:
                return await apply()
            except DomainError as exc:
                return _domain(exc)

        return await self._correlator.run(
            user=call.identity.name,
            reference=get_reference(call.request),
            operation=operation,
            fingerprint=fingerprint(call.request, raw),
            apply=guarded,
        )


def _domain(exc: DomainError) -> Reply:
    if isinstance(exc, NotFound):
        return envelope(404, None)  # exactly the vendor's 404
    if isinstance(exc, InvalidInput):
        return envelope(400, None, exc.message)
    return envelope(409, None, exc.message)
