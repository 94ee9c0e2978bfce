"""Acknowledged-messages extension: batch numbers on connect replies, redelivery of unacknowledged events.

Wire format (CometD AcknowledgedMessagesExtension): handshake `ext.ack: true` both ways; each
/meta/connect request carries `ext.ack: <last batch received>`, each connect reply `ext.ack: <its batch>`.
Events a client has not acknowledged are re-sent with the next connect reply, across reconnects, until
the session expires.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.bayeux.extensions import BaseExtension, ext_of
from gateway.wire.message import CONNECT, HANDSHAKE

if TYPE_CHECKING:
    from gateway.hub.session import Session
    from gateway.wire.message import Message

_KEY = "ack"


class AckState:
    """Per-session batches sent but not yet acknowledged."""

    __slots__ = ("batch", "unacked")

    def __init__(self) -> None:
        self.batch = 1  # the batch number the next connect reply carries
        self.unacked: list[tuple[int, Message]] = []

    def acknowledge(self, batch: int) -> None:
        """Forget everything sent in batches up to `batch`."""
        if self.unacked:
            self.unacked = [(b, m) for b, m in self.unacked if b > batch]


class AckExtension(BaseExtension):
    """Reliable, ordered server-to-client delivery for clients that ask for it."""

    name = "ack"

    def incoming(self, message: Message, session: Session | None) -> bool:
        """Apply the client's acknowledgement carried by /meta/connect."""
        if session is not None and message.get("channel") == CONNECT:
            state = _state(session)
            ext = ext_of(message)
            if state is not None and ext is not None:
                acked = ext.get(_KEY)
                if isinstance(acked, int) and not isinstance(acked, bool):
                    state.acknowledge(acked)
        return True

    def outgoing_reply(self, request: Message, reply: Message, session: Session | None) -> None:
        """Agree to acks in the handshake reply when the client asked for them."""
        if (
            request.get("channel") == HANDSHAKE
            and session is not None
            and reply.get("successful")
            and (ext_of(request) or {}).get(_KEY) is True
        ):
            if session.ext is None:
                session.ext = {}
            session.ext[_KEY] = AckState()
            # Ordering and redelivery need every event to travel inside a numbered connect reply.
            session.deliver_in_connects_only()
            reply.setdefault("ext", {})[_KEY] = True

    def connect_delivery(self, session: Session, events: list[Message], reply: Message) -> list[Message]:
        """Send unacknowledged events again plus the new ones, all tagged with this reply's batch."""
        state = _state(session)
        if state is None:
            return events
        batch = state.batch
        state.batch += 1
        outgoing = [m for _, m in state.unacked] + events
        state.unacked = [(batch, m) for m in outgoing]
        reply.setdefault("ext", {})[_KEY] = batch
        return outgoing

    def has_pending(self, session: Session) -> bool:
        """Unacknowledged events make the next connect return at once."""
        state = _state(session)
        return state is not None and bool(state.unacked)


def _state(session: Session) -> AckState | None:
    if session.ext is None:
        return None
    state = session.ext.get(_KEY)
    return state if isinstance(state, AckState) else None
