"""Channel names and patterns: validation, classes and wildcard expansion."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

META_PREFIX: Final = "/meta/"
SERVICE_PREFIX: Final = "/service/"

# CometD's Validator character set: the spec's segment characters plus space # + . { } and '*'
# (the star only as a whole wildcard segment, checked below).
_SEGMENT: Final = re.compile(r"[A-Za-z0-9\-_!~()$@ #+.{}]+")
MAX_CHANNEL_LENGTH: Final = 512


class ChannelError(ValueError):
    """A channel name or pattern that is not valid Bayeux."""


def _segments(name: object) -> list[str]:
    if not isinstance(name, str) or not name.startswith("/") or len(name) > MAX_CHANNEL_LENGTH:
        raise ChannelError("a channel is a string starting with '/'")
    parts = name[1:].split("/")
    if any(not p for p in parts):
        raise ChannelError("empty channel segment")
    return parts


def validate_name(name: object) -> str:
    """Return `name` if it is a valid concrete channel name (no wildcards)."""
    for part in _segments(name):
        if not _SEGMENT.fullmatch(part):
            raise ChannelError(f"invalid channel segment {part!r}")
    assert isinstance(name, str)
    return name


def validate_pattern(pattern: object) -> str:
    """Return `pattern` if it is a valid name or a pattern ending in `/*` or `/**`."""
    parts = _segments(pattern)
    last = parts[-1]
    body = parts[:-1] if last in ("*", "**") else parts
    for part in body:
        if not _SEGMENT.fullmatch(part):
            raise ChannelError(f"invalid channel segment {part!r}")
    assert isinstance(pattern, str)
    return pattern


def is_meta(name: str) -> bool:
    """True for /meta/** protocol channels."""
    return name.startswith(META_PREFIX) or name == "/meta"


def is_service(name: str) -> bool:
    """True for /service/** channels, which are handled server-side and never broadcast."""
    return name.startswith(SERVICE_PREFIX) or name == "/service"


def is_wild(name: str) -> bool:
    """True for a pattern ending in /* or /**."""
    return name.endswith("/*") or name.endswith("/**")


@lru_cache(maxsize=4096)
def expand(name: str) -> tuple[str, ...]:
    """All subscriptions that match the concrete channel `name`, itself first.

    `/a/b/c` -> (`/a/b/c`, `/a/b/*`, `/a/b/**`, `/a/**`, `/**`): a delivery looks each one up in the
    subscription index instead of testing every pattern, as Faye's `Channel.expand` does.
    """
    parts = name[1:].split("/")
    result = [name, "/" + "/".join([*parts[:-1], "*"])]
    for i in range(len(parts) - 1, -1, -1):
        result.append("/" + "/".join([*parts[:i], "**"]))
    return tuple(result)


def matches(pattern: str, name: str) -> bool:
    """True if the concrete channel `name` is matched by `pattern`."""
    return pattern in expand(name)


def covers(pattern: str, allowed: str) -> bool:
    """True if every channel matched by `pattern` is also matched by `allowed`.

    Used for authorization: a subscription to `/v2/**` is only allowed to whoever may read all of it.
    """
    p_parts = pattern[1:].split("/")
    a_parts = allowed[1:].split("/")
    if a_parts[-1] == "**":
        prefix = a_parts[:-1]
        # /x/** covers anything strictly below /x, wildcards included, but not /x itself.
        return len(p_parts) > len(prefix) and p_parts[: len(prefix)] == prefix
    if a_parts[-1] == "*":
        return len(p_parts) == len(a_parts) and p_parts[:-1] == a_parts[:-1] and p_parts[-1] != "**"
    return pattern == allowed
