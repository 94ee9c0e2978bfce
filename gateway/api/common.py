"""What every REST dialect shares: replies, JSON bodies, referenceId and request fingerprints."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web

from gateway.api.failures import BadRequest, PayloadTooLarge
from gateway.wire.limits import DEPTH_EXCEEDED, MAX_DEPTH, problem, suspect

REFERENCE_ID: Final = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP status and a JSON body."""

    status: int
    body: Any
    # What the dialect keeps with the outcome under its referenceId (GWS: the notifications sent); never sent.
    kept: Any = None


def json_response(reply: Reply) -> web.Response:
    """Serialize a reply (orjson; never a traceback)."""
    return web.Response(status=reply.status, body=orjson.dumps(reply.body), content_type="application/json")


async def read_json(request: web.Request) -> tuple[Any, bytes]:
    """The parsed JSON body and its bytes; BadRequest when it is not JSON."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge("Request body too large") from None
    if not raw.strip():
        raise BadRequest("Request body is missing (JSON expected)")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("Request body is not valid JSON") from None
    # Only what the gateway can write back is accepted (gateway/wire/limits.py).
    reason = problem(body) if suspect(raw, body) else None
    if reason == DEPTH_EXCEEDED:
        raise BadRequest(f"Request body is nested deeper than {MAX_DEPTH} levels")
    if reason is not None:
        raise BadRequest("Request body holds an integer outside the 64-bit range")
    return body, raw


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
