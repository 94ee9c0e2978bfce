"""Error tables, one per dialect: domain error -> HTTP status, and the dialect's error envelope."""

from __future__ import annotations

from typing import Any, Final

from gateway.api.common import Reply
from gateway.services.errors import Conflict, DomainError, Forbidden, InvalidInput, InvalidState, NotFound

# jtel "Return Codes": 400 bad request, 401 token/ClientsID, 404 not found, 409 conflict, 500 server error.
JTEL_STATUS: Final[dict[type[DomainError], int]] = {
    InvalidInput: 400,
    NotFound: 404,
    Conflict: 409,
    InvalidState: 409,
    Forbidden: 401,
}
JTEL_UNAUTHORIZED: Final = "Unauthorized: invalid bearer token or ClientsID"
JTEL_REFERENCE_CONFLICT: Final = "referenceId was already used for a different request"
JTEL_INTERNAL: Final = "Internal server error"


def jtel_error(status: int, message: str) -> Reply:
    """jtel's error body `{status, error}` (status mirrors the HTTP code)."""
    return Reply(status, {"status": status, "error": message})


def jtel_domain_error(exc: DomainError) -> Reply:
    """Map a domain error through the jtel table."""
    status = next((code for kind, code in JTEL_STATUS.items() if isinstance(exc, kind)), 400)
    return jtel_error(status, exc.message)


# GWS statusCode values (gws-outbound.md §6) and the HTTP status each is answered with.
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
GWS_HTTP: Final[dict[int, int]] = {
    GWS_OK: 200,
    GWS_MISSING: 400,
    GWS_INVALID: 400,
    GWS_FORBIDDEN: 403,
    GWS_NO_PERMISSION: 403,
    GWS_NOT_FOUND: 404,
    GWS_EXISTS: 409,
    GWS_IN_USE: 409,
    GWS_NOT_AUTHENTICATED: 401,
    GWS_INTERNAL: 500,
}
GWS_STATUS: Final[dict[type[DomainError], int]] = {
    InvalidInput: GWS_INVALID,
    InvalidState: GWS_INVALID,
    NotFound: GWS_NOT_FOUND,
    Forbidden: GWS_FORBIDDEN,
    Conflict: GWS_IN_USE,
}


def gws_error(code: int, message: str) -> Reply:
    """GWS's error body `{statusCode, statusMessage}` with the HTTP status of that code."""
    return Reply(GWS_HTTP.get(code, 400), {"statusCode": code, "statusMessage": message})


def gws_domain_error(exc: DomainError) -> Reply:
    """Map a domain error through the GWS table."""
    code = next((c for kind, c in GWS_STATUS.items() if isinstance(exc, kind)), GWS_INVALID)
    return gws_error(code, exc.message)


# SNtial Wait's statusText for each HTTP status it answers (its envelope is built in sntial.py).
SNTIAL_STATUS_TEXT: Final[dict[int, str]] = {
    200: "OK",
    400: "BadRequest",
    401: "Unauthorized",
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


# Where each dialect lives: a request under one of these prefixes that matches no route (404) or no
# method of its route (405) is answered in that dialect's envelope, not aiohttp's plain text.
JTEL_PREFIX: Final = "/rest/v1.0/"
GWS_PREFIX: Final = "/api/v2/me"
SNTIAL_PREFIX: Final = "/api/v1/SNtialWait/"


def unmatched(path: str, status: int) -> Reply | None:
    """The dialect's answer to an unknown path (404) or method (405) under its prefix; None elsewhere."""
    message = "Method not allowed" if status == 405 else "Not found"
    if path.startswith(JTEL_PREFIX):
        return jtel_error(status, message)
    if path == GWS_PREFIX or path.startswith(GWS_PREFIX + "/"):
        code = GWS_NOT_FOUND if status == 404 else GWS_INVALID
        return Reply(status, {"statusCode": code, "statusMessage": message})
    if path.startswith(SNTIAL_PREFIX):
        return sntial_envelope(status, None, message)
    return None
