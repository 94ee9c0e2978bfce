"""Authentication and channel authorization seam for Bayeux (identities arrive in a later issue)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gateway.bayeux.channel import covers, is_service

if TYPE_CHECKING:
    from gateway.bayeux.message import Message


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a session or request acts for."""

    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Denied:
    """A refused handshake; `reason` is logged, never sent (no detail of which credential was wrong)."""

    reason: str


class SecurityPolicy(Protocol):
    """Decides who may handshake, subscribe and publish."""

    async def authenticate(self, handshake: Message, headers: Mapping[str, str]) -> Identity | Denied | None:
        """Identity for a handshake (None = anonymous allowed), or Denied."""

    def can_subscribe(self, identity: Identity | None, pattern: str) -> bool:
        """May this identity subscribe to `pattern` (every channel it covers)?"""

    def can_publish(self, identity: Identity | None, channel: str) -> bool:
        """May this identity publish on `channel`?"""


class OpenPolicy:
    """Anonymous clients; subscribe and publish only where `bayeux.client_publish` allows."""

    def __init__(self, *, client_publish: tuple[str, ...]) -> None:
        self._client_publish = client_publish

    async def authenticate(self, handshake: Message, headers: Mapping[str, str]) -> Identity | Denied | None:
        """Everyone may handshake, anonymously."""
        return None

    def can_subscribe(self, identity: Identity | None, pattern: str) -> bool:
        """Client channels only; /service/** subscriptions are accepted (and record nothing)."""
        if is_service(pattern):
            return True
        return any(covers(pattern, allowed) for allowed in self._client_publish)

    def can_publish(self, identity: Identity | None, channel: str) -> bool:
        """Client channels and /service/**."""
        if is_service(channel):
            return True
        return any(covers(channel, allowed) for allowed in self._client_publish)
