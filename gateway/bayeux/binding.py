"""Session binding: a clientId alone never proves who is asking (CometD's anti-hijacking rule, extended).

A session is bound to what it was handshaken with. A message naming its clientId is admitted when it comes

- on the WebSocket connection that handshook the session or was admitted for it since, or
- with the session's browser cookie (BAYEUX_BROWSER), over HTTP or on a WebSocket's upgrade request, or
- with credentials of the very identity that handshook it: the request's `Authorization` header (for
  WebSocket, the upgrade's) or `ext.authentication` in the message, as the handshake accepts them.

With `bayeux.require_browser_cookie` a long-polling session's cookie is the one proof over HTTP (as CometD's
default `trustClientSession=false`); credentials do not replace it there. Anonymous sessions (no identity:
`OpenPolicy`) have no credentials: a session handshaken over WebSocket belongs to its socket; one handshaken over
HTTP is bound, per transport, by first use: over HTTP to its cookie once the client returned it, over WebSocket
to the first socket that carried it. A client that keeps no cookie (aiohttp at an IP address) has only its
clientId over HTTP, as before. Anything else is `402::session_unknown` (with `reconnect: handshake` on connect),
as CometD answers a request from another browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import structlog

from gateway.identity import Identity

if TYPE_CHECKING:
    from gateway.bayeux.protocol import RequestContext
    from gateway.bayeux.security import SecurityPolicy
    from gateway.hub.session import Session
    from gateway.wire.message import Message

log = structlog.get_logger("gateway.bayeux")

_WEBSOCKET: Final = "websocket"


class SessionBinding:
    """Decides whether a request may act for a session it names by clientId."""

    def __init__(self, *, policy: SecurityPolicy, require_browser_cookie: bool) -> None:
        self._policy = policy
        self._require_cookie = require_browser_cookie

    def bound(self, session: Session, ctx: RequestContext) -> bool:
        """The cheap proofs: the session's own WebSocket, or its browser cookie."""
        if ctx.transport == _WEBSOCKET and session in ctx.sessions:
            return True
        browser = session.browser_id
        if browser is not None and ctx.browser_id == browser:
            session.cookie_returned = True
            return True
        proven = ctx.proven
        return proven is not None and session in proven

    async def admits(self, session: Session, message: Message, ctx: RequestContext) -> bool:
        """True if the request may act for `session` (called when `bound` is false)."""
        http = ctx.transport != _WEBSOCKET
        if session.identity is None:
            # Anonymous: no credentials. Trust on first use, per transport, of a session handshaken over HTTP:
            # its cookie once returned, its socket once one carried it (aiocometd and Faye handshake over HTTP,
            # then connect on a socket opened before the cookie existed); until then its clientId.
            handshaken_over_http = session.browser_id is not None
            first_use = not session.cookie_returned if http else not session.socket_bound
            ok = handshaken_over_http and first_use and not self._require_cookie
        elif http and self._require_cookie and session.browser_id is not None:
            ok = False
        else:
            ok = await self._same_identity(session.identity, message, ctx.headers)
        if ok:
            if ctx.proven is None:
                ctx.proven = set()
            ctx.proven.add(session)
        else:
            log.info(
                "session_binding_refused",
                client_id=session.client_id,
                transport=ctx.transport,
                channel=message.get("channel"),
            )
        return ok

    async def _same_identity(self, identity: Identity, message: Message, headers: Mapping[str, str]) -> bool:
        ext = message.get("ext")
        has_ext = isinstance(ext, Mapping) and "authentication" in ext
        if not has_ext and not headers.get("Authorization"):
            return False  # no credentials: skip the policy (and any password check) altogether
        try:
            presented = await self._policy.authenticate(message, headers)
        except Exception:
            log.exception("authenticate_failed", transport="binding")
            return False
        return isinstance(presented, Identity) and presented.name == identity.name


def without_credentials(message: Message) -> Message:
    """`message` without `ext.authentication` (a copy when it had one): credentials are never relayed."""
    ext = message.get("ext")
    if not isinstance(ext, Mapping) or "authentication" not in ext:
        return message
    rest = {k: v for k, v in ext.items() if k != "authentication"}
    copy = dict(message)
    if rest:
        copy["ext"] = rest
    else:
        del copy["ext"]
    return copy
