"""BayeuxServer: the server-side API the rest of the gateway uses to reach clients."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.broker.base import Envelope, Kind
from gateway.wire.channel import is_meta, is_service, is_wild, validate_name

if TYPE_CHECKING:
    from gateway.broker.base import Broker
    from gateway.hub.session import Session
    from gateway.wire.message import Message

ServiceHandler = Callable[["Session", "Message"], Awaitable[Any]]


class BayeuxServer:
    """Publish to a channel, to one identity's sessions, or to one session; register /service handlers.

    Client publishes and server events take this same path to the broker, so whatever a later
    outgoing hook does applies to both.
    """

    def __init__(self, *, broker: Broker) -> None:
        self._broker = broker
        self._services: dict[str, ServiceHandler] = {}

    async def publish(self, channel: str, data: Any, *, ext: dict[str, Any] | None = None) -> None:
        """Broadcast `data` on `channel` to every subscribed session of every node."""
        await self._send(Kind.BROADCAST, _event(channel, data, ext))

    async def deliver_to_user(self, user: str, channel: str, data: Any) -> None:
        """Deliver to the sessions of identity `user` that subscribe to `channel` (every tab)."""
        await self._send(Kind.USER, _event(channel, data, None), user=user)

    async def deliver_to_session(self, client_id: str, channel: str, data: Any) -> None:
        """Deliver to one session, whether or not it subscribes to `channel`."""
        await self._send(Kind.SESSION, _event(channel, data, None), client_id=client_id)

    async def disconnect_session(self, client_id: str) -> None:
        """Tell a session the server disconnected it (the client stops reconnecting)."""
        message: Message = {"channel": "/meta/disconnect", "successful": True}
        await self._send(Kind.DISCONNECT, message, client_id=client_id)

    async def forward(self, message: Message) -> None:
        """Broadcast an already-built event (a client publish)."""
        await self._send(Kind.BROADCAST, message)

    async def _send(
        self, kind: Kind, message: Message, *, user: str | None = None, client_id: str | None = None
    ) -> None:
        await self._broker.publish(Envelope(kind, message, self._broker.node, user=user, client_id=client_id))

    def add_service(self, channel: str, handler: ServiceHandler) -> None:
        """Handle client publishes on a /service/ channel; a non-None result is the reply's `data`."""
        if not is_service(validate_name(channel)):
            raise ValueError(f"{channel!r} is not a /service/ channel")
        self._services[channel] = handler

    def service(self, channel: str) -> ServiceHandler | None:
        """The handler registered for a /service/ channel, if any."""
        return self._services.get(channel)


def _event(channel: str, data: Any, ext: dict[str, Any] | None) -> Message:
    validate_name(channel)
    if is_meta(channel) or is_service(channel) or is_wild(channel):
        raise ValueError(f"cannot broadcast on {channel!r}")
    message: Message = {"channel": channel, "data": data}
    if ext:
        message["ext"] = ext
    return message
