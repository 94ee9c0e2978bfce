"""Error tables, one per dialect: domain error -> HTTP status, and the dialect's error envelope."""

from __future__ import annotations

from typing import Final

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
    409: "Conflict",
    413: "PayloadTooLarge",
    500: "InternalServerError",
}
