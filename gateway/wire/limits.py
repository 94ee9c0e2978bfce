"""What the gateway accepts from a JSON body: only what it can always write back.

orjson reads JSON nested up to 1024 levels but writes at most 254, and writes no integer outside
[-2**63, 2**64 - 1]. A value accepted at the edge is copied into replies, events, logs and the registry,
often inside a few more levels (a message in a frame, a record in a notification), so the limits sit well
inside what the serializer can write:

- nesting: at most MAX_DEPTH levels of objects and arrays, counted from the message (Bayeux) or the body
  (REST) itself;
- integers: signed 64 bits, what every consumer holds (SQLite and PostgreSQL integers, Java's long in
  CometD clients, orjson);
- strings: as long as the body limit allows (orjson refuses text that is not valid Unicode when it reads).

`problem` is the exact check (a walk in Python); `suspect` rules out almost every real message first, in
C: fewer brackets in the raw body than MAX_DEPTH cannot nest deeper, and orjson writing the value with
OPT_STRICT_INTEGER (53 bits) proves no integer is out of range. Only what fails either is walked.
"""

from __future__ import annotations

from typing import Final

import orjson

from gateway.wire.message import valid_id

MAX_DEPTH: Final = 64
MIN_INT: Final = -(2**63)
MAX_INT: Final = 2**63 - 1

DEPTH_EXCEEDED: Final = "depth"
INTEGER_EXCEEDED: Final = "integer"

_STRICT: Final = orjson.OPT_STRICT_INTEGER


def suspect(raw: bytes | str, value: object) -> bool:
    """False when `value` (parsed from `raw`) certainly holds nothing `problem` refuses."""
    brackets = raw.count(b"[") + raw.count(b"{") if isinstance(raw, bytes) else raw.count("[") + raw.count("{")
    if brackets > MAX_DEPTH:
        return True
    try:
        orjson.dumps(value, option=_STRICT)
    except orjson.JSONEncodeError:
        return True
    return False


def problem(value: object, depth: int = 1) -> str | None:
    """DEPTH_EXCEEDED or INTEGER_EXCEEDED for a parsed JSON value the gateway refuses, else None.

    `depth` is the level of `value` itself (a message object is level 1).
    """
    if isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            return DEPTH_EXCEEDED
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, dict | list | int):
                found = problem(item, depth + 1)
                if found is not None:
                    return found
        return None
    if isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
        return INTEGER_EXCEEDED
    return None


class Refused:
    """A message refused when it was decoded: the protocol answers it in-band, echoing only a plain id and
    channel (the refused value may be either of them)."""

    __slots__ = ("channel", "id", "reason")

    def __init__(self, message: dict[str, object], reason: str) -> None:
        channel = message.get("channel")
        msg_id = message.get("id")
        self.channel = channel if isinstance(channel, str) else None
        self.id = msg_id if valid_id(msg_id) and (isinstance(msg_id, str) or _small_int(msg_id)) else None
        self.reason = reason

    def reply(self) -> dict[str, object]:
        """The start of the reply: the channel, and the id when the message had a usable one."""
        reply: dict[str, object] = {"channel": self.channel}
        if self.id is not None:
            reply["id"] = self.id
        return reply


def _small_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and MIN_INT <= value <= MAX_INT
