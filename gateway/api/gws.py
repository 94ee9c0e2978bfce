"""The Genesys Web Services outbound dialect: /api/v2/me, outbound records and campaigns.

Synchronous replies are `{"statusCode": 0}` or `{"statusCode": N, "statusMessage": "..."}`; the
results arrive asynchronously on the agent's CometD channels (/v2/me/outbound and /me/internal).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.api import gws_schemas as schemas
from gateway.api.common import (
    BadRequest,
    Correlator,
    ReferenceConflict,
    Reply,
    fingerprint,
    json_response,
    read_json,
)
from gateway.api.errors import (
    GWS_EXISTS,
    GWS_FORBIDDEN,
    GWS_INTERNAL,
    GWS_INVALID,
    GWS_MISSING,
    GWS_NO_PERMISSION,
    GWS_NOT_AUTHENTICATED,
    GWS_NOT_FOUND,
    gws_domain_error,
    gws_error,
)
from gateway.api.spec import bind
from gateway.api.spec_gws import OPERATIONS
from gateway.events.correlation import State
from gateway.identity import Directory, Identity
from gateway.services.errors import DomainError
from gateway.services.outbound import OutboundService, Payloads, Request
from gateway.settings import GwsSettings

log = structlog.get_logger("gateway.api.gws")

OK: Final = Reply(200, {"statusCode": 0})
CSRF_HEADER: Final = "X-CSRF-TOKEN"
_MAX_WEB_SESSIONS: Final = 100_000
Resend = Callable[[str, Payloads], Awaitable[None]]
M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class WebSession:
    """An authenticated HTTP session (the JSESSIONID cookie) and its CSRF token."""

    identity: Identity
    csrf: str
    expires: float


class WebSessions:
    """JSESSIONID -> session; idle sessions expire after gws.session_ttl_s; bounded in number."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._by_id: OrderedDict[str, WebSession] = OrderedDict()

    def create(self, identity: Identity) -> tuple[str, WebSession]:
        """A new session for `identity`."""
        session_id = secrets.token_urlsafe(24)
        session = WebSession(identity, secrets.token_urlsafe(24), self._clock() + self._ttl)
        self._by_id[session_id] = session
        while len(self._by_id) > _MAX_WEB_SESSIONS:
            self._by_id.popitem(last=False)
        return session_id, session

    def get(self, session_id: str | None) -> WebSession | None:
        """The live session with this id (its idle timer restarts)."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if session.expires < now:
            del self._by_id[session_id]
            return None
        session.expires = now + self._ttl
        self._by_id.move_to_end(session_id)
        return session


@dataclass(frozen=True, slots=True)
class Call:
    """An authenticated GWS request."""

    request: web.Request
    identity: Identity
    session_id: str
    session: WebSession
    new_session: bool


class _Refused(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body)
        self.reply = reply


class GwsApi:
    """Routes and handlers of the GWS outbound dialect."""

    def __init__(
        self,
        *,
        directory: Directory,
        outbound: OutboundService,
        correlator: Correlator,
        resend: Resend,
        settings: GwsSettings,
        observe_ack: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self._directory = directory
        self._outbound = outbound
        self._correlator = correlator
        self._registry = correlator.registry
        self._resend = resend
        self._settings = settings
        self._sessions = WebSessions(ttl_s=settings.session_ttl_s)
        self._observe_ack = observe_ack

    def routes(self) -> list[web.RouteDef]:
        """The dialect's routes: the operations of spec_gws."""
        handlers = {"me": self.me, "operation": self.operation, "records": self.records, "record": self.record}
        handlers["campaign"] = self.campaign
        return [web.route(op.method, op.path, self._endpoint(h)) for op, h in bind(OPERATIONS, handlers)]

    # -- the edge --------------------------------------------------------------------------------------

    def _endpoint(
        self, handler: Callable[[Call], Awaitable[Reply]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            call: Call | None = None
            try:
                call = self._authenticate(request)
                if request.method != "GET":
                    self._check_csrf(call)
                reply = await handler(call)
            except _Refused as refused:
                reply = refused.reply
            except BadRequest as exc:
                reply = gws_error(GWS_INVALID, exc.message)
            except DomainError as exc:
                reply = gws_domain_error(exc)
            except Exception:
                log.exception("gws_handler_failed", path=request.path)
                reply = gws_error(GWS_INTERNAL, "Internal error")
            response = json_response(reply)
            if reply.status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="contact-center-gateway"'
            if call is not None:
                if call.new_session:
                    response.set_cookie(
                        self._settings.session_cookie, call.session_id, path="/api/v2", httponly=True, samesite="Lax"
                    )
                if self._settings.csrf and request.method == "GET":
                    response.headers["X-CSRF-HEADER"] = CSRF_HEADER
                    response.headers[CSRF_HEADER] = call.session.csrf
            return response

        return endpoint

    def _authenticate(self, request: web.Request) -> Call:
        header = request.headers.get("Authorization")
        cookie = request.cookies.get(self._settings.session_cookie)
        session = self._sessions.get(cookie)
        if header:
            identity = self._directory.from_authorization(header)
            if identity is None:
                # Never say which part of the credentials was wrong.
                raise _Refused(gws_error(GWS_NOT_AUTHENTICATED, "User not authenticated"))
            if session is not None and session.identity.name == identity.name and cookie:
                return Call(request, identity, cookie, session, False)
            session_id, session = self._sessions.create(identity)
            return Call(request, identity, session_id, session, True)
        if session is not None and cookie:
            return Call(request, session.identity, cookie, session, False)
        raise _Refused(gws_error(GWS_NOT_AUTHENTICATED, "User not authenticated"))

    def _check_csrf(self, call: Call) -> None:
        if not self._settings.csrf:
            return
        token = call.request.headers.get(CSRF_HEADER)
        # A session created by this very request has no token the client could know.
        if call.new_session or not token or not secrets.compare_digest(token, call.session.csrf):
            raise _Refused(gws_error(GWS_FORBIDDEN, "Missing or invalid Csrf token"))

    # -- resources -------------------------------------------------------------------------------------

    async def me(self, call: Call) -> Reply:
        """GET /api/v2/me: the user and its device."""
        identity = call.identity
        devices = (
            [{"id": identity.device, "path": f"/devices/{identity.device}", "deviceState": "Active"}]
            if identity.device
            else []
        )
        return Reply(
            200,
            {
                "statusCode": 0,
                "user": {
                    "id": identity.name,
                    "userName": identity.name,
                    "roles": [f"ROLE_{identity.role.upper()}"],
                    "skills": [{"name": s, "level": 1} for s in identity.skills],
                    "devices": devices,
                },
            },
        )

    async def operation(self, call: Call) -> Reply:
        """GET /api/v2/me/operations/{referenceId}: the state and notifications of an operation."""
        entry = self._registry.get(call.identity.name, call.request.match_info["reference_id"])
        if entry is None:
            return gws_error(GWS_NOT_FOUND, "Operation not found")
        done = entry.state is State.DONE
        result = entry.result if isinstance(entry.result, dict) else {}
        return Reply(
            200,
            {
                "statusCode": 0,
                "operation": {
                    "referenceId": entry.reference_id,
                    "operationName": entry.operation,
                    "state": "Done" if done else "Pending",
                    "httpStatus": entry.status,
                    "statusCode": result.get("statusCode") if done else None,
                    "statusMessage": result.get("statusMessage"),
                    "notifications": entry.notification or [],
                },
            },
        )

    async def record(self, call: Call) -> Reply:
        """POST /api/v2/me/outbound-records/{recordHandle}"""
        raw_handle = call.request.match_info["record_handle"]
        # ASCII digits only: str.isdigit() also holds for "²", which int() refuses.
        if not (raw_handle.isascii() and raw_handle.isdigit()) or not 0 < int(raw_handle) < 2**63:
            return gws_error(GWS_NOT_FOUND, f"Record {raw_handle} not found (a record handle is a number)")
        handle = int(raw_handle)
        body, raw, name = await self._operation(call)
        o = self._outbound
        if name == "CompleteRecord":
            m = _parse(schemas.CompleteRecord, body)
            return await self._run(call, m, raw, lambda req: o.complete(req, handle, m.callResult, m.phoneNumber))
        if name == "RejectRecord":
            r = _parse(schemas.RecordOp, body)
            return await self._run(call, r, raw, lambda req: o.reject(req, handle))
        if name == "DoNotCallRecord":
            d = _parse(schemas.DoNotCallRecord, body)
            return await self._run(
                call, d, raw, lambda req: o.do_not_call(req, handle, d.phoneNumber, d.chainAttribute)
            )
        if name == "RescheduleRecord":
            s = _parse(schemas.RescheduleRecord, body)
            return await self._run(call, s, raw, lambda req: o.reschedule(req, handle, s.callbackType, s.timestamp))
        if name == "UpdateRecord":
            u = _parse(schemas.UpdateRecord, body)
            fields = {
                "phoneNumber": u.phoneNumber,
                "timeZone": u.timeZone,
                "phoneType": u.phoneType,
                "from": u.from_,
                "until": u.until,
            }
            return await self._run(call, u, raw, lambda req: o.update(req, handle, fields))
        if name == "GetChainedRecord":
            g = _parse(schemas.GetChainedRecord, body)
            return await self._run(call, g, raw, lambda req: o.chained(req, handle))
        return gws_error(GWS_INVALID, f"Unknown operationName {name!r} for a record")

    async def records(self, call: Call) -> Reply:
        """POST /api/v2/me/outbound-records (AddRecord, DoNotCallRecord by phoneNumber)"""
        body, raw, name = await self._operation(call)
        o = self._outbound
        if name == "AddRecord":
            a = _parse(schemas.AddRecord, body)
            fields = {"timeZone": a.timeZone, "phoneType": a.phoneType, "from": a.from_, "until": a.until}
            other = a.otherFields or {}
            return await self._run(call, a, raw, lambda req: o.add(req, a.phoneNumber, a.chainId, fields, other))
        if name == "DoNotCallRecord":
            d = _parse(schemas.DoNotCallNumber, body)
            return await self._run(call, d, raw, lambda req: o.do_not_call_number(req, d.phoneNumber))
        return gws_error(GWS_INVALID, f"Unknown operationName {name!r} for outbound-records")

    async def campaign(self, call: Call) -> Reply:
        """POST /api/v2/me/outbound-campaigns/{campaignName}"""
        body, raw, name = await self._operation(call)
        campaign_name = call.request.match_info["campaign_name"]
        o = self._outbound
        actions = {
            "StartPreviewSession": o.start_preview,
            "GetPreviewRecord": o.get_preview,
            "EndPreviewSession": o.end_preview,
        }
        action = actions.get(name)
        if action is None:
            return gws_error(GWS_INVALID, f"Unknown operationName {name!r} for a campaign")
        m = _parse(schemas.CampaignOp, body)
        return await self._run(call, m, raw, action, campaign_name=campaign_name)

    # -- helpers ---------------------------------------------------------------------------------------

    async def _operation(self, call: Call) -> tuple[dict[str, Any], bytes, str]:
        if call.identity.role != "agent":
            raise _Refused(gws_error(GWS_NO_PERMISSION, "Only agents work outbound records"))
        try:
            body, raw = await read_json(call.request)
        except BadRequest as exc:
            raise _Refused(gws_error(GWS_INVALID, exc.message)) from None
        if not isinstance(body, dict):
            raise _Refused(gws_error(GWS_INVALID, "Request body must be a JSON object"))
        name = body.get("operationName")
        if name is None:
            raise _Refused(gws_error(GWS_MISSING, "Missing required parameter: operationName"))
        if not isinstance(name, str):
            raise _Refused(gws_error(GWS_INVALID, "operationName must be a string"))
        return body, raw, name

    async def _run(
        self,
        call: Call,
        model: Any,
        raw: bytes,
        action: Callable[[Request], Awaitable[Payloads]],
        *,
        campaign_name: str | None = None,
    ) -> Reply:
        identity = call.identity
        if identity.device and model.devicePath != f"/devices/{identity.device}":
            return gws_error(GWS_INVALID, "devicePath is not the agent's device")
        reference = str(model.referenceId) if model.referenceId is not None else None
        req = Request(
            agent=identity.name,
            campaign_name=campaign_name if campaign_name is not None else model.campaignName,
            application_id=model.applicationId,
            calling_list=getattr(model, "callingList", None),
            reference_id=reference,
            echo={"devicePath": model.devicePath},
        )

        received = time.perf_counter()

        async def apply() -> tuple[Reply, Payloads]:
            try:
                payloads = await action(req)
            except DomainError as exc:
                return gws_domain_error(exc), []
            # The acknowledgement has been handed to the agent's sessions when the action returns.
            self._observe_ack(time.perf_counter() - received)
            return OK, payloads

        async def resend(notifications: Any) -> None:
            # A retry is not applied again, but its acknowledgement is sent again.
            await self._resend(identity.name, notifications or [])

        try:
            return await self._correlator.run_notified(
                user=identity.name,
                reference=reference,
                operation=model.operationName,
                fingerprint=fingerprint(call.request, raw),
                apply=apply,
                on_retry=resend,
                acknowledge=False,  # the /v2/me/outbound notification is GWS's acknowledgement
            )
        except ReferenceConflict:
            return gws_error(GWS_EXISTS, f"referenceId {reference} was already used for a different request")


def _parse(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "missing":
            raise _Refused(gws_error(GWS_MISSING, f"Missing required parameter: {where}")) from None
        raise _Refused(gws_error(GWS_INVALID, f"Invalid parameter {where}: {first['msg']}")) from None
