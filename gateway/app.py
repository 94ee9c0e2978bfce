"""create_app: builds the gateway's objects in dependency order and wires the routes.

The only module that knows the concrete classes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import structlog
from aiohttp import web

from gateway.api.common import Correlator, json_response
from gateway.api.errors import unmatched
from gateway.api.gws import GwsApi
from gateway.api.jtel import JtelApi
from gateway.api.openapi import DOCUMENT_PATH, build_document
from gateway.api.sntial import SntialApi
from gateway.auth import GatewayPolicy, OpenPolicy, SecurityPolicy
from gateway.bayeux.ext_ack import AckExtension
from gateway.bayeux.ext_timesync import TimesyncExtension
from gateway.bayeux.extensions import Extension, Extensions
from gateway.bayeux.protocol import BayeuxProtocol
from gateway.bayeux.server import BayeuxServer
from gateway.broker.base import Broker
from gateway.broker.memory import MemoryBroker
from gateway.desktop.site import DesktopSite
from gateway.events.correlation import CorrelationRegistry, MemoryCorrelationRegistry
from gateway.events.outbound import OutboundNotifier
from gateway.events.publisher import EventPublisher
from gateway.hub.hub import Hub
from gateway.identity import Directory
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.services.callbacks import PersonalCallbacks
from gateway.services.campaigns import Campaigns
from gateway.services.contacts import ContactService
from gateway.services.outbound import OutboundService
from gateway.services.waitfield import Waitfield
from gateway.settings import Settings
from gateway.store.base import ContactStore
from gateway.store.sql import SqlContactStore
from gateway.store.waitfield import SqlWaitfieldStore
from gateway.transport.http import HttpPolicy
from gateway.transport.lean import LeanPolling
from gateway.transport.long_polling import PollingTransport
from gateway.transport.site import BayeuxSite
from gateway.transport.websocket import WebSocketTransport

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
BAYEUX = web.AppKey("bayeux", BayeuxServer)
PROTOCOL = web.AppKey("protocol", BayeuxProtocol)
STORE = web.AppKey("store", ContactStore)
REGISTRY = web.AppKey("registry", CorrelationRegistry)
LEAN = web.AppKey("lean", LeanPolling)

log = structlog.get_logger("gateway.app")

# Suffixes the CometD JS client appends to the endpoint URL (appendMessageTypeToURL).
_SUFFIXES = ("", "/", "/handshake", "/connect", "/subscribe", "/unsubscribe", "/disconnect")


def create_app(settings: Settings, *, policy: SecurityPolicy | None = None) -> web.Application:
    """Build the aiohttp application for `settings`."""
    b = settings.bayeux
    hub = Hub(max_queue=b.max_queue, overflow=b.queue_overflow, max_interval_s=b.max_interval_ms / 1000)
    broker: Broker = MemoryBroker()
    server = BayeuxServer(broker=broker)
    directory = Directory.from_settings(settings.users)
    if policy is None:
        if directory:
            policy = GatewayPolicy(directory=directory, client_publish=b.client_publish)
        else:
            policy = OpenPolicy(client_publish=b.client_publish)
    chosen: list[Extension] = []
    if b.ack_extension:
        chosen.append(AckExtension())
    if b.timesync_extension:
        chosen.append(TimesyncExtension())
    protocol = BayeuxProtocol(
        hub=hub,
        server=server,
        policy=policy,
        extensions=Extensions(chosen),
        settings=b,
    )
    store = SqlContactStore(url=settings.storage.url, sqlite_synchronous=settings.storage.sqlite_synchronous)
    campaigns = Campaigns(settings.campaigns)
    notifier = OutboundNotifier(server=server, device_of=lambda name: i.device if (i := directory.get(name)) else None)
    events = EventPublisher(server=server, outbound=notifier)
    registry: CorrelationRegistry = MemoryCorrelationRegistry(
        max_entries=settings.correlation.max_entries, ttl_s=settings.correlation.ttl_s
    )
    correlator = Correlator(registry=registry, events=events)
    outbound = OutboundService(
        store=store,
        campaigns=campaigns,
        events=events,
        max_records_per_agent=settings.outbound.max_records_per_agent,
        skills_of=lambda name: i.skills if (i := directory.get(name)) else (),
        present=hub.has_user,
    )
    events.on_record_cancelled = outbound.record_cancelled
    callbacks = PersonalCallbacks(store=store, outbound=outbound, present=hub.has_user)
    outbound.on_personal_callback = callbacks.arm
    gws = GwsApi(
        directory=directory,
        outbound=outbound,
        correlator=correlator,
        resend=notifier.resend,
        settings=settings.gws,
        observe_ack=lambda seconds: metrics.ack_latency.labels("gws").observe(seconds),
    )
    waitfield = Waitfield(
        store=SqlWaitfieldStore(store),
        records=store,
        outbound=outbound,
        events=events,
        queues=settings.waitfield.queues,
        max_additional_entries=settings.waitfield.max_additional_entries,
        max_additional_bytes=settings.waitfield.max_additional_bytes,
    )
    outbound.observers.append(waitfield)
    sntial = SntialApi(directory=directory, waitfield=waitfield, correlator=correlator)
    jtel = JtelApi(
        directory=directory,
        contacts=ContactService(store=store, campaigns=campaigns, events=events),
        campaigns=campaigns,
        correlator=correlator,
        max_batch=settings.jtel.max_batch,
    )
    desktop = DesktopSite(directory=directory, campaigns=campaigns, settings=settings.desktop, bayeux_path=b.path)
    http = HttpPolicy(b)
    polling = PollingTransport(protocol=protocol, http=http)
    websocket = WebSocketTransport(protocol=protocol, http=http)

    async def get(request: web.Request) -> web.StreamResponse:
        # One URL serves WebSocket upgrades and callback-polling GETs, as CometD does.
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if "websocket" not in b.transports:
                return web.json_response({"error": "websocket transport disabled"}, status=400)
            return await websocket.handle(request)
        return await polling.get(request)

    metrics = Metrics(hub=hub, registry_size=lambda: len(registry))

    @web.middleware
    async def count_operations(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.startswith(b.path):  # Bayeux traffic is measured by the hub's figures
            metrics.operation(request.path, response.status)
        return response

    @web.middleware
    async def dialect_errors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # aiohttp answers an unknown path or method in plain text; a dialect's clients expect its envelope.
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
            reply = unmatched(request.path, exc.status)
            if reply is None:
                raise
            response = json_response(reply)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response

    # Slightly above the Bayeux limit so the transport, not aiohttp, answers oversized bodies.
    app = web.Application(client_max_size=b.max_body_bytes + 1, middlewares=[count_operations, dialect_errors])
    app[SETTINGS] = settings
    app[HUB] = hub
    app[BAYEUX] = server
    app[PROTOCOL] = protocol
    app[STORE] = store
    app[REGISTRY] = registry

    async def healthz(request: web.Request) -> web.Response:
        # The process is alive and its event loop answers.
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        # Ready when the store answers (the memory broker always does).
        ready = await store.ping()
        return web.json_response(
            {"status": "ready" if ready else "not ready", "store": ready, "broker": True}, status=200 if ready else 503
        )

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    # The document of the routes added below: built from the same operation tables, once.
    openapi = orjson.dumps(build_document())

    async def openapi_view(request: web.Request) -> web.Response:
        return web.Response(body=openapi, content_type="application/json")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/readyz", readyz)
    app.router.add_get(DOCUMENT_PATH, openapi_view)
    app.router.add_routes(jtel.routes())
    app.router.add_routes(gws.routes())
    app.router.add_routes(sntial.routes())
    app.router.add_routes(desktop.routes())
    paths = [b.path + suffix if b.path != "/" else (suffix or "/") for suffix in _SUFFIXES]
    if b.lean_long_polling and "long-polling" in b.transports:
        app[LEAN] = LeanPolling(
            polling=polling,
            paths=paths,
            max_body_bytes=b.max_body_bytes,
            keepalive_timeout_s=settings.server.keepalive_timeout_s,
        )
    for path in paths:
        app.router.add_post(path, polling.post)
        app.router.add_get(path, get, allow_head=False)
        app.router.add_options(path, polling.options)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        if not directory:
            log.warning("no_users_configured", detail="anonymous Bayeux clients allowed; REST APIs refuse all")
        if settings.desktop.enabled:
            desktop.check()
        await broker.start(hub.dispatch)
        await callbacks.start()
        await waitfield.start()
        sweepers = [asyncio.create_task(hub.run_sweeper(b.sweep_period_ms / 1000))]
        if LEAN in app:
            sweepers.append(asyncio.create_task(app[LEAN].run_sweeper()))
        yield
        for sweeper in sweepers:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        callbacks.close()
        waitfield.close()
        await broker.close()
        await store.close()

    async def on_shutdown(app: web.Application) -> None:
        # Answer held connects and close sockets before aiohttp waits for handlers to finish.
        protocol.shutdown()
        await websocket.close_all()
        if LEAN in app:
            await app[LEAN].close_all()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    return app


def make_site(runner: web.AppRunner, host: str, port: int) -> web.TCPSite:
    """The listening site for a gateway app: long-polling on the lean path when the app has one."""
    return BayeuxSite(runner, host, port, lean=runner.app.get(LEAN))
