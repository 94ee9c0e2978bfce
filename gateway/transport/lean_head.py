"""Parsing a request head on the lean path: the strict subset it serves itself, everything else is aiohttp's.

The checks are a handful of C-speed bytes operations over the whole head, not a scan per header: a request
that fails any of them is not refused here but handed to aiohttp, whose parser answers it (400, or serves it),
so the lean path never answers differently from aiohttp.
"""

from __future__ import annotations

import re
from collections.abc import Container
from typing import Final

from multidict import CIMultiDict

MAX_HEAD: Final = 8190  # aiohttp's own limit for the request line and headers
MAX_HEADERS: Final = 128  # aiohttp's default max_headers (the gateway keeps it): more is its 400
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS: Final = re.compile(rb"[0-9]{1,15}")
# Control characters aiohttp's parser refuses in a header (HTAB is allowed; CR and LF are counted apart).
_CONTROL: Final = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A query made of RFC 3986 characters only; anything else (controls, spaces, non-ASCII) is for aiohttp.
_QUERY: Final = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
# A request with one of these is outside the lean subset: aiohttp serves it.
_REFUSED: Final = frozenset((b"transfer-encoding", b"expect", b"upgrade"))

Head = tuple[CIMultiDict[str], int, bool]  # headers, Content-Length, close after the answer


def incomplete_is_ours(buffer: bytes) -> bool:
    """Whether a buffer without the end of a head yet may still become a lean request (else: hand it off)."""
    if len(buffer) > MAX_HEAD or not buffer.startswith(b"POST "[: len(buffer)]):
        return False  # too long, or not a POST
    # A bare LF: the head may end with LF LF, which the lean path never looks for.
    return buffer.count(b"\n") == buffer.count(b"\r\n")


def parse_head(head: bytes, paths: Container[bytes]) -> Head | None:
    """Headers, Content-Length and whether to close, for a request in the lean subset; else None."""
    lines = head.split(b"\r\n")
    crlf = len(lines) - 1
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf or _CONTROL.search(head) is not None:
        return None  # bare CR or LF, or a control character anywhere
    if crlf > MAX_HEADERS:
        return None
    request = lines[0].split(b" ")
    if len(request) != 3 or request[0] != b"POST" or request[2] != b"HTTP/1.1":
        return None
    path, _, query = request[1].partition(b"?")
    if path not in paths or (query and _QUERY.fullmatch(query) is None):
        return None  # the query ignored for routing, as aiohttp does; its characters checked as aiohttp does
    headers: CIMultiDict[str] = CIMultiDict()
    length: int | None = None
    hosts = 0
    close = False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            return None  # folded, malformed or empty lines: aiohttp decides
        lower = name.lower()
        value = value.strip(b" \t")
        if lower in _REFUSED:
            return None
        if lower == b"content-length":
            if length is not None or not _DIGITS.fullmatch(value):
                return None
            length = int(value)
        elif lower == b"host":
            hosts += 1
        elif lower == b"connection":
            # A list of tokens, possibly over several lines: `close` anywhere wins (aiohttp and llhttp do so).
            close = close or b"close" in (token.strip(b" \t") for token in value.lower().split(b","))
        headers.add(name.decode("latin-1"), value.decode("latin-1"))
    if length is None or hosts != 1:
        return None  # HTTP/1.1 requires exactly one Host: aiohttp answers 400 without it or with two
    return headers, length, close
