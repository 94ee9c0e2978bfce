"""The REST edge every dialect shares: one endpoint factory, and each dialect mounted as its own sub-application.

A dialect gives an `Edge` (how its callers authenticate, its error table, what it adds to answers) and its
operation table (spec_<dialect>.py) with a handler per operation. `mount` builds the dialect's aiohttp
sub-application under its prefix; its own middleware answers unknown paths and methods and counts
operations, so nothing outside the dialect looks at paths to find out whose envelope to use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

import structlog
from aiohttp import web

from gateway.api.common import Reply, json_response
from gateway.api.errors import ErrorTable
from gateway.api.failures import (
    BadRequest,
    EdgeFailure,
    Internal,
    MethodNotAllowed,
    PayloadTooLarge,
    RouteNotFound,
)
from gateway.api.spec import Dialect, bind
from gateway.services.errors import DomainError

if TYPE_CHECKING:
    from gateway.api.web_sessions import WebSession
    from gateway.identity import Identity

log = structlog.get_logger("gateway.api")


@dataclass(frozen=True, slots=True)
class Call:
    """An authenticated REST request, in any dialect."""

    request: web.Request
    identity: Identity
    client_id: int | None = None  # jtel: the ClientsID of the path
    web_session: WebSession | None = None  # GWS: the JSESSIONID session
    session_id: str | None = None
    new_session: bool = False  # GWS: created by this request (its cookie is set on the answer)


Handler = Callable[[Call], Awaitable[Reply]]
Observe = Callable[[str, int], None]  # (dialect, HTTP status) of every answered request


class Edge(Protocol):
    """What a dialect adds to the shared endpoint."""

    errors: ErrorTable

    async def authenticate(self, request: web.Request) -> Call:
        """The caller, or an EdgeFailure (Unauthenticated, NotPermitted, BadRequest)."""

    def finish(self, request: web.Request, call: Call | None, reply: Reply, response: web.StreamResponse) -> None:
        """Add the dialect's headers and cookies to an answer."""


def endpoint(edge: Edge, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler: authenticate, run `handler`, answer every failure through the dialect's table."""
    errors = edge.errors

    async def serve(request: web.Request) -> web.StreamResponse:
        call: Call | None = None
        try:
            call = await edge.authenticate(request)
            reply = await handler(call)
        except web.HTTPException as exc:
            reply = _http(errors, exc)
        except (EdgeFailure, DomainError) as exc:
            reply = errors.answer(exc)
        except Exception:
            log.exception("rest_handler_failed", dialect=errors.dialect, path=request.path)
            reply = errors.error(Internal)
        response = json_response(reply)
        edge.finish(request, call, reply, response)
        return response

    return serve


def mount(
    parent: web.Application,
    dialect: Dialect,
    edge: Edge,
    handlers: Mapping[str, Handler],
    *,
    observe: Observe,
    client_max_size: int,
) -> web.Application:
    """Add the dialect's sub-application under its prefix; every operation of its table gets its handler."""
    errors = edge.errors

    @web.middleware
    async def dialect_middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status not in _HTTP_FAILURES:
                raise
            # aiohttp answers an unknown path or method in plain text; the dialect's clients expect its envelope.
            response = json_response(_http(errors, exc))
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
        observe(errors.dialect, response.status)
        return response

    app = web.Application(middlewares=[dialect_middleware], client_max_size=client_max_size)
    prefix = dialect.prefix
    for op, handler in bind(dialect.operations, handlers):
        if not op.path.startswith(prefix):
            raise ValueError(f"{op.operation_id}: {op.path} is not under {prefix}")
        app.router.add_route(op.method, op.path[len(prefix) :], endpoint(edge, handler))
    parent.add_subapp(prefix, app)
    return app


_HTTP_FAILURES: Final[dict[int, type[EdgeFailure]]] = {
    404: RouteNotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


def _http(errors: ErrorTable, exc: web.HTTPException) -> Reply:
    """aiohttp's own refusals (unknown route or method, body too large) in the dialect's envelope."""
    return errors.error(_HTTP_FAILURES.get(exc.status, BadRequest))
