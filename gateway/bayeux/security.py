"""Bayeux authentication and channel authorization (the SecurityPolicy seam and its implementations)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from gateway.identity import Identity
from gateway.wire.channel import covers, is_service

if TYPE_CHECKING:
    from gateway.logins import Logins
    from gateway.wire.message import Message

# Every identity reads its own notifications here (delivered per identity, never broadcast).
OWN_CHANNELS: Final = ("/v2/me/**", "/me/**")
# Supervisors and services also watch the dialler, the waiting field and the agents' state.
SUPERVISION_CHANNELS: Final = ("/v2/dialler/**", "/v2/waitfield/**", "/v2/agents/**")

__all__ = ["Denied", "GatewayPolicy", "Identity", "OpenPolicy", "SecurityPolicy"]


@dataclass(frozen=True, slots=True)
class Denied:
    """A refused handshake; `reason` is logged, never sent (no detail of which credential was wrong)."""

    reason: str


class SecurityPolicy(Protocol):
    """Decides who may handshake, subscribe and publish."""

    async def authenticate(
        self, handshake: Message, headers: Mapping[str, str], address: str | None = None
    ) -> Identity | Denied | None:
        """Identity for a handshake (None = anonymous allowed), or Denied; `address` is the client's, if known."""

    def can_subscribe(self, identity: Identity | None, pattern: str) -> bool:
        """May this identity subscribe to `pattern` (every channel it covers)?"""

    def can_publish(self, identity: Identity | None, channel: str) -> bool:
        """May this identity publish on `channel`?"""


class OpenPolicy:
    """Anonymous clients; subscribe and publish only where `bayeux.client_publish` allows."""

    def __init__(self, *, client_publish: tuple[str, ...]) -> None:
        self._client_publish = client_publish

    async def authenticate(
        self, handshake: Message, headers: Mapping[str, str], address: str | None = None
    ) -> Identity | Denied | None:
        """Everyone may handshake, anonymously."""
        return None

    def can_subscribe(self, identity: Identity | None, pattern: str) -> bool:
        """Client channels only; /service/** subscriptions are accepted (and record nothing)."""
        return is_service(pattern) or _covered(pattern, self._client_publish)

    def can_publish(self, identity: Identity | None, channel: str) -> bool:
        """Client channels and /service/**."""
        return is_service(channel) or _covered(channel, self._client_publish)


class GatewayPolicy:
    """Configured identities: credentials by Authorization header or `ext.authentication`."""

    def __init__(self, *, logins: Logins, client_publish: tuple[str, ...]) -> None:
        self._logins = logins
        self._client_publish = client_publish

    async def authenticate(
        self, handshake: Message, headers: Mapping[str, str], address: str | None = None
    ) -> Identity | Denied | None:
        """The identity of the transport's Authorization header, else of ext.authentication.

        Wrong credentials and a locked user or address are denied alike (logins.py).
        """
        header = headers.get("Authorization")
        if header:
            identity = await self._logins.authorization(header, address)
            return identity or Denied("bad Authorization header")
        ext = handshake.get("ext")
        if isinstance(ext, Mapping) and "authentication" in ext:
            return await self._logins.ext(ext, address) or Denied("bad ext.authentication")
        return Denied("no credentials")

    def can_subscribe(self, identity: Identity | None, pattern: str) -> bool:
        """Own channels for all; dialler, waiting field and agents for supervisors and services; client channels."""
        if identity is None:
            return False
        if is_service(pattern) or _covered(pattern, OWN_CHANNELS) or _covered(pattern, self._client_publish):
            return True
        return identity.role in ("supervisor", "service") and _covered(pattern, SUPERVISION_CHANNELS)

    def can_publish(self, identity: Identity | None, channel: str) -> bool:
        """/service/** and the client channels; server channels are the gateway's alone."""
        return identity is not None and (is_service(channel) or _covered(channel, self._client_publish))


def _covered(pattern: str, allowed: tuple[str, ...]) -> bool:
    return any(covers(pattern, a) for a in allowed)
