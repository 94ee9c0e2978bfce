"""JSON framing of Bayeux messages (orjson on the hot path)."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final

import orjson
import structlog

from gateway.bayeux.errors import SERVER_ERROR
from gateway.wire.limits import Refused, problem, suspect

if TYPE_CHECKING:
    from gateway.wire.message import Message

log = structlog.get_logger("gateway.transport.codec")


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
    if suspect(body, value):
        # A message the gateway could not write back (too deep, an integer beyond 64 bits) is refused
        # in-band by the protocol, never passed on; the rest of the batch is served.
        for i, message in enumerate(value):
            if isinstance(message, dict):
                reason = problem(message)
                if reason is not None:
                    value[i] = Refused(message, reason)
    return value


def encode(messages: list[Message]) -> bytes:
    """Serialize messages as one JSON array.

    Never raises: a message that cannot be written (the edge refuses such input, so this is a server
    bug) is dropped, or for a reply replaced by a `500::server_error` one, and logged once; the other
    messages of the frame go out, so no connection is blocked and no client hangs.
    """
    try:
        return orjson.dumps(messages)
    except orjson.JSONEncodeError:
        return orjson.dumps([m for m in map(_writable, messages) if m is not None])


# Messages found unwritable lately, by id (kept alive so an id stays theirs): one fan-out logs once.
_UNWRITABLE: Final[OrderedDict[int, object]] = OrderedDict()


def _writable(message: Message) -> Message | None:
    try:
        orjson.dumps(message)
    except orjson.JSONEncodeError as exc:
        if _UNWRITABLE.get(id(message)) is not message:
            _UNWRITABLE[id(message)] = message
            if len(_UNWRITABLE) > 64:
                _UNWRITABLE.popitem(last=False)
            log.error("message_unwritable", channel=str(message.get("channel"))[:200], error=str(exc))
        if "data" in message:
            return None  # an event: dropped for this session
        return _failed_reply(message)
    return message


def _failed_reply(message: Message) -> Message:
    reply: Message = {"channel": message.get("channel"), "successful": False, "error": SERVER_ERROR}
    if "id" in message:
        reply["id"] = message["id"]
    if "clientId" in message:
        reply["clientId"] = message["clientId"]
    try:
        orjson.dumps(reply)
    except orjson.JSONEncodeError:
        return {"successful": False, "error": SERVER_ERROR}
    return reply
