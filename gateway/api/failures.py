"""The edge's failures: what a REST request can be refused with before (or instead of) a service.

Each dialect's error table (errors.py) says how it answers each of these and each domain error.
"""

from __future__ import annotations


class EdgeFailure(Exception):
    """A request the edge refuses before (or instead of) a service; `message` is safe to show."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or type(self).__name__)
        self.message = message


class BadRequest(EdgeFailure):
    """The request is malformed (not JSON, wrong type, bad query value)."""


class MissingParameter(BadRequest):
    """A required parameter is absent."""


class PayloadTooLarge(BadRequest):
    """The body is over the limit."""


class Unauthenticated(EdgeFailure):
    """No credentials, or wrong ones (never said which)."""


class NotPermitted(EdgeFailure):
    """Authenticated, but this identity's role may not call the dialect."""


class CsrfRefused(EdgeFailure):
    """A state-changing cookie request without the session's CSRF token."""


class ReferenceConflict(EdgeFailure):
    """The referenceId was already used for a different request."""


class RouteNotFound(EdgeFailure):
    """No operation on this path."""


class MethodNotAllowed(EdgeFailure):
    """The path exists, not with this method."""


class Internal(EdgeFailure):
    """Anything unexpected: logged with its traceback, answered without one."""
