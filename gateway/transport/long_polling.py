"""long-polling (POST, JSON) and callback-polling (GET, JSONP) transports."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import orjson
from aiohttp import web

from gateway.bayeux.protocol import CALLBACK_POLLING, LONG_POLLING, BayeuxProtocol, RequestContext
from gateway.hub.session import HeldConnect, Session
from gateway.transport.codec import TransportError, decode, encode
from gateway.transport.http import Headers, HttpPolicy
from gateway.wire.message import Message

# The callback name is reflected into a script: CometD's own rule (COMETD-546), nothing looser.
_JSONP_CALLBACK: Final = re.compile(r"[a-zA-Z0-9._\-]{1,64}")
JSON: Final = "application/json"


@dataclass(slots=True)
class Answer:
    """An HTTP answer independent of the server library: both HTTP paths send it as it is."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: Headers = field(default_factory=list)


@dataclass(slots=True)
class Pending:
    """A processed request whose /meta/connect is held (`held`), or that is complete (`held` None)."""

    headers: Mapping[str, str]
    replies: list[Message]
    cookie: str | None
    held: HeldConnect | None
    session: Session | None


def error(status: int, reason: str) -> Answer:
    """The transport's error answer: `{"error": reason}` with an HTTP error status."""
    return Answer(status, orjson.dumps({"error": reason}))


class PollingTransport:
    """Answers Bayeux over plain HTTP requests; a held /meta/connect keeps its request open."""

    def __init__(self, *, protocol: BayeuxProtocol, http: HttpPolicy) -> None:
        self._protocol = protocol
        self._http = http
        self._settings = protocol.settings

    async def post(self, request: web.Request) -> web.StreamResponse:
        """long-polling over aiohttp: a JSON array (or one object) of messages in, a JSON array out."""
        if request.content_length is not None and request.content_length > self._settings.max_body_bytes:
            return _response(self._with_cors(request.headers, error(413, "request body too large")))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _response(self._with_cors(request.headers, error(413, "request body too large")))
        return _response(await self.exchange(request.headers, body, request.remote))

    async def exchange(self, headers: Mapping[str, str], body: bytes, address: str | None = None) -> Answer:
        """One long-polling request, answered when its held connect (if any) is released."""
        started = await self.begin(headers, body, address)
        if isinstance(started, Answer):
            return started
        if started.held is not None:
            await started.held.wait()
        return self.complete(started)

    async def begin(self, headers: Mapping[str, str], body: bytes, address: str | None = None) -> Answer | Pending:
        """Process a long-polling request (of the client at `address`): its answer, or a Pending (held connect)."""
        if not self._http.origin_allowed(headers):
            return error(403, "origin not allowed")
        try:
            messages = decode(body, max_messages=self._settings.max_messages_per_request)
        except TransportError as exc:
            return self._with_cors(headers, error(exc.status, exc.reason))
        return await self._start(headers, messages, LONG_POLLING, address)

    def complete(self, pending: Pending) -> Answer:
        """The answer of a long-polling request once its held connect (if any) was released."""
        replies = self._replies(pending)
        if replies is None:
            return self._with_cors(pending.headers, self._replaced())
        return self._finish(pending.headers, Answer(200, encode(replies)), pending.cookie)

    async def get(self, request: web.Request) -> web.StreamResponse:
        """callback-polling: GET with `jsonp` and `message` parameters; answers `callback([...])`."""
        if not self._http.origin_allowed(request.headers):
            return self._http.refuse_origin()
        if CALLBACK_POLLING not in self._settings.transports:
            return _response(error(400, "Unknown Bayeux Transport"))
        callbacks = request.query.getall("jsonp", [])
        if len(callbacks) != 1 or not _JSONP_CALLBACK.fullmatch(callbacks[0]):
            return _response(error(400, "Unknown Bayeux Transport"))
        messages: list[object] = []
        try:
            for raw in request.query.getall("message", []):
                messages.extend(decode(raw, max_messages=self._settings.max_messages_per_request))
        except TransportError as exc:
            return _response(error(exc.status, exc.reason))
        if not messages:
            return _response(error(400, "no message parameter"))
        if len(messages) > self._settings.max_messages_per_request:
            return _response(error(413, "too many messages in one request"))
        pending = await self._start(request.headers, messages, CALLBACK_POLLING, request.remote)
        if pending.held is not None:
            await pending.held.wait()
        replies = self._replies(pending)
        if replies is None:
            return _response(self._replaced())
        body = callbacks[0].encode() + b"(" + encode(replies) + b")"
        script = Answer(200, body, "text/javascript; charset=utf-8", [("X-Content-Type-Options", "nosniff")])
        return _response(self._finish(request.headers, script, pending.cookie))

    async def options(self, request: web.Request) -> web.Response:
        """CORS preflight for the endpoint and its suffixes."""
        return self._http.preflight(request)

    async def _start(
        self, headers: Mapping[str, str], messages: list[object], transport: str, address: str | None
    ) -> Pending:
        browser_id = self._http.browser_id(headers)
        ctx = RequestContext(transport=transport, headers=headers, browser_id=browser_id, address=address)
        outcome = await self._protocol.process(messages, ctx)
        held = outcome.held if outcome.session is not None else None
        return Pending(headers, outcome.messages, ctx.new_browser_id, held, outcome.session)

    def _replies(self, pending: Pending) -> list[Message] | None:
        """Every reply of the request; None if a newer connect replaced its held one."""
        if pending.held is None or pending.session is None:
            return pending.replies
        late = self._protocol.finish_connect(pending.held, pending.session)
        return None if late is None else pending.replies + late

    def _replaced(self) -> Answer:
        # A newer connect took over: CometD completes the old request with an error status.
        return error(self._settings.duplicate_connect_http_status, "connect replaced by a newer one")

    def _finish(self, headers: Mapping[str, str], answer: Answer, cookie: str | None) -> Answer:
        if cookie is not None:
            answer.headers.append(("Set-Cookie", self._http.browser_cookie(cookie)))
        return self._with_cors(headers, answer)

    def _with_cors(self, headers: Mapping[str, str], answer: Answer) -> Answer:
        if "Origin" in headers:
            answer.headers += self._http.cors_headers(headers)
        return answer


def _response(answer: Answer) -> web.Response:
    # Headers given whole: cheaper than the content_type setter on every long-poll response.
    headers = {"Content-Type": answer.content_type}
    headers.update(answer.headers)
    return web.Response(status=answer.status, body=answer.body, headers=headers)
