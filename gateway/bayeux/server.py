"""BayeuxServer: the server-side API the rest of the gateway uses to reach clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from gateway.bayeux.logs import LogPolicy
from gateway.broker.base import Envelope, Kind
from gateway.wire.channel import is_meta, is_service, is_wild, validate_name
from gateway.wire.notification import Notification

if TYPE_CHECKING:
    from gateway.broker.base import Broker
    from gateway.broker.relay import Relay
    from gateway.hub.session import Session
    from gateway.wire.message import Message

ServiceHandler = Callable[["Session", "Message"], Awaitable[Any]]
log = structlog.get_logger("gateway.bayeux")
# Appends notifications to their durable logs in a transaction of their own, then relays them.
Journal = Callable[[Sequence[Notification]], Awaitable[None]]


class BayeuxServer:
    """Publish to a channel, to one identity's sessions, or to one session; register /service handlers.

    Client publishes and server events take this same path: a notification on a replayable channel is
    appended to its durable log first (`journal`), then delivered by the relay; others go to the relay
    at once.
    """

    def __init__(self, *, broker: Broker, relay: Relay, logs: LogPolicy, journal: Journal | None = None) -> None:
        self._broker = broker
        self._relay = relay
        self.logs = logs
        self._journal = journal
        self._services: dict[str, ServiceHandler] = {}
        self._appending: set[asyncio.Task[None]] = set()

    def notification(
        self, channel: str, data: Any, *, user: str | None = None, ext: dict[str, Any] | None = None
    ) -> Notification:
        """A notification on `channel` (checked: a concrete channel one may broadcast on), logged where
        replay.channels says."""
        _check(channel)
        return Notification(channel, data, user=user, log=self.logs.log_of(channel, user), ext=ext or None)

    async def emit(self, notifications: Sequence[Notification]) -> None:
        """Deliver notifications that no store write carried: logged ones through the journal."""
        if self._journal is not None and any(n.log is not None for n in notifications):
            await self._journal(notifications)
        else:
            self._relay(n if n.log is None else _unlogged(n) for n in notifications)

    async def publish(self, channel: str, data: Any, *, ext: dict[str, Any] | None = None) -> None:
        """Broadcast `data` on `channel` to every subscribed session of every node."""
        await self.emit([self.notification(channel, data, ext=ext)])

    async def deliver_to_user(self, user: str, channel: str, data: Any) -> None:
        """Deliver to the sessions of identity `user` that subscribe to `channel` (every tab)."""
        await self.emit([self.notification(channel, data, user=user)])

    async def deliver_to_session(self, client_id: str, channel: str, data: Any) -> None:
        """Deliver to one session, whether or not it subscribes to `channel` (never logged)."""
        _check(channel)
        self._send(Kind.SESSION, {"channel": channel, "data": data}, client_id)

    async def disconnect_session(self, client_id: str) -> None:
        """Tell a session the server disconnected it (the client stops reconnecting)."""
        self._send(Kind.DISCONNECT, {"channel": "/meta/disconnect", "successful": True}, client_id)

    async def forward(self, message: Message) -> None:
        """Broadcast a client's publish (its channel and data checked by the protocol; its ext kept).

        A logged publish is answered once queued for its transaction, not once committed: one client's
        frames are processed in order, and waiting for each commit held a publisher to one message per
        commit. It is still delivered only after its commit (no subscriber sees what the log lacks);
        a crash in between loses it for everyone. REST operations keep their stronger rule (logged
        before their 200).
        """
        ext = message.get("ext")
        note = self.notification(message["channel"], message["data"], ext=ext if isinstance(ext, dict) else None)
        if self._journal is None or note.log is None:
            await self.emit([note])
            return
        # Tasks start in creation order, so the writer queues these appends in the order they came.
        task = asyncio.ensure_future(self._journal([note]))
        self._appending.add(task)
        task.add_done_callback(self._appended)

    def _appended(self, task: asyncio.Task[None]) -> None:
        self._appending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("publish_not_logged", error=str(task.exception()))

    def _send(self, kind: Kind, message: Message, client_id: str) -> None:
        self._broker.publish(Envelope(kind, message, self._broker.node, client_id=client_id))

    def add_service(self, channel: str, handler: ServiceHandler) -> None:
        """Handle client publishes on a /service/ channel; a non-None result is the reply's `data`."""
        if not is_service(validate_name(channel)):
            raise ValueError(f"{channel!r} is not a /service/ channel")
        self._services[channel] = handler

    def service(self, channel: str) -> ServiceHandler | None:
        """The handler registered for a /service/ channel, if any."""
        return self._services.get(channel)


def _check(channel: str) -> None:
    validate_name(channel)
    if is_meta(channel) or is_service(channel) or is_wild(channel):
        raise ValueError(f"cannot broadcast on {channel!r}")


def _unlogged(note: Notification) -> Notification:
    # No journal (a store-less server, as in unit tests): delivered live only.
    return Notification(note.channel, note.data, user=note.user, ext=note.ext)
