"""/meta/subscribe and /meta/unsubscribe: the security policy's say, the hub's index, and replay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.bayeux import errors
from gateway.bayeux.replay import requested
from gateway.bayeux.validation import subscription_request
from gateway.wire.channel import is_meta, is_service
from gateway.wire.message import fail

if TYPE_CHECKING:
    from gateway.bayeux.replay import Replayer
    from gateway.bayeux.security import SecurityPolicy
    from gateway.hub.hub import Hub
    from gateway.hub.session import Session
    from gateway.wire.message import Message


class Subscriptions:
    """Answers subscribe and unsubscribe requests."""

    def __init__(self, *, hub: Hub, policy: SecurityPolicy, replayer: Replayer) -> None:
        self._hub = hub
        self._policy = policy
        self._replayer = replayer

    # /meta/subscribe  MUST: clientId, subscription (a channel, a pattern, or a list of them); MAY: ext.replay.
    # The reply echoes `subscription` exactly as sent; one failure fails the whole reply (and subscribes nothing).
    async def subscribe(self, message: Message, session: Session) -> tuple[Message, bool]:
        """The reply, and whether a replay was queued for the session."""
        reply, patterns = subscription_request(message)
        if patterns is None:
            return reply, False
        for pattern in patterns:
            if is_meta(pattern):
                return fail(reply, errors.SUBSCRIBE_META_DENIED), False
            if not self._policy.can_subscribe(session.identity, pattern):
                return fail(reply, errors.SUBSCRIBE_DENIED), False
        asked = requested(message) if session.replay is not None and self._replayer.enabled else None
        done: list[str] = []
        replaying = False
        baselines: dict[str, int] = {}
        for pattern in patterns:
            # /service/** subscriptions are accepted and record nothing: service channels never broadcast.
            if is_service(pattern):
                continue
            if asked is not None and pattern in asked:
                error, baseline = await self._replayer.subscribe(session, pattern, asked[pattern])
                if error is not None:
                    for earlier in done:
                        self._hub.unsubscribe(session, earlier)
                    return fail(reply, error), False
                replaying = True
                if baseline is not None:
                    baselines[pattern] = baseline
            else:
                self._hub.subscribe(session, pattern)
            done.append(pattern)
        reply["successful"] = True
        if baselines:
            reply.setdefault("ext", {})["replay"] = baselines
        return reply, replaying

    # /meta/unsubscribe  MUST: clientId, subscription. Mirrors subscribe.
    def unsubscribe(self, message: Message, session: Session) -> Message:
        """The reply; unsubscribing from what was never subscribed succeeds (Faye's behaviour)."""
        reply, patterns = subscription_request(message)
        if patterns is None:
            return reply
        if any(is_meta(pattern) for pattern in patterns):
            return fail(reply, errors.UNSUBSCRIBE_FAILED)
        for pattern in patterns:
            self._hub.unsubscribe(session, pattern)
        reply["successful"] = True
        return reply
