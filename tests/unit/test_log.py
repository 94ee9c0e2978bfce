"""Logging set-up: what aiohttp logs about a client's malformed request."""

from __future__ import annotations

import json
import logging
import sys

import structlog
from aiohttp.http_exceptions import BadHttpMessage

from gateway.log import MalformedRequestFilter, stdlib_formatter


def record(exc: BaseException) -> logging.LogRecord:
    """What aiohttp.server logs when handling a request failed with `exc`."""
    try:
        raise exc
    except BaseException:
        info = sys.exc_info()
    message = "Error handling request from %s"
    return logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, message, ("x",), info)


def test_malformed_request_is_one_warning_line() -> None:
    """Found with schemathesis' NUL-byte header probe: aiohttp logged an ERROR with a traceback for a 400."""
    r = record(BadHttpMessage("Invalid header value char:\n\n  b'X: \\x00'"))
    assert MalformedRequestFilter().filter(r)
    assert r.levelno == logging.WARNING and r.exc_info is None
    assert r.getMessage() == "Error handling request from x: 400 Invalid header value char:"


def test_server_errors_keep_their_traceback() -> None:
    """Anything else aiohttp logs (a real server error) is left as it is."""
    r = record(RuntimeError("boom"))
    assert MalformedRequestFilter().filter(r)
    assert r.levelno == logging.ERROR and r.exc_info is not None


def test_stdlib_lines_are_json_like_ours() -> None:
    """aiohttp's lines were plain text between the JSON ones (`aiohttp.server Error handling request ...`)."""
    formatter = stdlib_formatter(structlog.processors.JSONRenderer())
    r = record(BadHttpMessage("Bad status line"))
    assert MalformedRequestFilter().filter(r)
    line = json.loads(formatter.format(r))
    assert line["event"] == "Error handling request from x: 400 Bad status line"
    assert line["level"] == "warning" and line["logger"] == "aiohttp.server" and "timestamp" in line
    error = json.loads(formatter.format(record(RuntimeError("boom"))))
    assert (
        error["level"] == "error" and "Traceback" in error["exception"] and "RuntimeError: boom" in error["exception"]
    )


def test_malformed_request_lines_are_rate_limited() -> None:
    """The soak's hostile stream (a bare-LF request each second, for 10 minutes) wrote one line per request:
    at most `burst` lines per window now, and the next line let through counts what was dropped. Server
    errors are never dropped."""
    now = [0.0]
    limiter = MalformedRequestFilter(burst=3, window_s=10.0, clock=lambda: now[0])
    passed = [limiter.filter(record(BadHttpMessage("Bad status line"))) for _ in range(10)]
    assert passed == [True] * 3 + [False] * 7
    assert limiter.filter(record(RuntimeError("boom")))
    now[0] = 10.0
    r = record(BadHttpMessage("Bad status line"))
    assert limiter.filter(r)
    assert r.getMessage() == "Error handling request from x: 400 Bad status line (7 more malformed requests not logged)"
    assert limiter.suppressed == 0
