"""RedisBroker: this node's hub at once, the other nodes through one Redis pub/sub channel.

`publish` hands the envelope to the local sink synchronously (as the memory broker does), then serializes it
and queues the bytes; a background task PUBLISHes the queue in order, pipelined, on one connection. A second
task holds a SUBSCRIBE connection and passes every envelope from another node to the sink; envelopes whose
`origin` is this node are skipped (they were delivered locally already).

Wire format, one JSON object (orjson) per pub/sub message::

    {"v": 1, "kind": "user", "origin": "3f9c0a1b2d4e", "message": {"channel": "/v2/me/outbound", ...},
     "user": "agent1", "client_id": null, "log": "user:agent1", "replay_id": 42,
     "created": "2025-09-19T08:28:20.750Z"}

Connection loss (Redis restarted, `CLIENT KILL TYPE pubsub`, a network cut): each task reconnects on its
own with exponential backoff (`reconnect_min_s` doubling to `reconnect_max_s`), logs `broker_disconnected`
once per gap and `broker_reconnected` with the gap's length; `healthy()` is False from the first failure
until both connections are back (shown in /readyz and as `gateway_broker_connected` in /metrics).

What a Redis gap loses, and how it is filled: pub/sub is at-most-once. Envelopes published on this node
while its publishing connection is down (and the batch in flight when it broke) do not reach the other
nodes, and what other nodes published while this node's subscription was down does not reach this node's
sessions. Local delivery is never affected. Logged envelopes (those with `log` and `replay_id`) are in the
durable log, and the gap is read back from there (bayeux/gap_fill.py, this broker's sink on a gateway):
- when the subscription is back, and Redis confirmed it (from then on every publish arrives live), the sink
  is handed a `Kind.FILL` envelope: the node reads its subscribed logs after the last id it saw;
- when the publishing connection is back, or the queue overflowed, this node publishes a `Kind.FILL`
  envelope: the other nodes read back what it dropped.
Unlogged envelopes (session messages, disconnects, broadcasts on channels that are not logged) lost in a gap
are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from typing import Any, Final

import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.broker.base import Envelope, Kind, Sink
from gateway.redis_pool import masked

log = structlog.get_logger("gateway.broker")

WIRE_VERSION: Final = 1
_BATCH: Final = 512  # envelopes per pipelined round trip
_POLL_S: Final = 1.0  # how long the subscriber blocks for one message before looking around
_CONFIRM_S: Final = 5.0  # how long a (re)subscribe waits for Redis to confirm it

_KINDS: Final = {kind.value: kind for kind in Kind}


def encode(envelope: Envelope) -> bytes:
    """The envelope as its wire bytes."""
    return orjson.dumps(
        {
            "v": WIRE_VERSION,
            "kind": envelope.kind.value,
            "origin": envelope.origin,
            "message": envelope.message,
            "user": envelope.user,
            "client_id": envelope.client_id,
            "log": envelope.log,
            "replay_id": envelope.replay_id,
            "created": envelope.created,
        }
    )


def decode(data: bytes) -> Envelope:
    """An envelope from its wire bytes (ValueError, KeyError or TypeError when they are not one)."""
    raw: dict[str, Any] = orjson.loads(data)
    if raw.get("v") != WIRE_VERSION or not isinstance(raw.get("message"), dict):
        raise ValueError(f"not a version {WIRE_VERSION} envelope")
    replay_id = raw.get("replay_id")
    return Envelope(
        _KINDS[raw["kind"]],
        raw["message"],
        str(raw["origin"]),
        user=raw.get("user"),
        client_id=raw.get("client_id"),
        log=raw.get("log"),
        replay_id=int(replay_id) if replay_id is not None else None,
        created=raw.get("created"),
    )


async def _close(pubsub: PubSub) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # untyped before redis-py 8.2


class _Link:
    """One connection's state: up or down, since when, and the next backoff delay."""

    def __init__(self, name: str, node: str, first_s: float, last_s: float) -> None:
        self.name = name
        self.node = node
        self.up = False
        self._first, self._last = first_s, last_s
        self._delay = first_s
        self._down_since: float | None = None

    def connected(self) -> None:
        if self._down_since is not None:
            log.warning(
                "broker_reconnected",
                connection=self.name,
                node=self.node,
                down_s=round(time.monotonic() - self._down_since, 3),
            )
        self.up = True
        self._down_since = None
        self._delay = self._first

    async def lost(self, exc: BaseException) -> None:
        """Mark the link down (logged once per gap) and sleep the backoff delay."""
        self.up = False
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("broker_disconnected", connection=self.name, node=self.node, error=repr(exc))
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, self._last)


