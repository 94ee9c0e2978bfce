"""Keeps the notification logs within replay.retention_s and replay.max_events_per_log."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from gateway.clock import WallClock, utcnow
from gateway.settings import ReplaySettings
from gateway.store.log import NotificationLog

log = structlog.get_logger("gateway.store.pruner")


class Pruner:
    """Prunes every `prune_period_s`; survives its own errors, lets cancellation through."""

    def __init__(self, notification_log: NotificationLog, settings: ReplaySettings, *, clock: WallClock = utcnow):
        self._log = notification_log
        self._settings = settings
        self._clock = clock

    async def prune(self) -> int:
        """One pass: how many entries went."""
        before = self._clock() - timedelta(seconds=self._settings.retention_s)
        return await self._log.prune(before=before, keep=self._settings.max_events_per_log)

    async def run(self) -> None:
        """Prune now and then every period."""
        while True:
            try:
                removed = await self.prune()
                if removed:
                    log.info("log_pruned", entries=removed)
            except Exception:
                log.exception("log_prune_failed")
            await asyncio.sleep(self._settings.prune_period_s)
