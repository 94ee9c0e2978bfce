"""A client extension that keeps an agent's last meta messages: what a report of a lost notification shows."""

from __future__ import annotations

import asyncio
import io
import time
from collections import deque
from typing import Any

from aiocometd_ng.extensions import Extension


class Trace(Extension):
    """Keeps the last meta messages an agent sent and got (and their outcome), for the report of a lost one."""

    def __init__(self) -> None:
        self.entries: deque[str] = deque(maxlen=60)

    async def outgoing(self, payload: list[dict[str, Any]], headers: dict[str, str]) -> None:
        """Note each meta request."""
        for m in payload:
            if _channel(m).startswith("/meta/"):
                self._note(">", m)

    async def incoming(self, payload: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        """Note each meta reply."""
        for m in payload:
            if _channel(m).startswith("/meta/"):
                self._note("<", m)

    def _note(self, way: str, m: dict[str, Any]) -> None:
        fields = {k: m.get(k) for k in ("id", "clientId", "successful", "error", "subscription") if k in m}
        advice = m.get("advice") or {}
        if "reconnect" in advice:
            fields["reconnect"] = advice["reconnect"]
        replay = (m.get("ext") or {}).get("replay")
        if replay is not None:
            fields["replay"] = replay
        self.entries.append(f"{time.time():.3f} {way} {_channel(m)} {fields}")


def _channel(message: dict[str, Any]) -> str:
    # aiocometd-ng's own messages carry its MetaChannel enum, whose str() is its name, not "/meta/...".
    channel = message.get("channel", "")
    return str(getattr(channel, "value", channel))


def stack(task: asyncio.Future[Any] | None) -> str:
    """Where a pending task waits (its coroutine's frames), or how it ended."""
    if task is None:
        return "none"
    if task.done():
        return "done: " + ("cancelled" if task.cancelled() else repr(task.exception()))
    if not isinstance(task, asyncio.Task):
        return "pending future"
    out = io.StringIO()
    task.print_stack(file=out)
    return out.getvalue()
