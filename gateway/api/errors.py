"""Error tables, one per dialect, in one place: each failure's HTTP status, dialect code and envelope.

Handlers and the edge raise failures (the edge's below, the services' domain errors); a dialect's table
turns each into that dialect's envelope. Nothing else decides an error status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gateway.api.common import Reply
from gateway.api.failures import (
    BadRequest,
    CsrfRefused,
    EdgeFailure,
    Internal,
    MethodNotAllowed,
    MissingParameter,
    NotPermitted,
    PayloadTooLarge,
    ReferenceConflict,
    RouteNotFound,
    Unauthenticated,
)
from gateway.services.errors import Conflict, Forbidden, InvalidInput, InvalidState, NotFound


@dataclass(frozen=True, slots=True)
class Failure:
    """How a dialect answers one kind of failure."""

    status: int  # HTTP status
    code: int | None = None  # the dialect's own code in the body (GWS statusCode); None: the HTTP status
    text: str | None = None  # the message when the failure carries none
    keep_message: bool = True  # False: always `text` (SNtial's 404 carries no message at all)


Envelope = Callable[[int, int, str | None], Reply]  # (HTTP status, code, message) -> the dialect's body


@dataclass(frozen=True, slots=True)
class ErrorTable:
    """One dialect's error answers."""

    dialect: str
    envelope: Envelope
    failures: Mapping[type[Exception], Failure]

    def answer(self, exc: Exception) -> Reply:
        """The dialect's reply to `exc`: the most specific failure class in the table decides."""
        for kind in type(exc).__mro__:
            failure = self.failures.get(kind)
            if failure is not None:
                break
        else:
            failure = self.failures[Internal]
        message = getattr(exc, "message", None) if failure.keep_message else None
        return self.envelope(failure.status, failure.code if failure.code is not None else failure.status,
                             message or failure.text)  # fmt: skip

    def error(self, kind: type[EdgeFailure], message: str | None = None) -> Reply:
        """The reply to a failure of `kind` with `message`."""
        return self.answer(kind(message))


# -- jtel: {status, error}; "Return Codes" 400, 401 (token or ClientsID), 404, 409, 500 ------------------


def _jtel(status: int, code: int, message: str | None) -> Reply:
    return Reply(status, {"status": status, "error": message or ""})


JTEL: Final = ErrorTable(
    "jtel",
    _jtel,
    {
        BadRequest: Failure(400, text="Bad request"),
        PayloadTooLarge: Failure(413, text="Request body too large"),
        Unauthenticated: Failure(401, text="Unauthorized: invalid bearer token or ClientsID"),
        # jtel documents no 403: a caller that may not act is "Unauthorized" too.
        NotPermitted: Failure(401, text="Unauthorized: invalid bearer token or ClientsID"),
        CsrfRefused: Failure(401, text="Unauthorized"),
        ReferenceConflict: Failure(
            409, text="referenceId was already used for a different request", keep_message=False
        ),
        RouteNotFound: Failure(404, text="Not found", keep_message=False),
        MethodNotAllowed: Failure(405, text="Method not allowed", keep_message=False),
        Internal: Failure(500, text="Internal server error", keep_message=False),
        InvalidInput: Failure(400),
        NotFound: Failure(404),
        Conflict: Failure(409),
        InvalidState: Failure(409),
        Forbidden: Failure(401),
    },
)


# -- GWS: {statusCode, statusMessage}; each statusCode has its HTTP status (gws-outbound.md §6) ----------

GWS_OK: Final = 0
GWS_MISSING: Final = 1  # required parameter missing
GWS_INVALID: Final = 2  # parameter not valid (or not valid in the current state)
GWS_FORBIDDEN: Final = 3
GWS_INTERNAL: Final = 4
GWS_NO_PERMISSION: Final = 5
GWS_NOT_FOUND: Final = 6
GWS_EXISTS: Final = 18
GWS_IN_USE: Final = 19
GWS_NOT_AUTHENTICATED: Final = 20
GWS_CODES: Final = (GWS_MISSING, GWS_INVALID, GWS_FORBIDDEN, GWS_INTERNAL, GWS_NO_PERMISSION, GWS_NOT_FOUND,
                    GWS_EXISTS, GWS_IN_USE, GWS_NOT_AUTHENTICATED)  # fmt: skip


