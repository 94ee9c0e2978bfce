"""Error tables, one per dialect: domain error -> HTTP status, and the dialect's error envelope."""

from __future__ import annotations

from typing import Final

from gateway.api.common import Reply
from gateway.services.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound

# jtel "Return Codes": 400 bad request, 401 token/ClientsID, 404 not found, 409 conflict, 500 server error.
JTEL_STATUS: Final[dict[type[DomainError], int]] = {
    InvalidInput: 400,
    NotFound: 404,
    Conflict: 409,
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
