"""`gateway listen`: subscribe to channels with aiocometd-ng and print one JSON line per message."""

from __future__ import annotations

import asyncio
import base64
import sys
from typing import Any

import orjson
from aiocometd_ng.client import Client
from aiocometd_ng.constants import ConnectionType
from aiocometd_ng.exceptions import AiocometdException
from aiocometd_ng.extensions import AuthExtension

from gateway.client import ReplayExtension, replay_client_options, replay_id


class _Credentials(AuthExtension):
    """Authorization header on every transport request (Basic for user/password, Bearer for a token)."""

    def __init__(self, header: str) -> None:
        self._header = header

    async def outgoing(self, payload: list[dict[str, Any]], headers: dict[str, str]) -> None:
        headers["Authorization"] = self._header

    async def incoming(self, payload: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        return None


def authorization(user: str | None, password: str | None, token: str | None) -> str | None:
    """The Authorization header for the given credentials (None when there are none)."""
    if token:
        return f"Bearer {token}"
    if user is not None:
        return "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
    return None


async def listen(
    url: str,
    channels: list[str],
    *,
    header: str | None,
    transport: str,
    count: int | None,
    replay_from: int | None = None,
) -> int:
    """Print messages until interrupted (or `count` messages); exit status 0, or 1 with a reason.

    With `replay_from` (a replayId, -1 or -2) every channel resumes from there, and each line carries the
    message's `replayId`; a re-handshake resumes from the last one received.
    """
    kind = ConnectionType.WEBSOCKET if transport == "websocket" else ConnectionType.LONG_POLLING
    auth = _Credentials(header) if header else None
    options: dict[str, Any] = {}
    if replay_from is not None:
        options = {**replay_client_options(), "extensions": [ReplayExtension(start=replay_from)]}
    try:
        async with Client(url, kind, ssl=True, auth=auth, **options) as client:
            for channel in channels:
                await client.subscribe(channel)
            print(orjson.dumps({"event": "subscribed", "channels": channels}).decode(), file=sys.stderr, flush=True)
            seen = 0
            async for message in client:
                line = {"replayId": replay_id(message), **message} if replay_from is not None else message
                sys.stdout.write(orjson.dumps(line).decode() + "\n")
                sys.stdout.flush()
                seen += 1
                if count is not None and seen >= count:
                    return 0
    except AiocometdException as exc:
        print(f"gateway listen: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gateway listen: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    return 0


def run(
    url: str,
    channels: list[str],
    *,
    header: str | None,
    transport: str,
    count: int | None,
    replay_from: int | None = None,
) -> int:
    """Blocking entry point for the CLI."""
    try:
        coroutine = listen(url, channels, header=header, transport=transport, count=count, replay_from=replay_from)
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        return 0