def _gws(status: int, code: int, message: str | None) -> Reply:
    return Reply(status, {"statusCode": code, "statusMessage": message or ""})


GWS: Final = ErrorTable(
    "gws",
    _gws,
    {
        BadRequest: Failure(400, GWS_INVALID, "Invalid request"),
        MissingParameter: Failure(400, GWS_MISSING, "Missing required parameter"),
        # GWS has no code for it: an invalid request, as any other body it cannot use.
        PayloadTooLarge: Failure(400, GWS_INVALID, "Request body too large"),
        Unauthenticated: Failure(401, GWS_NOT_AUTHENTICATED, "User not authenticated", keep_message=False),
        NotPermitted: Failure(403, GWS_NO_PERMISSION, "Operation not permitted"),
        CsrfRefused: Failure(403, GWS_FORBIDDEN, "Missing or invalid Csrf token"),
        ReferenceConflict: Failure(409, GWS_EXISTS, "referenceId was already used for a different request"),
        RouteNotFound: Failure(404, GWS_NOT_FOUND, "Not found", keep_message=False),
        MethodNotAllowed: Failure(405, GWS_INVALID, "Method not allowed", keep_message=False),
        Internal: Failure(500, GWS_INTERNAL, "Internal error", keep_message=False),
        InvalidInput: Failure(400, GWS_INVALID),
        InvalidState: Failure(400, GWS_INVALID),
        NotFound: Failure(404, GWS_NOT_FOUND),
        Forbidden: Failure(403, GWS_FORBIDDEN),
        Conflict: Failure(409, GWS_IN_USE),
    },
)


# -- SNtial Wait: {statusText, statusCode, item} (+ our `message`); item is null on errors ------------------

SNTIAL_STATUS_TEXT: Final[dict[int, str]] = {
    200: "OK",
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    500: "InternalServerError",
}


def sntial_envelope(status: int, item: Any, message: str | None = None) -> Reply:
    """SNtial's `{statusText, statusCode, item}` (+ `message` on errors that have one)."""
    body: dict[str, Any] = {"statusText": SNTIAL_STATUS_TEXT.get(status, "Error"), "statusCode": status, "item": item}
    if message is not None:
        body["message"] = message
    return Reply(status, body)


def _sntial(status: int, code: int, message: str | None) -> Reply:
    return sntial_envelope(status, None, message)


SNTIAL: Final = ErrorTable(
    "sntial",
    _sntial,
    {
        BadRequest: Failure(400, text="bad request"),
        PayloadTooLarge: Failure(413, text="Request body too large"),
        Unauthenticated: Failure(401, text="a service's bearer token is required", keep_message=False),
        NotPermitted: Failure(401, text="a service's bearer token is required", keep_message=False),
        CsrfRefused: Failure(403, text="forbidden"),
        ReferenceConflict: Failure(
            409, text="referenceId was already used for a different request", keep_message=False
        ),
        RouteNotFound: Failure(404, text="Not found", keep_message=False),
        MethodNotAllowed: Failure(405, text="Method not allowed", keep_message=False),
        Internal: Failure(500, text="internal error", keep_message=False),
        InvalidInput: Failure(400),
        NotFound: Failure(404, keep_message=False),  # exactly the vendor's 404: no message
        Conflict: Failure(409),
        InvalidState: Failure(409),
        Forbidden: Failure(403),
    },
)

# -- the supervisor's views (/api/v2/supervisor): GWS's envelope and codes, counted as their own dialect ----

SUPERVISOR: Final = ErrorTable("supervisor", _gws, GWS.failures)

TABLES: Final = (JTEL, GWS, SNTIAL, SUPERVISOR)
