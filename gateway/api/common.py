"""What every REST dialect shares: JSON bodies, referenceId, request fingerprints, correlation."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web

from gateway.events.correlation import CorrelationRegistry, Started
from gateway.events.types import EventSink, OperationAck

REFERENCE_ID: Final = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces


class BadRequest(Exception):
    """A request the edge refuses before any service sees it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP status and a JSON body."""

    status: int
    body: Any


def json_response(reply: Reply) -> web.Response:
    """Serialize a reply (orjson; never a traceback)."""
    return web.Response(status=reply.status, body=orjson.dumps(reply.body), content_type="application/json")


async def read_json(request: web.Request) -> tuple[Any, bytes]:
    """The parsed JSON body and its bytes; BadRequest when it is not JSON."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest("Request body too large", 413) from None
    if not raw.strip():
        raise BadRequest("Request body is missing (JSON expected)")
    try:
        return orjson.loads(raw), raw
    except orjson.JSONDecodeError:
        raise BadRequest("Request body is not valid JSON") from None


def reference_id(request: web.Request) -> str | None:
    """The request's referenceId: query parameter `referenceId` or header `X-Reference-Id`."""
    value = request.query.get("referenceId") or request.headers.get("X-Reference-Id")
    if value is None:
        return None
    if not REFERENCE_ID.fullmatch(value):
        raise BadRequest("referenceId must be 1 to 128 printable characters without spaces")
    return value


def fingerprint(request: web.Request, body: bytes = b"") -> str:
    """What makes two requests 'the same': method, path, query (but the referenceId) and body."""
    query = sorted((k, v) for k, v in request.query.items() if k != "referenceId")
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path} {query!r}\n".encode())
    digest.update(body)
    return digest.hexdigest()


class ReferenceConflict(Exception):
    """The referenceId was already used for a different request."""


class Correlator:
    """Runs operations under their referenceId: a retry is answered from the registry, never applied twice."""

    def __init__(self, *, registry: CorrelationRegistry, events: EventSink) -> None:
        self.registry = registry
        self._events = events

    async def run(
        self,
        *,
        user: str,
        reference: str | None,
        operation: str,
        fingerprint: str,
        apply: Callable[[], Awaitable[Reply]],
    ) -> Reply:
        """Apply the operation once per referenceId and acknowledge it on `user`'s /v2/me/operations."""

        async def plain() -> tuple[Reply, Any]:
            return await apply(), None

        return await self.run_notified(
            user=user, reference=reference, operation=operation, fingerprint=fingerprint, apply=plain
        )

    async def run_notified(
        self,
        *,
        user: str,
        reference: str | None,
        operation: str,
        fingerprint: str,
        apply: Callable[[], Awaitable[tuple[Reply, Any]]],
        on_retry: Callable[[Any], Awaitable[None]] | None = None,
        acknowledge: bool = True,
    ) -> Reply:
        """Like `run`, for operations whose own notifications are kept with the outcome: a retry hands them
        to `on_retry` (the dialect sends them again); `acknowledge=False` when they are the acknowledgement."""
        if reference is None:
            return (await apply())[0]
        while True:
            started, entry = self.registry.begin(user, reference, operation, fingerprint)
            if started is Started.CONFLICT:
                raise ReferenceConflict
            if started is Started.NEW:
                break
            await entry.wait()
            if entry.status is not None:
                if on_retry is not None:
                    await on_retry(entry.notification)
                return Reply(entry.status, entry.result)
            # The first attempt failed unexpectedly and was forgotten: run it now.
        try:
            reply, notification = await apply()
        except BaseException:
            self.registry.abandon(entry)
            raise
        self.registry.complete(entry, reply.status, reply.body, notification=notification)
        if acknowledge:
            await self._events.operation_done(OperationAck(user, reference, operation, reply.status, reply.body))
        return reply
