"""TLS for the listening site: one server SSLContext from `server.tls`, and the HSTS header when asked for.

HTTPS and WSS share the port with everything else; the lean long-polling path (lean.py) sits behind the same
TLS layer, so it reads and writes plaintext as on a plain socket. A client speaking plain HTTP to the port
fails the TLS handshake and its connection is closed (nothing is answered in plaintext); the server goes on.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from gateway.settings import TlsSettings

# One year, for this host only: subdomains may be other servers, and preload is the operator's decision.
HSTS: Final = ("Strict-Transport-Security", "max-age=31536000")


def server_context(tls: TlsSettings) -> ssl.SSLContext | None:
    """The server's SSLContext (TLS 1.2 and newer, HTTP/1.1 by ALPN), or None when TLS is off."""
    if tls.certificate is None or tls.private_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.certificate, tls.private_key, password=lambda: "")
    context.set_alpn_protocols(["http/1.1"])
    return context


def hsts_headers(tls: TlsSettings) -> tuple[tuple[str, str], ...]:
    """The headers every response carries for `tls`: Strict-Transport-Security when `hsts` is on."""
    return (HSTS,) if tls.enabled and tls.hsts else ()


def add_headers(headers: tuple[tuple[str, str], ...]) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An on_response_prepare hook adding `headers` to every response aiohttp sends (errors and 101s included)."""

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers:
            response.headers.setdefault(name, value)

    return add
