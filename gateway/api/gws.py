"""The Genesys Web Services outbound dialect: /api/v2/me, outbound records and campaigns.

Synchronous replies are `{"statusCode": 0}` or `{"statusCode": N, "statusMessage": "..."}`; the
results arrive asynchronously on the agent's CometD channels (/v2/me/outbound and /me/internal).
Each operation is dispatched from the spec table (spec_gws): its name picks the body model, and the
action below with the same name runs it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.api import gws_schemas as schemas
from gateway.api.common import Reply, fingerprint, read_json
from gateway.api.correlator import Correlator
from gateway.api.edge import Call, Handler
from gateway.api.errors import GWS
from gateway.api.failures import BadRequest, CsrfRefused, MissingParameter, NotPermitted, Unauthenticated
from gateway.api.spec_gws import CAMPAIGN_OPERATIONS, RECORD_OPERATIONS, RECORDS_OPERATIONS
from gateway.api.web_sessions import WebSessionStore
from gateway.bayeux.replay import replay_message
from gateway.events.correlation import State
from gateway.logins import Logins
from gateway.services.errors import NotFound
from gateway.services.outbound import OutboundService
from gateway.services.outbox import Payloads
from gateway.services.records import Request
from gateway.settings import GwsSettings
from gateway.store.log import NotificationLog
from gateway.wire.replay import ALL_RETAINED, NEW_ONLY, invalid_replay_id

OK: Final = Reply(200, {"statusCode": 0})
MAX_PAGE: Final = 1000
CSRF_HEADER: Final = "X-CSRF-TOKEN"
Resend = Callable[[str, Payloads], Awaitable[None]]
M = TypeVar("M", bound=BaseModel)

# An action runs a parsed operation: (service, request, record handle or None, body model) -> notifications.
Action = Callable[[OutboundService, Request, int, Any], Awaitable[Payloads]]
CampaignAction = Callable[[OutboundService, Request], Awaitable[Payloads]]


def _update(o: OutboundService, req: Request, handle: int, m: schemas.UpdateRecord) -> Awaitable[Payloads]:
    fields = {"phoneNumber": m.phoneNumber, "timeZone": m.timeZone, "phoneType": m.phoneType,
              "from": m.from_, "until": m.until}  # fmt: skip
    return o.update(req, handle, fields)


def _add(o: OutboundService, req: Request, handle: int, m: schemas.AddRecord) -> Awaitable[Payloads]:
    fields = {"timeZone": m.timeZone, "phoneType": m.phoneType, "from": m.from_, "until": m.until}
    return o.add(req, m.phoneNumber, m.chainId, fields, m.otherFields or {})


# Keyed exactly as the spec tables (checked by `bind` at start): operationName -> action.
RECORD_ACTIONS: Final[dict[str, Action]] = {
    "CompleteRecord": lambda o, req, h, m: o.complete(req, h, m.callResult, m.phoneNumber),
    "RejectRecord": lambda o, req, h, m: o.reject(req, h),
    "DoNotCallRecord": lambda o, req, h, m: o.do_not_call(req, h, m.phoneNumber, m.chainAttribute),
    "RescheduleRecord": lambda o, req, h, m: o.reschedule(req, h, m.callbackType, m.timestamp),
    "UpdateRecord": _update,
    "GetChainedRecord": lambda o, req, h, m: o.chained(req, h),
}
RECORDS_ACTIONS: Final[dict[str, Action]] = {
    "AddRecord": _add,
    "DoNotCallRecord": lambda o, req, h, m: o.do_not_call_number(req, m.phoneNumber),
}
CAMPAIGN_ACTIONS: Final[dict[str, CampaignAction]] = {
    "StartPreviewSession": OutboundService.start_preview,
    "GetPreviewRecord": OutboundService.get_preview,
    "EndPreviewSession": OutboundService.end_preview,
}


A = TypeVar("A")


def _table(models: Mapping[str, type[BaseModel]], actions: Mapping[str, A]) -> dict[str, tuple[type[BaseModel], A]]:
    """operationName -> (body model, action); a name without its other half stops the gateway at start."""
    if set(models) != set(actions):
        raise ValueError(f"GWS operations without action or model: {sorted(set(models) ^ set(actions))}")
    return {name: (model, actions[name]) for name, model in models.items()}


class GwsApi:
    """The GWS outbound dialect: its edge (Basic, then the JSESSIONID cookie, and CSRF) and its handlers."""

    errors = GWS

    def __init__(
        self,
        *,
        logins: Logins,
        outbound: OutboundService,
        correlator: Correlator,
        resend: Resend,
        settings: GwsSettings,
        sessions: WebSessionStore,
        observe_ack: Callable[[float], None] = lambda seconds: None,
        log: NotificationLog | None = None,
        log_of: Callable[[str], str] = lambda user: user,
    ) -> None:
        self._log = log
        self._log_of = log_of
        self._logins = logins
        self._outbound = outbound
        self._correlator = correlator
        self._registry = correlator.registry
        self._resend = resend
        self._settings = settings
        self._sessions = sessions
        self._observe_ack = observe_ack
        self._record_ops = _table(RECORD_OPERATIONS, RECORD_ACTIONS)
        self._records_ops = _table(RECORDS_OPERATIONS, RECORDS_ACTIONS)
        self._campaign_ops = _table(CAMPAIGN_OPERATIONS, CAMPAIGN_ACTIONS)

    def handlers(self) -> dict[str, Handler]:
        """Handlers by the operation table's keys (spec_gws)."""
        return {
            "me": self.me,
            "operation": self.operation,
            "records": self.records,
            "record": self.record,
            "campaign": self.campaign,
            "notifications": self.notifications,
        }

    # -- the edge --------------------------------------------------------------------------------------

    async def authenticate(self, request: web.Request) -> Call:
        """HTTP Basic (a new cookie session), or the session cookie alone; state changes need the CSRF token
        (gws.csrf: cookie, the default, asks it of cookie-only requests; always of every one; off of none)."""
        header = request.headers.get("Authorization")
        cookie = request.cookies.get(self._settings.session_cookie)
        session = await self._sessions.get(cookie)
        if header:
            identity = await self._logins.authorization(header, request.remote)
            if identity is None:
                raise Unauthenticated  # never say which part was wrong, nor that the user or address is locked
            if session is not None and session.identity.name == identity.name and cookie:
                call = Call(request, identity, web_session=session, session_id=cookie)
            else:
                session_id, session = await self._sessions.create(identity)
                call = Call(request, identity, web_session=session, session_id=session_id, new_session=True)
        elif session is not None and cookie:
            call = Call(request, session.identity, web_session=session, session_id=cookie)
        else:
            raise Unauthenticated
        if request.method != "GET":
            self._check_csrf(call, cookie_only=not header)
        return call

    def finish(self, request: web.Request, call: Call | None, reply: Reply, response: web.StreamResponse) -> None:
        """The Basic challenge on 401; the session cookie when new; the CSRF token on GETs when CSRF is on."""
        if reply.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="contact-center-gateway"'
        if call is None or call.web_session is None or call.session_id is None:
            return
        if call.new_session:
            response.set_cookie(
                self._settings.session_cookie, call.session_id, path="/api/v2", httponly=True, samesite="Lax"
            )
        if self._settings.csrf != "off" and request.method == "GET":
            response.headers["X-CSRF-HEADER"] = CSRF_HEADER
            response.headers[CSRF_HEADER] = call.web_session.csrf

    def _check_csrf(self, call: Call, *, cookie_only: bool) -> None:
        # cookie: only a request the cookie alone authenticates (a browser sends it to cross-site requests too);
        # Basic credentials are the client's own. always: GWS's enableCsrfProtection, every state change.
        mode = self._settings.csrf
        if mode == "off" or (mode == "cookie" and not cookie_only) or call.web_session is None:
            return
        token = call.request.headers.get(CSRF_HEADER)
        # A session created by this very request has no token the client could know.
        if call.new_session or not token or not secrets.compare_digest(token, call.web_session.csrf):
            raise CsrfRefused

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
        entry = await self._registry.get(call.identity.name, call.request.match_info["reference_id"])
        if entry is None:
            raise NotFound("Operation not found")
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

    async def notifications(self, call: Call) -> Reply:
        """GET /api/v2/me/notifications?after=<replayId>: the identity's own notifications it missed."""
        query = call.request.query
        after, limit = _int(query.get("after"), "after"), _int(query.get("limit", "1000"), "limit")
        if after is None or after < ALL_RETAINED or limit is None or not 0 < limit <= MAX_PAGE:
            raise BadRequest(f"after must be a replayId, -1 or -2; limit from 1 to {MAX_PAGE}")
        if self._log is None:
            raise BadRequest("replay is off on this gateway (replay.enabled)")
        log = self._log_of(call.identity.name)
        bounds = await self._log.bounds(log)
        if after == NEW_ONLY:
            return Reply(200, {"statusCode": 0, "notifications": [], "latestReplayId": bounds.last_id, "more": False})
        if after >= 0 and not bounds.valid(after):
            raise BadRequest(invalid_replay_id(after).partition("::")[2])
        start = bounds.pruned_through if after == ALL_RETAINED else after
        notes = await self._log.read(log, start, limit + 1)
        page = notes[:limit]
        body = {
            "statusCode": 0,
            "notifications": [replay_message(n) for n in page],
            "latestReplayId": page[-1].replay_id if page else start,
            "more": len(notes) > limit,
        }
        return Reply(200, body)

    async def record(self, call: Call) -> Reply:
        """POST /api/v2/me/outbound-records/{recordHandle}"""
        raw_handle = call.request.match_info["record_handle"]
        # ASCII digits only: str.isdigit() also holds for "²", which int() refuses.
        if not (raw_handle.isascii() and raw_handle.isdigit()) or not 0 < int(raw_handle) < 2**63:
            raise NotFound(f"Record {raw_handle} not found (a record handle is a number)")
        return await self._dispatch(call, self._record_ops, "a record", int(raw_handle))

    async def records(self, call: Call) -> Reply:
        """POST /api/v2/me/outbound-records (AddRecord, DoNotCallRecord by phoneNumber)"""
        return await self._dispatch(call, self._records_ops, "outbound-records", 0)

    async def campaign(self, call: Call) -> Reply:
        """POST /api/v2/me/outbound-campaigns/{campaignName}"""
        body, raw, name = await self._operation(call)
        found = self._campaign_ops.get(name)
        if found is None:
            raise BadRequest(f"Unknown operationName {name!r} for a campaign")
        model_type, action = found
        model = _parse(model_type, body)
        return await self._run(
            call, model, raw, lambda req: action(self._outbound, req), call.request.match_info["campaign_name"]
        )

    # -- helpers ---------------------------------------------------------------------------------------

    async def _dispatch(
        self, call: Call, table: Mapping[str, tuple[type[BaseModel], Action]], where: str, handle: int
    ) -> Reply:
        body, raw, name = await self._operation(call)
        found = table.get(name)
        if found is None:
            raise BadRequest(f"Unknown operationName {name!r} for {where}")
        model_type, action = found
        model = _parse(model_type, body)
        return await self._run(call, model, raw, lambda req: action(self._outbound, req, handle, model))

    async def _operation(self, call: Call) -> tuple[dict[str, Any], bytes, str]:
        if call.identity.role != "agent":
            raise NotPermitted("Only agents work outbound records")
        body, raw = await read_json(call.request)
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")
        name = body.get("operationName")
        if name is None:
            raise MissingParameter("Missing required parameter: operationName")
        if not isinstance(name, str):
            raise BadRequest("operationName must be a string")
        return body, raw, name

    async def _run(
        self,
        call: Call,
        model: Any,
        raw: bytes,
        action: Callable[[Request], Awaitable[Payloads]],
        campaign_name: str | None = None,
    ) -> Reply:
        identity = call.identity
        if identity.device and model.devicePath != f"/devices/{identity.device}":
            raise BadRequest("devicePath is not the agent's device")
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

        async def apply() -> Reply:
            payloads = await action(req)
            # The acknowledgement has been handed to the agent's sessions when the action returns.
            self._observe_ack(time.perf_counter() - received)
            return Reply(OK.status, OK.body, kept=payloads)

        async def resend(notifications: Any) -> None:
            # A retry is not applied again, but its acknowledgement is sent again.
            await self._resend(identity.name, notifications or [])

        return await self._correlator.run(
            user=identity.name,
            reference=reference,
            operation=model.operationName,
            fingerprint=fingerprint(call.request, raw),
            apply=apply,
            errors=GWS,
            on_retry=resend,
            acknowledge=False,  # the /v2/me/outbound notification is GWS's acknowledgement
        )


def _int(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None


def _parse(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "missing":
            raise MissingParameter(f"Missing required parameter: {where}") from None
        raise BadRequest(f"Invalid parameter {where}: {first['msg']}") from None
