"""Domain errors; each REST dialect maps them to its own status codes and envelope."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a service raises on purpose; `message` is safe to show a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """A request that breaks a rule (missing field, wrong type, too long)."""


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the caller)."""


class Conflict(DomainError):
    """The operation cannot be done in the current state."""


class Forbidden(DomainError):
    """The caller may not do this."""


class InvalidState(DomainError):
    """A well-formed request that the current state does not allow (record not held, no session, ...)."""
