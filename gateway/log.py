"""structlog set-up: JSON lines when stderr is not a terminal, readable console output otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Final

import structlog
from aiohttp.http_exceptions import HttpProcessingError

from gateway.settings import LoggingSettings

# Malformed-request lines let through per window: a client sending garbage must not be able to flood the log.
MALFORMED_BURST: Final = 10
MALFORMED_WINDOW_S: Final = 10.0


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a client's malformed HTTP (a NUL byte in a header, say) as an error with a traceback; it is
    the client's mistake, answered 400: one warning line without the traceback is enough, and at most
    `burst` of them per `window_s` (the first line after a window that dropped some says how many)."""

    def __init__(
        self,
        *,
        burst: int = MALFORMED_BURST,
        window_s: float = MALFORMED_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._burst = burst
        self._window = window_s
        self._clock = clock
        self._window_start = -window_s
        self._passed = 0
        self.suppressed = 0  # dropped since the last line let through

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a client-side HttpProcessingError to a one-line warning, within the rate limit."""
        exc = record.exc_info[1] if record.exc_info else None
        if not (isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 0) < 500):
            return True
        now = self._clock()
        if now - self._window_start >= self._window:
            self._window_start, self._passed = now, 0
        if self._passed >= self._burst:
            self.suppressed += 1
            return False
        self._passed += 1
        message = f"{record.getMessage()}: {exc.code} {exc.message.splitlines()[0] if exc.message else ''}"
        if self.suppressed:
            message += f" ({self.suppressed} more malformed requests not logged)"
            self.suppressed = 0
        record.msg, record.args = message, ()
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def stdlib_formatter(renderer: structlog.types.Processor) -> logging.Formatter:
    """A formatter writing stdlib records as our own lines: level, logger name, time, exception, then `renderer`."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def configure(settings: LoggingSettings) -> None:
    """Configure structlog and the stdlib root logger (aiohttp logs through it)."""
    level = getattr(logging, settings.level.upper())
    as_json = settings.format == "json" or (settings.format == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Lines of the stdlib loggers (aiohttp's) in the same format: in JSON, a log reader would otherwise trip over
    # aiohttp's plain-text lines between ours.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(stdlib_formatter(renderer))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(level, logging.WARNING))
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server_log.filters):
        server_log.addFilter(MalformedRequestFilter())
