"""The official CometD JavaScript client (Node) over TLS: wss:// and https long-polling (the lean path's).

The gateway serves a certificate made by the test; Node trusts it through NODE_EXTRA_CA_CERTS (no
NODE_TLS_REJECT_UNAUTHORIZED=0: the chain and the name 127.0.0.1 are verified). The basic scenario of
tests/interop/cometd_client.mjs: handshake, subscribe, publish, receive the message back, disconnect.

Node's XMLHttpRequest adapter sends its POST bodies chunked, which the lean long-polling path leaves to aiohttp
(over TLS as over plain HTTP); the lean path behind TLS, with the Content-Length POSTs browsers send, is
tests/integration/test_tls.py's (raw requests and aiocometd-ng).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.certs import make_certificate
from tests.conftest import StartGateway
from tests.interop.node_client import TRANSPORTS, messages, run_client


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cometd_js_over_tls(start_gateway: StartGateway, tmp_path: Path, transport: str) -> None:
    cert = make_certificate(tmp_path)
    gw = await start_gateway(extra={"server": {"tls": cert.tls_settings()}})
    # One https:// URL for both: the client's WebSocket transport turns it into wss:// itself.
    assert gw.url.startswith("https://")
    sessions: list[str] = []
    gw.hub.on_removed(lambda session, reason: sessions.append(f"{session.transport}:{reason}"))
    async with run_client(
        "cometd_client.mjs", gw.url, transport, env={"NODE_EXTRA_CA_CERTS": str(cert.certificate)}
    ) as client:
        code = await client.finish()
    assert code == 0, client.describe()
    assert client.of("unsuccessful") == [], client.describe()
    [handshake] = client.of("handshake")
    assert handshake["successful"] is True and handshake["transport"] == transport
    assert messages(client) == [{"channel": "/chat/demo", "data": {"text": "hello"}}], client.describe()
    # The session really ran over `transport` and ended with the client's disconnect.
    assert sessions == [f"{transport}:disconnect"]
