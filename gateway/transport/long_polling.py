"""long-polling (POST, JSON) and callback-polling (GET, JSONP) transports."""

from __future__ import annotations

import re
from typing import Final

import orjson
from aiohttp import web

from gateway.bayeux.message import Message
from gateway.bayeux.protocol import CALLBACK_POLLING, LONG_POLLING, BayeuxProtocol, RequestContext
from gateway.transport.codec import TransportError, decode, encode
from gateway.transport.http import HttpPolicy

# The callback name is reflected into a script: CometD's own rule (COMETD-546), nothing looser.
_JSONP_CALLBACK: Final = re.compile(r"[a-zA-Z0-9._\-]{1,64}")


class PollingTransport:
    """Answers Bayeux over plain HTTP requests; a held /meta/connect keeps its request open."""

    def __init__(self, *, protocol: BayeuxProtocol, http: HttpPolicy) -> None:
        self._protocol = protocol
        self._http = http
        self._settings = protocol.settings

    async def post(self, request: web.Request) -> web.StreamResponse:
        """long-polling: a JSON array (or one object) of messages in, a JSON array out."""
        if not self._http.origin_allowed(request.headers):
            return self._http.refuse_origin()
        if request.content_length is not None and request.content_length > self._settings.max_body_bytes:
            return _error(413, "request body too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "request body too large")
        try:
            messages = decode(body, max_messages=self._settings.max_messages_per_request)
        except TransportError as exc:
            return _error(exc.status, exc.reason)
        result = await self._run(request, messages, LONG_POLLING)
        if isinstance(result, web.StreamResponse):
            return result
        replies, cookie = result
        # Headers given whole: cheaper than the content_type setter on every long-poll response.
        response = web.Response(body=encode(replies), headers={"Content-Type": "application/json"})
        return self._finish(request, response, cookie)

    async def get(self, request: web.Request) -> web.StreamResponse:
        """callback-polling: GET with `jsonp` and `message` parameters; answers `callback([...])`."""
        if not self._http.origin_allowed(request.headers):
            return self._http.refuse_origin()
        if CALLBACK_POLLING not in self._settings.transports:
            return _error(400, "Unknown Bayeux Transport")
        callbacks = request.query.getall("jsonp", [])
        if len(callbacks) != 1 or not _JSONP_CALLBACK.fullmatch(callbacks[0]):
            return _error(400, "Unknown Bayeux Transport")
        messages: list[object] = []
        try:
            for raw in request.query.getall("message", []):
                messages.extend(decode(raw, max_messages=self._settings.max_messages_per_request))
        except TransportError as exc:
            return _error(exc.status, exc.reason)
        if not messages:
            return _error(400, "no message parameter")
        if len(messages) > self._settings.max_messages_per_request:
            return _error(413, "too many messages in one request")
        result = await self._run(request, messages, CALLBACK_POLLING)
        if isinstance(result, web.StreamResponse):
            return result
        replies, cookie = result
        body = callbacks[0].encode() + b"(" + encode(replies) + b")"
        response = web.Response(body=body, content_type="text/javascript", charset="utf-8")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return self._finish(request, response, cookie)

    async def options(self, request: web.Request) -> web.Response:
        """CORS preflight for the endpoint and its suffixes."""
        return self._http.preflight(request)

    async def _run(
        self, request: web.Request, messages: list[object], transport: str
    ) -> tuple[list[Message], str | None] | web.StreamResponse:
        ctx = RequestContext(transport=transport, headers=request.headers, browser_id=self._http.browser_id(request))
        outcome = await self._protocol.process(messages, ctx)
        replies = outcome.messages
        if outcome.held is not None and outcome.session is not None:
            late = await self._protocol.await_connect(outcome.held, outcome.session)
            if late is None:
                # A newer connect took over: CometD completes the old request with an error status.
                return _error(self._settings.duplicate_connect_http_status, "connect replaced by a newer one")
            replies = replies + late
        return replies, ctx.new_browser_id

    def _finish(self, request: web.Request, response: web.Response, cookie: str | None) -> web.Response:
        if cookie is not None:
            self._http.set_browser_cookie(response, cookie)
        self._http.cors(request, response)
        return response


def _error(status: int, reason: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"error": reason}), content_type="application/json")
