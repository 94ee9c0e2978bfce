"""The replay extension's wire shape (Salesforce Streaming API): replayIds in delivered events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

# Subscribe values that are not an id: only new events, or every retained one.
NEW_ONLY: Final = -1
ALL_RETAINED: Final = -2


def invalid_replay_id(replay_id: object) -> str:
    """The error a subscribe gets for an id that is not retained (Salesforce's words, exactly)."""
    return (
        f"400::The replayId {replay_id} you provided was invalid. Please provide a valid ID, -2 to replay "
        "all events, or -1 to replay only new events."
    )


def created_date(moment: datetime) -> str:
    """`createdDate` as Salesforce writes it: ISO 8601, milliseconds, Z (the moment is UTC, naive)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def with_replay_id(message: dict[str, Any], replay_id: int, created: str | None) -> dict[str, Any]:
    """The event as a session that opted in gets it: `data.event = {createdDate, replayId}` added.

    Data that is not an object cannot carry it and is delivered as it is; a `data.event` object of the
    publisher's own keeps its keys beside the two; a `data.event` that is not an object is the publisher's
    and is never overwritten (that message carries no replayId).
    """
    data = message.get("data")
    if not isinstance(data, dict):
        return message
    own = data.get("event")
    if own is not None and not isinstance(own, dict):
        return message
    event: dict[str, Any] = {**(own or {}), "replayId": replay_id}
    if created is not None:
        event["createdDate"] = created
    tagged = dict(message)
    tagged["data"] = {**data, "event": event}
    return tagged


def replayed(message: dict[str, Any]) -> dict[str, Any]:
    """Mark an event delivered from the log rather than live (`ext.replayed: true`), e.g. to show it as missed."""
    marked = dict(message)
    ext = marked.get("ext")
    marked["ext"] = {**ext, "replayed": True} if isinstance(ext, dict) else {"replayed": True}
    return marked
