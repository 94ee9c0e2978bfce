"""JSON framing of Bayeux messages (orjson on the hot path)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from gateway.wire.message import Message


class TransportError(Exception):
    """A request the transport refuses before the protocol sees it."""

    def __init__(self, status: int, reason: str, ws_close: int = 1011) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.ws_close = ws_close


def decode(body: bytes | str, *, max_messages: int) -> list[Any]:
    """Parse a request body: a JSON array of messages, or a single message object."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise TransportError(400, "body is not valid JSON", ws_close=1011) from None
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise TransportError(400, "body must be a JSON array of messages or one message object", 1011)
    if not value:
        raise TransportError(400, "empty message array", ws_close=1011)
    if len(value) > max_messages:
        raise TransportError(413, f"more than {max_messages} messages in one request", ws_close=1009)
    return value


def encode(messages: list[Message]) -> bytes:
    """Serialize messages as one JSON array."""
    return orjson.dumps(messages)
