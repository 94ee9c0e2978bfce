"""The Bayeux endpoint's routes: its path and the suffixes CometD appends, over every transport, with the lean
long-polling path in front when it is on."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from gateway.bayeux.protocol import BayeuxProtocol
from gateway.settings import Settings
from gateway.transport.http import HttpPolicy
from gateway.transport.lean import LeanPolling
from gateway.transport.long_polling import PollingTransport
from gateway.transport.tls import hsts_headers
from gateway.transport.websocket import WebSocketTransport

LEAN = web.AppKey("lean", LeanPolling)

# Suffixes the CometD JS client appends to the endpoint URL (appendMessageTypeToURL).
_SUFFIXES = ("", "/", "/handshake", "/connect", "/subscribe", "/unsubscribe", "/disconnect")


def mount_bayeux(
    app: web.Application, settings: Settings, protocol: BayeuxProtocol, *, on_cut: Callable[[str], None]
) -> None:
    """The Bayeux endpoint and its suffixes, over all three transports (and the lean path in front)."""
    b = settings.bayeux
    http = HttpPolicy(b, tls=settings.server.tls.enabled)
    polling = PollingTransport(protocol=protocol, http=http)
    websocket = WebSocketTransport(protocol=protocol, http=http, on_cut=on_cut)

    async def get(request: web.Request) -> web.StreamResponse:
        # One URL serves WebSocket upgrades and callback-polling GETs, as CometD does.
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if "websocket" not in b.transports:
                return web.json_response({"error": "websocket transport disabled"}, status=400)
            return await websocket.handle(request)
        return await polling.get(request)

    paths = [b.path + suffix if b.path != "/" else (suffix or "/") for suffix in _SUFFIXES]
    if b.lean_long_polling and "long-polling" in b.transports:
        app[LEAN] = LeanPolling(
            polling=polling,
            paths=paths,
            max_body_bytes=b.max_body_bytes,
            keepalive_timeout_s=settings.server.keepalive_timeout_s,
            headers=hsts_headers(settings.server.tls),
        )
    for path in paths:
        app.router.add_post(path, polling.post)
        app.router.add_get(path, get, allow_head=False)
        app.router.add_options(path, polling.options)

    async def on_shutdown(app: web.Application) -> None:
        # Answer held connects and close sockets before aiohttp waits for handlers to finish.
        protocol.shutdown()
        await websocket.close_all()
        if LEAN in app:
            await app[LEAN].close_all()

    app.on_shutdown.append(on_shutdown)
