"""Extension seam: hooks on incoming messages, outgoing replies and /meta/connect delivery."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import structlog

if TYPE_CHECKING:
    from gateway.hub.session import Session
    from gateway.wire.message import Message

log = structlog.get_logger("gateway.bayeux.extensions")


class Extension(Protocol):
    """A protocol extension (CometD's BayeuxServer.Extension, synchronous)."""

    name: str

    def incoming(self, message: Message, session: Session | None) -> bool:
        """Inspect or change a client message before it is handled; False deletes it."""

    def outgoing_reply(self, request: Message, reply: Message, session: Session | None) -> None:
        """Inspect or change the reply to `request` before it is sent."""

    def connect_delivery(self, session: Session, events: list[Message], reply: Message) -> list[Message]:
        """Choose the events that travel with a /meta/connect reply (the ack extension resends here)."""

    def has_pending(self, session: Session) -> bool:
        """True if the extension has messages for the session that a connect must not wait for."""


class Extensions:
    """Runs the configured extensions in order; one failing extension is logged and skipped."""

    def __init__(self, extensions: Sequence[Extension]) -> None:
        self._extensions = tuple(extensions)

    def incoming(self, message: Message, session: Session | None) -> bool:
        """Run every incoming hook; False if one deleted the message."""
        for ext in self._extensions:
            try:
                if not ext.incoming(message, session):
                    return False
            except Exception:
                log.exception("extension_failed", extension=ext.name, hook="incoming")
        return True

    def outgoing_reply(self, request: Message, reply: Message, session: Session | None) -> None:
        """Run every outgoing hook on a reply."""
        for ext in self._extensions:
            try:
                ext.outgoing_reply(request, reply, session)
            except Exception:
                log.exception("extension_failed", extension=ext.name, hook="outgoing_reply")

    def connect_delivery(self, session: Session, reply: Message) -> list[Message]:
        """Drain the session's queue into a connect reply, letting extensions add or hold back events."""
        events = session.drain()
        for ext in self._extensions:
            try:
                events = ext.connect_delivery(session, events, reply)
            except Exception:
                log.exception("extension_failed", extension=ext.name, hook="connect_delivery")
        return events

    def has_pending(self, session: Session) -> bool:
        """True if any extension has messages waiting for the session."""
        return any(ext.has_pending(session) for ext in self._extensions)


class BaseExtension:
    """No-op hooks, so an extension overrides only what it needs."""

    name = "base"

    def incoming(self, message: Message, session: Session | None) -> bool:
        """Pass the message on unchanged."""
        return True

    def outgoing_reply(self, request: Message, reply: Message, session: Session | None) -> None:
        """Leave the reply unchanged."""

    def connect_delivery(self, session: Session, events: list[Message], reply: Message) -> list[Message]:
        """Deliver the events unchanged."""
        return events

    def has_pending(self, session: Session) -> bool:
        """Nothing pending."""
        return False


def ext_of(message: Message) -> dict[str, object] | None:
    """The message's `ext` object, or None when absent or not an object."""
    ext = message.get("ext")
    return ext if isinstance(ext, dict) else None
