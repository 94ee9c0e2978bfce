"""Channel names, patterns, expansion and coverage (bayeux.md checklist 40, 43)."""

from __future__ import annotations

import pytest

from gateway.wire.channel import ChannelError, covers, expand, matches, validate_name, validate_pattern


@pytest.mark.parametrize("name", ["/a", "/chat/room-1", "/v2/me/outbound", "/x/a b", "/a/!~()$@#+.{}_"])
def test_valid_names(name: str) -> None:
    """Names made of the CometD validator's characters are accepted."""
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "a", "/", "//a", "/a/", "/a//b", "/a<b>", "/a/*", "/a/**", "/a/\u00e9", 5, None])
def test_invalid_names(name: object) -> None:
    """Empty segments, markup, wildcards and non-strings are not channel names."""
    with pytest.raises(ChannelError):
        validate_name(name)


@pytest.mark.parametrize("pattern", ["/a/*", "/a/**", "/**", "/*", "/a/b"])
def test_valid_patterns(pattern: str) -> None:
    """Wildcards are allowed as the last segment only."""
    assert validate_pattern(pattern) == pattern


@pytest.mark.parametrize("pattern", ["/a/*/b", "/**/a", "/a/***", "/a/b*"])
def test_invalid_patterns(pattern: str) -> None:
    """A wildcard anywhere but as the whole last segment is invalid."""
    with pytest.raises(ChannelError):
        validate_pattern(pattern)


def test_expand() -> None:
    """A name expands to itself, its /* parent and every /** ancestor."""
    assert expand("/a/b/c") == ("/a/b/c", "/a/b/*", "/a/b/**", "/a/**", "/**")
    assert expand("/a") == ("/a", "/*", "/**")


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("/foo/*", "/foo/bar", True),
        ("/foo/*", "/foo", False),
        ("/foo/*", "/foo/bar/baz", False),
        ("/foo/**", "/foo/bar", True),
        ("/foo/**", "/foo/bar/baz", True),
        ("/foo/**", "/foo", False),
        ("/**", "/anything/at/all", True),
        ("/foo/bar", "/foo/bar", True),
        ("/foo/bar", "/foo/baz", False),
    ],
)
def test_matches(pattern: str, name: str, expected: bool) -> None:
    """#40: the Bayeux wildcard rules."""
    assert matches(pattern, name) is expected


@pytest.mark.parametrize(
    ("pattern", "allowed", "expected"),
    [
        ("/chat/a", "/chat/**", True),
        ("/chat/*", "/chat/**", True),
        ("/chat/**", "/chat/**", True),
        ("/chat/a/b/**", "/chat/**", True),
        ("/chat", "/chat/**", False),
        ("/**", "/chat/**", False),
        ("/*", "/chat/**", False),
        ("/chat/a", "/chat/*", True),
        ("/chat/*", "/chat/*", True),
        ("/chat/**", "/chat/*", False),
        ("/chat/a/b", "/chat/*", False),
        ("/chat/a", "/chat/a", True),
        ("/chat/*", "/chat/a", False),
    ],
)
def test_covers(pattern: str, allowed: str, expected: bool) -> None:
    """A subscription is allowed only if every channel it matches is allowed."""
    assert covers(pattern, allowed) is expected


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"channel": "/meta/connect", "id": "12"}, None),
        ({"channel": "/meta/connect"}, None),
        ({"channel": "/meta/connect", "id": 7}, None),
        ({"channel": "/meta/connect", "id": "a-b"}, "405::message_id_invalid"),
        ({"channel": "/meta/connect", "id": "\u00e91"}, "405::message_id_invalid"),
        ({"channel": "/meta/connect", "id": "x" * 65}, "405::message_id_invalid"),
        ({"channel": "/meta/connect", "id": None}, "405::message_id_invalid"),
        ({"channel": "/chat/<x>", "id": "1"}, "405::channel_invalid"),
        ({"id": "1"}, "400::channel_missing"),
    ],
)
def test_message_field_checks(message: dict[str, object], error: str | None) -> None:
    """The fast path for meta channels agrees with the full check (ASCII alphanumeric ids only)."""
    from gateway.bayeux.validation import check_fields

    reply = check_fields(message)
    assert (reply["error"] if reply else None) == error
