"""Replay for Python clients: an aiocometd-ng extension that resumes every subscription from its last replayId.

    from aiocometd_ng import Client, ConnectionType
    from gateway.client import ReplayExtension, replay_client_options

    replay = ReplayExtension(ids=saved_ids, start=-2)      # ids: {subscription: last replayId}, e.g. from a file
    async with Client(url, ConnectionType.WEBSOCKET, extensions=[replay], **replay_client_options()) as client:
        await client.subscribe("/v2/me/**")
        async for message in client:
            handle(message)
            save(replay.ids)                                # what to resume from after a restart

The handshake asks for replay (`ext.replay: true`); every subscribe, the first and those aiocometd-ng sends
again after a re-handshake (a lost session, a gateway restart), carries `ext.replay: {subscription: id}`
with the last replayId received on it (or `start` for a subscription never seen). The gateway then sends
what was missed before what is new, with no gap and no duplicate.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Final

from aiocometd_ng.extensions import Extension

# aiocometd-ng queues at most max_pending_count events before its consumer reads them and stops reading
# the transport meanwhile: a replay of thousands of events would stall it. Replay needs a deep queue.
PENDING: Final = 100_000
NEW_ONLY: Final = -1
ALL_RETAINED: Final = -2


def replay_client_options() -> dict[str, Any]:
    """Keyword arguments for aiocometd-ng's Client that a replaying client needs."""
    return {"max_pending_count": PENDING}


def replay_id(message: dict[str, Any]) -> int | None:
    """The replayId an event carries (data.event.replayId), if any."""
    data = message.get("data")
    event = data.get("event") if isinstance(data, dict) else None
    value = event.get("replayId") if isinstance(event, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def matches(pattern: str, channel: str) -> bool:
    """Bayeux wildcard matching: `/a/*` one more segment, `/a/**` any number."""
    if pattern.endswith("/**"):
        return channel.startswith(pattern[:-2]) and len(channel) > len(pattern) - 2
    if pattern.endswith("/*"):
        prefix = pattern[:-1]
        return channel.startswith(prefix) and "/" not in channel[len(prefix) :] and len(channel) > len(prefix)
    return pattern == channel


class ReplayExtension(Extension):
    """Salesforce's replay extension for aiocometd-ng (the gateway speaks it; so does Salesforce)."""

    def __init__(self, *, ids: MutableMapping[str, int] | None = None, start: int = NEW_ONLY) -> None:
        self.ids: MutableMapping[str, int] = ids if ids is not None else {}
        self.start = start
        self.enabled = False  # the server agreed in its handshake reply
        self._subscriptions: set[str] = set(self.ids)

    async def outgoing(self, payload: list[dict[str, Any]], headers: dict[str, str]) -> None:
        """Ask for replay in handshakes; name the last id in subscribes."""
        for message in payload:
            channel = message.get("channel")
            if channel == "/meta/handshake":
                message.setdefault("ext", {})["replay"] = True
            elif channel == "/meta/subscribe" and self.enabled:
                subscription = message.get("subscription")
                if isinstance(subscription, str):
                    self._subscriptions.add(subscription)
                    from_id = self.ids.get(subscription, self.start)
                    message.setdefault("ext", {})["replay"] = {subscription: from_id}

    async def incoming(self, payload: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        """Note the server's agreement and the last replayId of each subscription."""
        for message in payload:
            channel = message.get("channel")
            if channel == "/meta/handshake":
                ext = message.get("ext")
                self.enabled = bool(message.get("successful")) and isinstance(ext, dict) and ext.get("replay") is True
                continue
            if channel == "/meta/subscribe":
                self._baseline(message)
                _keep_if_session_lost(message)
                continue
            if not isinstance(channel, str) or channel.startswith("/meta/"):
                continue
            found = replay_id(message)
            if found is None:
                continue
            for subscription in self._subscriptions:
                if matches(subscription, channel):
                    self._advance(subscription, found)

    def _baseline(self, reply: dict[str, Any]) -> None:
        # The gateway says, per subscription, the id the client has seen up to once subscribed.
        ext = reply.get("ext")
        baselines = ext.get("replay") if isinstance(ext, dict) and reply.get("successful") else None
        if isinstance(baselines, dict):
            for subscription, value in baselines.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    self._advance(subscription, value)

    def _advance(self, subscription: str, found: int) -> None:
        if found > self.ids.get(subscription, NEW_ONLY):
            self.ids[subscription] = found


def _keep_if_session_lost(reply: dict[str, Any]) -> None:
    """Keep aiocometd-ng from forgetting a subscription whose subscribe met a session the server lost.

    aiocometd-ng resubscribes after a re-handshake by sending its subscriptions with the next connect,
    and drops a channel from them when a subscribe reply is unsuccessful. After a gateway restart the
    resubscribe can reach the new process before the client learned its session is gone: the reply is
    `402::...` (unknown client), aiocometd-ng drops the channel, and once handshaken again it never
    subscribes to it. Without the `subscription` field in such a reply the channel stays subscribed.
    """
    error = reply.get("error")
    if reply.get("successful") is False and isinstance(error, str) and error.startswith("402"):
        reply.pop("subscription", None)
