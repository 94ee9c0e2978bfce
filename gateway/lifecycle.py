"""Cleanup contexts for the application's resources: each starts in order and stops in reverse."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


def resource(start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None] | None]) -> CleanupCtx:
    """A cleanup context for one resource: `start` at startup, `stop` at cleanup."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await start()
        yield
        stopped = stop()
        if stopped is not None:
            await stopped

    return ctx


async def nothing() -> None:
    """A start or stop with nothing to do."""
    return None


def background(name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> CleanupCtx:
    """A cleanup context for a background task: started after what comes before it, cancelled at cleanup."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run(), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