class RedisBroker:
    """Fan-out between gateway nodes over Redis pub/sub (`broker.url: redis://...`)."""

    def __init__(
        self,
        *,
        url: str,
        channel: str = "gateway:broker",
        node: str | None = None,
        reconnect_min_s: float = 0.05,
        reconnect_max_s: float = 2.0,
        max_pending: int = 100_000,
    ) -> None:
        self._node = node or secrets.token_hex(6)
        self._url = url
        self._channel = channel
        self._max_pending = max_pending
        # No client-side retries: a retried PUBLISH may be a duplicate; the tasks below reconnect instead.
        # The health check PINGs a connection idle for a second before using it (a restarted server's
        # stale socket is replaced instead of losing the next batch).
        options: dict[str, Any] = {
            "retry": Retry(NoBackoff(), 0),
            "socket_connect_timeout": 2.0,
            "socket_timeout": 5.0,
            "health_check_interval": 1,
        }
        self._redis: Redis = Redis.from_url(url, **options)
        self._pending: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._sink: Sink | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._out = _Link("publish", self._node, reconnect_min_s, reconnect_max_s)
        self._in = _Link("subscribe", self._node, reconnect_min_s, reconnect_max_s)
        self._closed = False
        self._owe_fill = False  # the queue overflowed: ask the other nodes to fill once it is sent
        self._drained = asyncio.Event()  # set while nothing is queued or on its way to Redis
        self._drained.set()
        self.sent = 0  # envelopes handed to Redis
        self.received = 0  # envelopes from other nodes passed to the sink
        self.dropped = 0  # envelopes that did not go out to the other nodes (a gap, a full queue)

    @property
    def node(self) -> str:
        """This node's id (the `origin` of what it publishes)."""
        return self._node

    async def start(self, sink: Sink) -> None:
        """Connect and subscribe (raises when Redis cannot be reached now), then pass envelopes to `sink`."""
        try:
            await self._redis.ping()
            pubsub = await self._subscribe()
        except (RedisError, OSError) as exc:
            await self._redis.aclose()
            raise ConnectionError(f"broker.url {self._safe_url()}: cannot reach Redis: {exc}") from exc
        self._out.connected()
        self._in.connected()
        self._sink = sink
        log.info("broker_started", backend="redis", node=self._node, url=self._safe_url(), channel=self._channel)
        self._tasks = [
            asyncio.create_task(self._publishing(), name=f"broker-publish-{self._node}"),
            asyncio.create_task(self._subscribing(pubsub), name=f"broker-subscribe-{self._node}"),
        ]

    def publish(self, envelope: Envelope) -> None:
        """Deliver locally at once; queue the envelope for the other nodes (dropped while Redis is away)."""
        sink = self._sink
        if sink is None:
            return
        sink(envelope)
        if not self._out.up:
            self.dropped += 1
            return
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            self._owe_fill = True
            if self.dropped % 10_000 == 1:  # not a line per message
                log.warning("broker_queue_full", node=self._node, max_pending=self._max_pending, dropped=self.dropped)
            return
        try:
            self._pending.append(encode(envelope))
        except TypeError as exc:  # a message that is not JSON: its local delivery is all it gets
            self.dropped += 1
            log.error("broker_unencodable", node=self._node, channel=envelope.message.get("channel"), error=str(exc))
            return
        self._drained.clear()
        self._wake.set()

    async def close(self) -> None:
        """Send what is queued (briefly), then stop both connections."""
        if self._closed:
            return
        self._closed = True
        self._sink = None
        # The publishing task sends what is queued, in order; give it a moment before stopping it.
        if self._out.up:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), 1.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._out.up = self._in.up = False
        await self._redis.aclose()

    def healthy(self) -> bool:
        """True while both the publishing and the subscribing connection are up."""
        running = bool(self._tasks) and not any(task.done() for task in self._tasks)
        return not self._closed and running and self._out.up and self._in.up

    async def _subscribe(self) -> PubSub:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            # Wait for Redis's confirmation: only from then on does every publish reach us, so a gap fill
            # that reads the log after this point misses nothing.
            deadline = time.monotonic() + _CONFIRM_S
            while True:
                item = await pubsub.get_message(timeout=_POLL_S)
                if item is not None and item.get("type") == "subscribe":
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no subscribe confirmation within {_CONFIRM_S} s")
        except BaseException:
            await _close(pubsub)
            raise
        return pubsub

    async def _flush(self) -> None:
        try:
            await self._send_pending()
        finally:
            if not self._pending:
                self._drained.set()

    async def _send_pending(self) -> None:
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(_BATCH, len(self._pending)))]
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for data in batch:
                        pipe.publish(self._channel, data)
                    await pipe.execute()
            except BaseException:
                # At most once: a batch that may or may not have gone out is not sent again.
                self.dropped += len(batch)
                raise
            self.sent += len(batch)

    async def _publishing(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
                if self._owe_fill:
                    self._ask_fill()
            except (RedisError, OSError) as exc:
                await self._reconnect_publisher(exc)
            except Exception as exc:  # never die silently: a dead task would cut this node off for good
                log.exception("broker_publish_failed", node=self._node)
                await self._reconnect_publisher(exc)

    async def _reconnect_publisher(self, exc: BaseException) -> None:
        self.dropped += len(self._pending)
        self._pending.clear()
        self._drained.set()
        while True:
            await self._out.lost(exc)
            try:
                await self._redis.ping()
            except (RedisError, OSError) as again:
                exc = again
                continue
            self._out.connected()
            self._ask_fill()
            return

    async def _subscribing(self, pubsub: PubSub | None) -> None:
        while True:
            try:
                if pubsub is None:
                    pubsub = await self._subscribe()
                    self._in.connected()
                    self._missed()
                await self._receive(pubsub)
            except Exception as exc:
                if not isinstance(exc, RedisError | OSError):  # never die silently: reconnect all the same
                    log.exception("broker_subscribe_failed", node=self._node)
                if pubsub is not None:
                    await _close(pubsub)
                pubsub = None
                await self._in.lost(exc)
            except asyncio.CancelledError:
                if pubsub is not None:
                    await _close(pubsub)
                raise

    def _missed(self) -> None:
        # What the other nodes published while the subscription was away: the sink reads it back.
        sink = self._sink
        if sink is not None:
            try:
                sink(Envelope(Kind.FILL, {}, self._node))
            except Exception:
                log.exception("broker_sink_failed", node=self._node, kind=Kind.FILL.value)

    def _ask_fill(self) -> None:
        # What this node dropped never reached the others: they read it back from the log.
        self._owe_fill = False
        self._pending.append(encode(Envelope(Kind.FILL, {}, self._node)))
        self._drained.clear()
        self._wake.set()

    async def _receive(self, pubsub: PubSub) -> None:
        while True:
            item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_POLL_S)
            if item is None or item.get("type") != "message":
                continue
            try:
                envelope = decode(item["data"])
            except (ValueError, KeyError, TypeError) as exc:
                log.error("broker_bad_envelope", node=self._node, error=str(exc))
                continue
            sink = self._sink
            if envelope.origin == self._node or sink is None:
                continue
            self.received += 1
            try:
                sink(envelope)
            except Exception:
                log.exception("broker_sink_failed", node=self._node, kind=envelope.kind.value)

    def _safe_url(self) -> str:
        return masked(self._url)
