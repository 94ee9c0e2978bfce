"""Checks on the waiting field's request bodies (CreateContact), with messages that name the field."""

from __future__ import annotations

import re
from typing import Any, Final

from gateway.services.errors import InvalidInput

NUMBER: Final = re.compile(r"\+?[0-9]{3,20}")


def text(body: dict[str, Any], key: str, limit: int, *, required: bool) -> str | None:
    """A string field of at most `limit` characters (None when absent and not required)."""
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"{key} is mandatory")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{key} must be a non-empty string")
    if len(value) > limit:
        raise InvalidInput(f"{key} is longer than {limit} characters")
    return value


def number(body: dict[str, Any], key: str) -> str:
    """A phone number field: 3 to 20 digits with an optional leading +."""
    value = body.get(key)
    if value is None:
        raise InvalidInput(f"{key} is mandatory")
    if not isinstance(value, str) or not NUMBER.fullmatch(value):
        raise InvalidInput(f"{key} must be 3 to 20 digits with an optional leading +")
    return value


def first_error(exc: ValueError) -> str:
    """The readable line of a settings validation error."""
    text = str(exc)
    for line in text.splitlines():
        if "must" in line:
            return line.strip().removeprefix("Value error, ")
    return "invalid settings"


def additional_map(value: object, *, max_entries: int, max_bytes: int) -> dict[str, str] | None:
    """CreateContact's `additional`: a small flat map of names to scalar values (as strings)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("additional must be an object of names to values")
    if len(value) > max_entries:
        raise InvalidInput(f"additional has more than {max_entries} entries")
    size = 0
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool) and item is not None:
            raise InvalidInput(f"additional.{key} must be a string, number, boolean or null")
        if not 0 < len(key) <= 64:
            raise InvalidInput("additional names must be 1 to 64 characters")
        shown = item if isinstance(item, str) or item is None else str(item)
        size += len(key) + len(shown or "")
        out[key] = shown  # type: ignore[assignment]
    if size > max_bytes:
        raise InvalidInput(f"additional is larger than {max_bytes} characters")
    return out
