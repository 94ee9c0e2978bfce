"""Settings sections of the engines shared between nodes: the broker, the referenceId registry (Redis or
in-process) and the cluster's shared state (and how long a node waits for its engines at start).
`gateway.settings` re-exports them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    """As gateway.settings' base: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_redis_url(url: str | None, key: str) -> None:
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"{key}: a redis://, rediss:// or unix:// URL (or leave it out)")


class BrokerSettings(_Strict):
    """Fan-out between nodes: none (the in-process broker, one node) or Redis pub/sub (`redis://host:port/db`)."""

    url: str | None = None
    # The pub/sub channel the nodes share (nodes on one Redis with different channels do not see each other).
    channel: str = Field(default="gateway:broker", min_length=1)
    # Reconnect backoff after a lost Redis connection: doubles from the first to the last (seconds).
    reconnect_min_s: float = Field(default=0.05, gt=0)
    reconnect_max_s: float = Field(default=2.0, gt=0)
    # Envelopes waiting to go out to the other nodes; past this they are dropped (and counted).
    max_pending: int = Field(default=100_000, gt=0)

    @model_validator(mode="after")
    def _check(self) -> BrokerSettings:
        _check_redis_url(self.url, "broker.url")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("broker.reconnect_max_s must be at least broker.reconnect_min_s")
        return self


class CorrelationSettings(_Strict):
    """The referenceId registry: in memory (one node) or in Redis (shared by every node)."""

    backend: Literal["memory", "redis"] = "memory"
    # The Redis for backend redis; without it, broker.url.
    url: str | None = None
    max_entries: int = Field(default=20_000, gt=0)
    ttl_s: float = Field(default=3600.0, gt=0)
    # Estimated bytes of the entries kept (referenceId, fingerprint, serialized answer and notifications).
    max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _check(self) -> CorrelationSettings:
        _check_redis_url(self.url, "correlation.url")
        return self


class ClusterSettings(_Strict):
    """State several nodes share. Which engine holds it follows from the others: with broker.url, presence
    and GWS web sessions are kept in that Redis; with a PostgreSQL store, preview sessions are kept in it and
    every node re-scans it for due personal callbacks. The embedded default (memory broker, SQLite) keeps
    them all in the process, as one node."""

    # Presence: a node that stops beating (killed) has its agents' sessions taken out after this long.
    presence_ttl_s: float = Field(default=15.0, gt=0)
    # PostgreSQL: how often each node re-reads the pending personal callbacks (those armed by other nodes,
    # or by a node that died): the most a callback of a dead node fires late.
    rescan_s: float = Field(default=5.0, gt=0)
    # At start, how long a node retries an engine it cannot reach (its store, broker.url, correlation.url)
    # before it gives up and exits 1; nothing listens meanwhile. 0: give up at once (a supervisor restarts it).
    wait_for_engines_s: float = Field(default=0.0, ge=0, allow_inf_nan=False)
