"""Checks on a client message's fields, answered in-band with the error table's strings."""

from __future__ import annotations

from typing import Final

from gateway.bayeux import errors
from gateway.wire.channel import ChannelError, validate_name, validate_pattern
from gateway.wire.message import Message, MetaChannel, fail, reply_to, valid_id

_META: Final = frozenset(MetaChannel)


def check_fields(message: Message) -> Message | None:
    """The in-band error for a message whose channel or id is unusable, else None."""
    channel = message.get("channel")
    msg_id = message.get("id")
    # The common case, checked without building anything: a meta channel and a short string id.
    if channel in _META and (
        (msg_id is None and "id" not in message)
        or (type(msg_id) is str and len(msg_id) <= 64 and msg_id.isascii() and msg_id.isalnum())
    ):
        return None
    reply: Message = {}
    if "id" in message:
        if not valid_id(message["id"]):
            reply["id"] = message["id"] if isinstance(message["id"], str | int) else None
            if isinstance(channel, str):
                reply["channel"] = channel
            return fail(reply, errors.MESSAGE_ID_INVALID)
        reply["id"] = message["id"]
    if channel is None:
        return fail(reply, errors.CHANNEL_MISSING)
    try:
        validate_name(channel)
    except ChannelError:
        if isinstance(channel, str):
            reply["channel"] = channel
        return fail(reply, errors.CHANNEL_INVALID)
    return None


def subscription_request(message: Message) -> tuple[Message, list[str] | None]:
    """The reply started (echoing `subscription`) and the patterns; None patterns when the reply failed."""
    reply = reply_to(message)
    if "subscription" in message:
        reply["subscription"] = message["subscription"]
    subscription = message.get("subscription")
    if subscription is None:
        return fail(reply, errors.SUBSCRIPTION_MISSING), None
    patterns = _subscriptions(subscription)
    if patterns is None:
        return fail(reply, errors.SUBSCRIPTION_INVALID), None
    return reply, patterns


def _subscriptions(value: object) -> list[str] | None:
    """The subscription patterns of a subscribe request, or None if any is invalid."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        return None
    try:
        return [validate_pattern(item) for item in items]
    except ChannelError:
        return None
