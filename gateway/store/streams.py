"""Builds the log in Redis Streams over a SQL store (replay.backend redis): the streams, the outbox, the relay."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gateway.settings import Settings
from gateway.store.redis_log import RedisStreamLog
from gateway.store.sql import SqlContactStore
from gateway.store.sql_log import SqlOutbox
from gateway.store.stream_relay import StreamRelay
from gateway.wire.notification import Notification


def relay_to_streams(
    store: SqlContactStore,
    settings: Settings,
    *,
    deliver: Callable[[Iterable[Notification]], None],
    fill: Callable[[], None],
) -> StreamRelay:
    """A stream relay in broker.url's Redis that `store` hands its commits to (its `stream` is the log)."""
    url = settings.broker.url
    if url is None:  # the settings refuse replay.backend redis without broker.url
        raise ValueError("replay.backend redis needs broker.url")
    stream_relay = StreamRelay(
        stream=RedisStreamLog(url=url, prefix=settings.replay.stream_prefix),
        outbox=SqlOutbox(store),
        deliver=deliver,
        fill=fill,
        keep_s=settings.replay.outbox_keep_s,
    )
    store.relay_through(stream_relay)
    return stream_relay
