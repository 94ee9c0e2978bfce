"""Identities from config.yaml and the checks of their credentials (HTTP Basic, Bearer, Bayeux ext)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from gateway.credentials import hash_token, verify_password, waste_password_check

if TYPE_CHECKING:
    from gateway.settings import UserSettings

Role = Literal["agent", "supervisor", "service"]

# Verified Basic credentials are remembered (by a keyed digest, never in clear) so that an agent
# desktop's every request does not pay for scrypt.
_CACHE_SIZE: Final = 4096


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a session or request acts for."""

    name: str
    role: Role
    device: str | None = None
    skills: tuple[str, ...] = ()
    clients: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class _Account:
    identity: Identity
    password: str | None
    password_hash: str | None
    token_hash: str | None


class Directory:
    """The configured identities; answers 'whose credentials are these?'."""

    def __init__(self, accounts: Iterable[_Account]) -> None:
        self._by_name = {a.identity.name: a for a in accounts}
        self._by_token = {a.token_hash: a.identity for a in self._by_name.values() if a.token_hash}
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._pepper = hashlib.sha256(repr(sorted(self._by_name)).encode()).digest()

    @classmethod
    def from_settings(cls, users: Iterable[UserSettings]) -> Directory:
        """Build from `settings.users`."""
        return cls(
            _Account(
                identity=Identity(
                    name=u.name,
                    role=u.role,
                    device=str(u.device) if u.device else None,
                    skills=tuple(u.skills),
                    clients=frozenset(u.clients),
                ),
                password=u.password,
                password_hash=u.password_hash,
                token_hash=hash_token(u.token) if u.token else u.token_hash,
            )
            for u in users
        )

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def get(self, name: str) -> Identity | None:
        """The identity called `name`, if configured."""
        account = self._by_name.get(name)
        return account.identity if account else None

    def cached(self, name: str, password: str) -> Identity | None:
        """The identity if `password` is right for `name` and that is known without scrypt; else None (ask `verify`).

        A configured plain password is compared at once; a hashed one is found in the verified cache.
        """
        account = self._by_name.get(name)
        if account is None:
            return None
        if account.password is not None:
            ok = hmac.compare_digest(account.password.encode(), password.encode())
            return account.identity if ok else None
        if account.password_hash is None:
            return None
        key = self._key(name, password)
        if self._verified.get(key) != account.password_hash:
            return None
        self._verified.move_to_end(key)
        return account.identity

    def verify(self, name: str, password: str) -> Identity | None:
        """The identity if `password` is right for `name`: one scrypt whatever the name (thread-safe, slow on purpose).

        An unknown name, a user without a password, a wrong plain password and a malformed hash all cost one
        scrypt at `hash_password`'s parameters, as a configured hash does: the time does not tell names apart.
        """
        account = self._by_name.get(name)
        if account is not None and account.password_hash is not None:
            return account.identity if verify_password(password, account.password_hash) else None
        waste_password_check(password)
        if account is not None and account.password is not None:
            return account.identity if hmac.compare_digest(account.password.encode(), password.encode()) else None
        return None

    def remember(self, name: str, password: str) -> None:
        """Remember a `verify`-ed password of a hashed account (event loop only: the cache is not thread-safe)."""
        account = self._by_name.get(name)
        if account is None or account.password_hash is None:
            return
        self._verified[self._key(name, password)] = account.password_hash
        if len(self._verified) > _CACHE_SIZE:
            self._verified.popitem(last=False)

    def _key(self, name: str, password: str) -> bytes:
        return hmac.new(self._pepper, f"{name}\0{password}".encode(), hashlib.sha256).digest()

    def by_token(self, token: str) -> Identity | None:
        """The identity holding this bearer token."""
        return self._by_token.get(hash_token(token))

    def service_from_bearer(self, header: str | None) -> Identity | None:
        """A service's or supervisor's identity from an `Authorization: Bearer …` header (the REST callers)."""
        credentials = parse_authorization(header)
        if not isinstance(credentials, Bearer):
            return None
        identity = self.by_token(credentials.token)
        return identity if identity is not None and identity.role in ("service", "supervisor") else None


@dataclass(frozen=True, slots=True)
class Bearer:
    """`Authorization: Bearer <token>`, or Bayeux `ext.authentication` {token}."""

    token: str


@dataclass(frozen=True, slots=True)
class Password:
    """`Authorization: Basic …`, or Bayeux `ext.authentication` {user, password}."""

    user: str
    password: str


def parse_authorization(header: str | None) -> Bearer | Password | None:
    """The credentials of an `Authorization: Basic …` or `Bearer …` header; None if absent or malformed."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return Bearer(value)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, sep, password = decoded.partition(":")
        return Password(name, password) if sep else None
    return None


def parse_ext(ext: Mapping[str, object]) -> Bearer | Password | None:
    """The credentials of a Bayeux `ext.authentication` = {user, password} or {token}."""
    auth = ext.get("authentication")
    if not isinstance(auth, Mapping):
        return None
    token, user, password = auth.get("token"), auth.get("user"), auth.get("password")
    if isinstance(token, str) and token:
        return Bearer(token)
    if isinstance(user, str) and isinstance(password, str):
        return Password(user, password)
    return None
