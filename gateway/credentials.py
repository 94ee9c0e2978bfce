"""Credential hashes: scrypt for passwords, SHA-256 for high-entropy tokens; constant-time checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

# scrypt cost: 2**14 iterations, r=8, p=1 (about 16 MiB and tens of ms): OWASP's minimum for scrypt.
_LOG2_N: Final = 14
_R: Final = 8
_P: Final = 1
_DUMMY_SALT: Final = bytes(16)


def hash_password(password: str) -> str:
    """`scrypt$<log2 n>$<r>$<p>$<salt>$<key>` for a password (slow on purpose)."""
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, _LOG2_N, _R, _P)
    return "$".join(["scrypt", str(_LOG2_N), str(_R), str(_P), _b64(salt), _b64(key)])


def hash_token(token: str) -> str:
    """`sha256$<hex>` for a bearer token: tokens are long random strings, a fast hash is enough."""
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


def verify_password(password: str, stored: str) -> bool:
    """True if `password` matches a `hash_password` result; a malformed `stored` costs as much as a wrong password."""
    try:
        kind, log2n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            raise ValueError(kind)
        computed = _scrypt(password, _unb64(salt), int(log2n), int(r), int(p))
        expected = _unb64(key)
    except (ValueError, TypeError):
        waste_password_check(password)
        return False
    return hmac.compare_digest(computed, expected)


def waste_password_check(password: str) -> None:
    """One scrypt at `hash_password`'s parameters, for nothing: an unknown user costs what a known one does."""
    _scrypt(password, _DUMMY_SALT, _LOG2_N, _R, _P)


def verify_token(token: str, stored: str) -> bool:
    """True if `token` matches a `hash_token` result."""
    return hmac.compare_digest(hash_token(token), stored)


def _scrypt(password: str, salt: bytes, log2n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**log2n, r=r, p=p, dklen=32, maxmem=2**26)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
