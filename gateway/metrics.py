"""Prometheus metrics (official client): sessions, deliveries, queues, operations, acknowledgement latency.

Hub figures are read at scrape time by a collector, so delivering a message costs nothing extra.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.hub.hub import Hub

if TYPE_CHECKING:
    from gateway.bayeux.gap_fill import GapFill
    from gateway.store.stream_relay import StreamRelay

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class _HubCollector(Collector):
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        sessions = GaugeMetricFamily("gateway_sessions", "Bayeux sessions on this node", labels=["transport"])
        for transport, count in sorted(Tally(s.transport for s in self._hub.sessions.values()).items()):
            sessions.add_metric([transport], count)
        yield sessions
        yield CounterMetricFamily(
            "gateway_messages_delivered", "Messages queued for delivery to sessions", value=self._hub.stats.delivered
        )
        yield CounterMetricFamily(
            "gateway_messages_dropped",
            "Messages dropped by a full session queue, or still queued for a session when it was removed",
            value=self._hub.stats.dropped,
        )
        yield GaugeMetricFamily(
            "gateway_queue_depth",
            "Messages waiting in session queues",
            value=sum(len(s.queue) for s in self._hub.sessions.values()),
        )


class _GapFillCollector(Collector):
    def __init__(self, gap_fill: GapFill) -> None:
        self._fill = gap_fill

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "gateway_broker_gap_fills",
            "Reads of the durable log after a broker gap (this node's subscription back, another node's notice)",
            value=self._fill.fills,
        )
        yield CounterMetricFamily(
            "gateway_broker_gap_filled",
            "Logged messages a broker gap lost, delivered from the durable log instead",
            value=self._fill.filled,
        )


class _StreamRelayCollector(Collector):
    def __init__(self, relay: StreamRelay) -> None:
        self._relay = relay

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "gateway_stream_relay_failures",
            "Relays and outbox sweeps that could not reach the log's Redis (the outbox keeps the entries)",
            value=self._relay.failures,
        )
        yield CounterMetricFamily(
            "gateway_stream_relay_swept",
            "Outbox entries a sweep appended to their stream (left by a failed relay or a node that died)",
            value=self._relay.swept,
        )
        yield CounterMetricFamily(
            "gateway_stream_relay_diverged",
            "Commits whose replay ids their stream holds with other entries (another database's history)",
            value=self._relay.diverged,
        )


class Metrics:
    """The gateway's metrics registry."""

    def __init__(
        self,
        *,
        hub: Hub,
        registry_size: Callable[[], Awaitable[int]],
        broker_connected: Callable[[], bool] = lambda: True,
        gap_fill: GapFill | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.operations = Counter(
            "gateway_operations",
            "REST operations by dialect and outcome",
            ["dialect", "outcome"],
            registry=self.registry,
        )
        self.ack_latency = Histogram(
            "gateway_operation_ack_seconds",
            "From an outbound operation's request to its acknowledgement sent to the agent",
            ["dialect"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.websocket_cuts = Counter(
            "gateway_websocket_cut",
            "WebSockets cut by the gateway, by reason (drain_timeout: the client stopped reading)",
            ["reason"],
            registry=self.registry,
        )
        self.websocket_cuts.labels("drain_timeout")  # present (0) before the first cut
        self._correlation = Gauge(
            "gateway_correlation_entries", "Entries in the referenceId registry", registry=self.registry
        )
        self._broker = Gauge(
            "gateway_broker_connected",
            "1 while the broker reaches the other nodes (always, for the in-process broker), 0 during a gap",
            registry=self.registry,
        )
        self._broker.set_function(lambda: 1.0 if broker_connected() else 0.0)
        self._registry_size = registry_size
        self.registry.register(_HubCollector(hub))
        if gap_fill is not None:
            self.registry.register(_GapFillCollector(gap_fill))

    def watch_relay(self, relay: StreamRelay | None) -> None:
        """Export the stream relay's counters (replay.backend redis)."""
        if relay is not None:
            self.registry.register(_StreamRelayCollector(relay))

    def websocket_cut(self, reason: str) -> None:
        """Count a WebSocket the gateway cut."""
        self.websocket_cuts.labels(reason).inc()

    def operation(self, dialect: str, status: int) -> None:
        """Count a REST request of a dialect by outcome (ok, client_error, server_error)."""
        outcome = "ok" if status < 400 else "client_error" if status < 500 else "server_error"
        self.operations.labels(dialect, outcome).inc()

    async def render(self) -> bytes:
        """The text exposition format (the registry's size asked for now: it may be shared and remote)."""
        try:
            size: float = await self._registry_size()
        except Exception:  # a shared registry that cannot answer now (Redis away): NaN, not a failed scrape
            size = float("nan")
        self._correlation.set(size)
        return generate_latest(self.registry)
