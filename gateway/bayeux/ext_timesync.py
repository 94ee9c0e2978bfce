"""Timesync extension: lets clients estimate network lag and clock offset (CometD TimesyncExtension)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final, TypeGuard

from gateway.bayeux.extensions import BaseExtension, ext_of
from gateway.wire.channel import is_meta

if TYPE_CHECKING:
    from gateway.hub.session import Session
    from gateway.wire.message import Message

# Where the receive time is noted on the request; meta requests are never forwarded, so it never leaks.
_RECEIVED: Final = "_gateway_ts"
# A client's times are milliseconds (Date.now() is about 2**40); anything beyond JavaScript's safe integers
# is not a time, and the arithmetic below stays far inside what a reply can carry.
_BOUND: Final = 2**53


def _now_ms() -> int:
    return int(time.time() * 1000)


class TimesyncExtension(BaseExtension):
    """Answers `ext.timesync {tc, l, o}` on meta messages with `{tc, ts, p, a}`.

    Values outside +-2**53 are ignored (no answer, or no `a`): bounded inputs keep the answer writable.
    """

    name = "timesync"

    def incoming(self, message: Message, session: Session | None) -> bool:
        """Note when a timesync request arrived."""
        ext = ext_of(message)
        sync = ext.get("timesync") if ext is not None else None
        if isinstance(sync, dict) and is_meta(str(message.get("channel"))):
            sync[_RECEIVED] = _now_ms()
        return True

    def outgoing_reply(self, request: Message, reply: Message, session: Session | None) -> None:
        """Add the server's timestamps to the reply."""
        sync = (ext_of(request) or {}).get("timesync")
        if not isinstance(sync, dict):
            return
        ts, tc, lag, offset = sync.get(_RECEIVED), sync.get("tc"), sync.get("l"), sync.get("o")
        if not _number(ts) or not _number(tc):
            return
        answer: dict[str, int | float] = {"tc": tc, "ts": ts, "p": _now_ms() - ts}
        if _number(lag) and _number(offset):
            answer["a"] = tc + offset + lag - ts
        reply.setdefault("ext", {})["timesync"] = answer


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and -_BOUND <= value <= _BOUND
