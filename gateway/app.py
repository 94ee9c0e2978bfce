"""create_app: builds the gateway's objects in dependency order and wires the routes.

The only module that knows the concrete classes. Collaborators are passed through constructors (or
registered as observers, explicitly, here); each resource that starts and stops has its own cleanup
context, started in order and stopped in reverse, every stop run even when another one fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.api.correlator import Correlator
from gateway.api.edge import mount
from gateway.api.gws import GwsApi
from gateway.api.jtel import JtelApi
from gateway.api.malformed import Dialects
from gateway.api.redis_web_sessions import RedisWebSessions
from gateway.api.sntial import SntialApi
from gateway.api.spec_gws import GWS
from gateway.api.spec_jtel import JTEL
from gateway.api.spec_sntial import SNTIAL
from gateway.api.spec_supervisor import SUPERVISOR
from gateway.api.supervisor import SupervisorApi
from gateway.api.web_sessions import MemoryWebSessions, WebSessionStore
from gateway.bayeux.ext_ack import AckExtension
from gateway.bayeux.ext_timesync import TimesyncExtension
from gateway.bayeux.extensions import Extension, Extensions
from gateway.bayeux.gap_fill import GapFill
from gateway.bayeux.logs import LogPolicy, user_log
from gateway.bayeux.protocol import BayeuxProtocol
from gateway.bayeux.replay import Replayer
from gateway.bayeux.security import GatewayPolicy, OpenPolicy, SecurityPolicy
from gateway.bayeux.server import BayeuxServer
from gateway.broker.base import Broker, Envelope, Kind
from gateway.broker.memory import MemoryBroker
from gateway.broker.redis import RedisBroker
from gateway.broker.relay import Relay
from gateway.desktop.site import DesktopSite
from gateway.engine_wait import EngineWait
from gateway.events.correlation import CorrelationRegistry, MemoryCorrelationRegistry
from gateway.events.outbound import OUTBOUND_CHANNEL, OutboundNotifier
from gateway.events.presence import MemoryPresence, Presence, anywhere
from gateway.events.publisher import EventPublisher
from gateway.events.redis_correlation import RedisCorrelationRegistry
from gateway.events.redis_presence import RedisPresence
from gateway.hub.hub import Hub
from gateway.identity import Directory
from gateway.lifecycle import background, nothing, resource
from gateway.logins import Logins
from gateway.metrics import Metrics
from gateway.ops import OpsRoutes
from gateway.services.callbacks import PersonalCallbacks
from gateway.services.campaigns import Campaigns
from gateway.services.contacts import ContactService
from gateway.services.outbound import OutboundService
from gateway.services.records import campaign_ref
from gateway.services.supervision import Supervision
from gateway.services.waitfield import Waitfield
from gateway.settings import Settings
from gateway.store.base import ContactStore
from gateway.store.preview import MemoryPreviewSessions, PreviewSessions, SqlPreviewSessions
from gateway.store.pruner import Pruner
from gateway.store.sql import SqlContactStore
from gateway.store.sql_log import SqlNotificationLog
from gateway.store.streams import relay_to_streams
from gateway.store.waitfield import SqlWaitfieldStore
from gateway.transport.routes import LEAN, mount_bayeux
from gateway.transport.site import BayeuxSite
from gateway.transport.tls import add_headers, hsts_headers, server_context

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
BAYEUX = web.AppKey("bayeux", BayeuxServer)
PROTOCOL = web.AppKey("protocol", BayeuxProtocol)
STORE = web.AppKey("store", ContactStore)
REGISTRY = web.AppKey("registry", CorrelationRegistry)
# Each dialect's path prefix and error table: the envelope for requests aiohttp's parser refuses.
DIALECTS = web.AppKey[Dialects]("dialects")
LOGINS = web.AppKey("logins", Logins)

log = structlog.get_logger("gateway.app")


def _policy(settings: Settings, logins: Logins) -> SecurityPolicy:
    publish = settings.bayeux.client_publish
    if logins.directory:
        return GatewayPolicy(logins=logins, client_publish=publish)
    return OpenPolicy(client_publish=publish)


def create_app(settings: Settings, *, policy: SecurityPolicy | None = None) -> web.Application:
    """Build the aiohttp application for `settings`."""
    b = settings.bayeux
    directory = Directory.from_settings(settings.users)
    # Every password check (Bayeux, GWS Basic, the desktop) goes through one pool and one pair of limiters.
    logins = Logins(directory=directory, settings=settings.security)
    campaigns = Campaigns(settings.campaigns)

    # Bayeux: hub <- broker <- server API; the protocol over the hub; transports over the protocol.
    hub = Hub(max_queue=b.max_queue, overflow=b.queue_overflow, max_interval_s=b.max_interval_ms / 1000)
    broker = _broker(settings)
    # The store relays what its writes committed (the outbox) to the broker; the server logs what no
    # write carries through the store's journal.
    relay = Relay(broker)
    store = SqlContactStore(
        url=settings.storage.url, sqlite_synchronous=settings.storage.sqlite_synchronous, relay=relay
    )
    logs = LogPolicy(channels=settings.replay.channels, enabled=settings.replay.enabled)
    # replay.backend redis: the log in Redis Streams, fed from the store's outbox; a relay that failed unseen
    # asks every node to read its sessions' logs back (a fill).
    stream_relay = (
        relay_to_streams(
            store, settings, deliver=relay, fill=lambda: broker.publish(Envelope(Kind.FILL, {}, broker.node))
        )
        if settings.replay.backend == "redis"
        else None
    )
    notification_log = stream_relay.stream if stream_relay is not None else SqlNotificationLog(store)
    server = BayeuxServer(broker=broker, relay=relay, logs=logs, journal=store.log if logs.enabled else None)
    chosen: list[Extension] = []
    if b.ack_extension:
        chosen.append(AckExtension())
    if b.timesync_extension:
        chosen.append(TimesyncExtension())
    protocol = BayeuxProtocol(
        hub=hub,
        server=server,
        policy=policy or _policy(settings, logins),
        extensions=Extensions(chosen),
        settings=b,
        replayer=Replayer(log=notification_log if logs.enabled else None, logs=logs, hub=hub),
    )

    # Domain: store <- services -> events (publisher, correlation) -> the Bayeux server API.
    notifier = OutboundNotifier(server=server, device_of=lambda name: i.device if (i := directory.get(name)) else None)
    events = EventPublisher(
        server=server, outbound=notifier, campaign_of=lambda campaign_id: campaign_ref(campaigns.get(campaign_id))
    )
    shared_registry = _shared_registry(settings)
    registry: CorrelationRegistry = shared_registry or MemoryCorrelationRegistry(
        max_entries=settings.correlation.max_entries,
        ttl_s=settings.correlation.ttl_s,
        max_bytes=settings.correlation.max_bytes,
    )
    correlator = Correlator(registry=registry, events=events)
    # Several nodes: presence counted in the broker's Redis, preview sessions kept in a PostgreSQL store
    # (one node, the embedded default: both in this process, as before).
    shared_presence = (
        RedisPresence(url=settings.broker.url, ttl_s=settings.cluster.presence_ttl_s)
        if settings.broker.url is not None
        else None
    )
    presence: Presence = shared_presence or MemoryPresence()
    shared_store = store.engine_name == "postgresql"
    previews: PreviewSessions = SqlPreviewSessions(store) if shared_store else MemoryPreviewSessions()

    present = anywhere(hub.has_user, presence)
    rescan_s = settings.cluster.rescan_s if shared_store else None
    outbound = OutboundService(
        store=store,
        campaigns=campaigns,
        events=events,
        previews=previews,
        max_records_per_agent=settings.outbound.max_records_per_agent,
        skills_of=lambda name: i.skills if (i := directory.get(name)) else (),
        present=present,
    )

    async def reachable(agent: str) -> bool:
        # With the agent's channel logged, a callback that falls due while they are away waits in their
        # log, and their next session replays it; without the log it waits for their next GetPreviewRecord.
        return logs.log_of(OUTBOUND_CHANNEL, agent) is not None or await present(agent)

    callbacks = PersonalCallbacks(store=store, outbound=outbound, present=reachable, rescan_s=rescan_s)
    waitfield_store = SqlWaitfieldStore(store)
    waitfield = Waitfield(
        store=waitfield_store,
        records=store,
        outbound=outbound,
        events=events,
        queues=settings.waitfield.queues,
        max_additional_entries=settings.waitfield.max_additional_entries,
        max_additional_bytes=settings.waitfield.max_additional_bytes,
        rescan_s=rescan_s,
    )
    outbound.observe(callbacks)
    outbound.observe(waitfield)
    # Agents' presence (first and last CometD session) and the supervisor's views.
    supervision = Supervision(
        agents=[u.name for u in settings.users if u.role == "agent"],
        presence=presence,
        outbound=outbound,
        campaigns=campaigns,
        store=store,
        waitfield=waitfield,
        waitfield_store=waitfield_store,
        queues=[q.name for q in settings.waitfield.queues],
        events=events,
    )
    hub.on_created(lambda s: supervision.session_opened(s.user, s.identity.role if s.identity else None))
    hub.on_removed(lambda s, _: supervision.session_closed(s.user, s.identity.role if s.identity else None))
    # Between nodes, the broker's sink reads back from the log what a Redis gap lost; one node needs none.
    gap_fill = (
        GapFill(hub=hub, log=notification_log if logs.enabled else None, logs=logs)
        if isinstance(broker, RedisBroker)
        else None
    )
    metrics = Metrics(hub=hub, registry_size=registry.count, broker_connected=broker.healthy, gap_fill=gap_fill)
    metrics.watch_relay(stream_relay)

    # Slightly above the Bayeux limit so the transport, not aiohttp, answers oversized bodies.
    client_max_size = b.max_body_bytes + 1
    app = web.Application(client_max_size=client_max_size)
    app[SETTINGS] = settings
    app[HUB] = hub
    app[BAYEUX] = server
    app[PROTOCOL] = protocol
    app[STORE] = store
    app[REGISTRY] = registry
    app[LOGINS] = logins

    if headers := hsts_headers(settings.server.tls):
        app.on_response_prepare.append(add_headers(headers))

    async def broker_ready() -> bool:
        return broker.healthy()

    shared_sessions = (
        RedisWebSessions(url=settings.broker.url, ttl_s=settings.gws.session_ttl_s, identity_of=directory.get)
        if settings.broker.url is not None
        else None
    )
    web_sessions: WebSessionStore = shared_sessions or MemoryWebSessions(ttl_s=settings.gws.session_ttl_s)
    # Each engine in use by its own client: presence and web sessions share broker.url but not its sockets.
    probes: dict[str, Callable[[], Awaitable[bool]]] = {"store": store.ping, "broker": broker_ready}
    if shared_registry is not None:
        probes["correlation"] = shared_registry.ping
    if stream_relay is not None:
        probes["log"] = stream_relay.stream.ping
    if shared_presence is not None:
        probes["presence"] = shared_presence.ping
    if shared_sessions is not None:
        probes["web_sessions"] = shared_sessions.ping
    app.router.add_routes(OpsRoutes(probes=probes, metrics=metrics).routes())
    gws = GwsApi(
        logins=logins,
        outbound=outbound,
        correlator=correlator,
        resend=notifier.resend,
        settings=settings.gws,
        sessions=web_sessions,
        observe_ack=metrics.ack_latency.labels("gws").observe,
        log=notification_log if logs.enabled else None,
        log_of=user_log,
    )
    jtel = JtelApi(
        directory=directory,
        contacts=ContactService(store=store, campaigns=campaigns, events=events),
        campaigns=campaigns,
        correlator=correlator,
        max_batch=settings.jtel.max_batch,
    )
    sntial = SntialApi(directory=directory, waitfield=waitfield, correlator=correlator)
    for dialect, api in ((JTEL, jtel), (GWS, gws), (SNTIAL, sntial)):
        mount(app, dialect, api, api.handlers(), observe=metrics.operation, client_max_size=client_max_size)
    supervisor = SupervisorApi(logins=logins, supervision=supervision)
    mount(
        app, SUPERVISOR, supervisor, supervisor.handlers(), observe=metrics.operation, client_max_size=client_max_size
    )
    tables = ((JTEL, jtel.errors), (GWS, gws.errors), (SNTIAL, sntial.errors), (SUPERVISOR, supervisor.errors))
    app[DIALECTS] = tuple((dialect.prefix.encode(), errors) for dialect, errors in tables)
    desktop = DesktopSite(logins=logins, campaigns=campaigns, settings=settings.desktop, bayeux_path=b.path)
    app.router.add_routes(desktop.routes())
    mount_bayeux(app, settings, protocol, on_cut=metrics.websocket_cut)

    async def announce() -> None:
        if not directory:
            log.warning("no_users_configured", detail="anonymous Bayeux clients allowed; REST APIs refuse all")
        if settings.desktop.enabled:
            desktop.check()

    # Each engine's start waits for it (cluster.wait_for_engines_s, shared by all); every start here runs
    # before the port is bound, so nothing listens until every engine answered.
    wait = EngineWait(budget_s=settings.cluster.wait_for_engines_s)
    app.cleanup_ctx.extend(
        [
            resource(wait.retrying("store", store.open), store.close),
            resource(
                wait.retrying("broker", lambda: broker.start(gap_fill.dispatch if gap_fill else hub.dispatch)),
                broker.close,
            ),
            resource(nothing, gap_fill.close if gap_fill is not None else nothing),
            resource(
                wait.retrying("correlation", shared_registry.open) if shared_registry is not None else nothing,
                shared_registry.close if shared_registry is not None else nothing,
            ),
            resource(callbacks.start, callbacks.close),
            resource(waitfield.start, waitfield.close),
            # Starts the presence (its first heartbeat).
            resource(wait.retrying("presence", supervision.start), supervision.close),
            background("hub-sweeper", lambda: hub.run_sweeper(b.sweep_period_ms / 1000)),
            background("log-pruner", Pruner(notification_log, settings.replay).run),
            *(
                [
                    resource(nothing, stream_relay.stream.close),
                    background("outbox-sweeper", lambda: stream_relay.run(settings.replay.sweep_s)),
                ]
                if stream_relay is not None
                else []
            ),
            resource(announce, lambda: None),
            resource(nothing, logins.close),
            resource(nothing, web_sessions.close),
        ]
    )
    if LEAN in app:
        app.cleanup_ctx.append(background("lean-sweeper", app[LEAN].run_sweeper))
    return app


def _broker(settings: Settings) -> Broker:
    """The memory broker (one node), or Redis pub/sub between nodes when broker.url is set."""
    config = settings.broker
    if config.url is None:
        return MemoryBroker()
    return RedisBroker(
        url=config.url,
        channel=config.channel,
        reconnect_min_s=config.reconnect_min_s,
        reconnect_max_s=config.reconnect_max_s,
        max_pending=config.max_pending,
    )


def _shared_registry(settings: Settings) -> RedisCorrelationRegistry | None:
    """The Redis registry when correlation.backend is redis (its own url, else broker.url); else None."""
    config = settings.correlation
    url = config.url or settings.broker.url
    if config.backend != "redis" or url is None:
        return None
    return RedisCorrelationRegistry(
        url=url, max_entries=config.max_entries, ttl_s=config.ttl_s, max_bytes=config.max_bytes
    )


def make_site(runner: web.AppRunner, host: str, port: int) -> web.TCPSite:
    """The listening site for a gateway app: long-polling on the lean path when the app has one; HTTPS and WSS
    when the app's settings name a certificate (server.tls)."""
    server = runner.app[SETTINGS].server
    return BayeuxSite(
        runner,
        host,
        port,
        lean=runner.app.get(LEAN),
        dialects=runner.app.get(DIALECTS, ()),
        ssl_context=server_context(server.tls),
        backlog=server.backlog,
    )
