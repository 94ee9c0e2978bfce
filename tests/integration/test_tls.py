"""TLS (server.tls): HTTPS, WSS and the lean long-polling path on one port; HSTS only when asked; config errors.

A certificate is made per test (tests/certs.py, openssl); clients trust exactly that certificate, so the
hostname and chain are verified as a browser would. The CometD JavaScript client over wss:// and https is in
tests/interop/test_cometd_js_tls.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiocometd_ng import Client, ConnectionType

from gateway.app import LEAN
from tests.certs import Certificate, make_certificate
from tests.conftest import Gateway, StartGateway, free_port, gateway_command, listening, run_cli, write_config
from tests.integration.test_lean_http import HANDSHAKE, Conn, connect, post

HSTS = "Strict-Transport-Security"


@pytest.fixture
def cert(tmp_path: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1."""
    return make_certificate(tmp_path)


async def tls_conn(port: int, context: ssl.SSLContext) -> Conn:
    """A raw keep-alive connection over TLS (hostname 127.0.0.1 checked against the certificate)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    return Conn(reader, writer)


async def plain_request_is_refused(port: int, request: bytes) -> None:
    """Plain HTTP to the TLS port: no HTTP answer, the connection is closed (EOF or reset) within 5 s."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        try:
            data = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:
            data = b""
        # Whatever came back is a TLS alert at most, never an HTTP response in plaintext.
        assert not data.startswith(b"HTTP/"), data[:200]
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def port_of(gw: Gateway) -> int:
    """The port of an in-process gateway."""
    return int(gw.base.rsplit(":", 1)[1])


async def test_https_rest_lean_polling_and_wss_on_one_port(start_gateway: StartGateway, cert: Certificate) -> None:
    """One port: REST and the Bayeux endpoint over HTTPS (the lean path included, then aiohttp on the same TLS
    connection), WebSocket over wss://; no HSTS header by default."""
    gw = await start_gateway(extra={"server": {"tls": cert.tls_settings()}})
    assert gw.base.startswith("https://") and gw.ws_url.startswith("wss://")
    context = cert.client_context()
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.base + "/healthz", ssl=context) as resp:
            assert resp.status == 200 and HSTS not in resp.headers
        conn = await tls_conn(port_of(gw), context)
        try:
            await conn.send(post(HANDSHAKE))
            reply = await conn.response()
            assert reply.lean, reply.headers  # the lean path answered, behind TLS
            assert reply.json()[0]["successful"] is True and HSTS.lower() not in reply.headers
            client_id = reply.json()[0]["clientId"]
            await conn.send(post(connect(client_id)))
            first = await conn.response()
            assert first.lean and first.json()[0]["successful"] is True
            # A request outside the lean subset on the same TLS connection: handed to aiohttp mid-connection.
            await conn.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            handed = await conn.response()
            assert handed.status == 200 and not handed.lean
        finally:
            conn.writer.close()
        async with http.ws_connect(gw.ws_url, ssl=context) as ws:
            handshake = [{**HANDSHAKE[0], "supportedConnectionTypes": ["websocket"]}]
            await ws.send_str(json.dumps(handshake))
            [answer] = json.loads((await ws.receive(timeout=5)).data)
            assert answer["successful"] is True
            await ws.send_str(json.dumps([{**connect(answer["clientId"])[0], "connectionType": "websocket"}]))
            [connected] = json.loads((await ws.receive(timeout=5)).data)
            assert connected["channel"] == "/meta/connect" and connected["successful"] is True


async def test_aiocometd_over_https_long_polling_on_the_lean_path(
    start_gateway: StartGateway, cert: Certificate
) -> None:
    """A CometD client (aiocometd-ng, Content-Length POSTs like a browser's) over https long-polling: subscribes,
    receives what the server publishes; its requests were answered by the lean path behind TLS."""
    gw = await start_gateway(extra={"server": {"tls": cert.tls_settings()}})
    assert gw.app is not None
    lean = gw.app[LEAN]
    answered: list[None] = []
    started = lean.started
    lean.started = lambda: (answered.append(None), started())[1]  # type: ignore[method-assign]
    async with Client(gw.url, ConnectionType.LONG_POLLING, ssl=cert.client_context()) as client:
        await client.subscribe("/chat/tls")
        await gw.server.publish("/chat/tls", {"text": "over tls"})
        message = await asyncio.wait_for(client.receive(), 5)
        assert message == {"channel": "/chat/tls", "data": {"text": "over tls"}}
    assert len(answered) >= 3, len(answered)  # handshake, connects, subscribe, disconnect


async def test_plain_http_to_the_tls_port_is_refused_and_serving_goes_on(
    start_gateway: StartGateway, cert: Certificate
) -> None:
    """A plain-HTTP request (REST or a long-polling POST) gets its connection closed, no plaintext answer; later
    HTTPS requests are served as before."""
    gw = await start_gateway(extra={"server": {"tls": cert.tls_settings()}})
    port = port_of(gw)
    await plain_request_is_refused(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await plain_request_is_refused(port, post(HANDSHAKE))
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.base + "/healthz", ssl=cert.client_context()) as resp:
            assert resp.status == 200
        # An http:// client gets an error, not an answer.
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                await resp.read()
        async with http.post(gw.url, json=HANDSHAKE, ssl=cert.client_context()) as resp:
            assert resp.status == 200 and (await resp.json())[0]["successful"] is True


async def test_hsts_when_asked_on_every_path(start_gateway: StartGateway, cert: Certificate) -> None:
    """server.tls.hsts: true puts Strict-Transport-Security on aiohttp's answers (errors included) and the lean
    path's."""
    gw = await start_gateway(extra={"server": {"tls": cert.tls_settings(hsts=True)}})
    context = cert.client_context()
    async with aiohttp.ClientSession() as http:
        for path, status in (("/healthz", 200), ("/no/such/page", 404)):
            async with http.get(gw.base + path, ssl=context) as resp:
                assert resp.status == status and resp.headers[HSTS] == "max-age=31536000", path
    conn = await tls_conn(port_of(gw), context)
    try:
        await conn.send(post(HANDSHAKE))
        reply = await conn.response()
        assert reply.lean and reply.headers[HSTS.lower()] == "max-age=31536000"
    finally:
        conn.writer.close()


def test_tls_settings_are_both_or_neither_and_usable(tmp_path: Path, cert: Certificate) -> None:
    """check-config names server.tls and the reason: one file only, a missing file, files that are no key pair,
    an encrypted key, hsts without TLS. The good pair passes."""
    other = make_certificate(tmp_path, "other")
    cases = {
        "one of two": ({"certificate": str(cert.certificate)}, "both certificate and private_key"),
        "missing": (cert.tls_settings(private_key=str(tmp_path / "nope.key")), "no such file"),
        "not a pair": (cert.tls_settings(private_key=str(other.private_key)), "cannot use certificate"),
        "swapped": (cert.tls_settings(certificate=str(cert.private_key)), "cannot use certificate"),
        "hsts alone": ({"hsts": True}, "hsts needs TLS"),
    }
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(cert.private_key), "-aes256", "-passout", "pass:x", "-out", str(encrypted)],
        check=True,
        capture_output=True,
    )
    cases["encrypted key"] = (cert.tls_settings(private_key=str(encrypted)), "cannot use certificate")
    for label, (tls, reason) in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump({"server": {"tls": tls}}))
        result = run_cli("check-config", "--config", str(path))
        assert result.returncode == 2, (label, result.stdout)
        assert "server.tls" in result.stderr and reason in result.stderr, (label, result.stderr)
        assert "Traceback" not in result.stderr
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"server": {"tls": cert.tls_settings(hsts=True)}}))
    assert run_cli("check-config", "--config", str(good)).returncode == 0


async def test_the_gateway_command_serves_https(tmp_path: Path, cert: Certificate) -> None:
    """`gateway --config F` with server.tls on uvloop (the CLI's loop): logs an https:// URL, serves HTTPS and the
    lean path over TLS, refuses plain HTTP and keeps serving."""
    port = free_port()
    server = {"host": "127.0.0.1", "port": port, "event_loop": "uvloop", "tls": cert.tls_settings()}
    cfg = write_config(tmp_path / "tls.yaml", port, extra={"server": server})
    log_path = tmp_path / "gw.log"
    with log_path.open("wb") as log:
        proc = await gateway_command("--config", str(cfg), stdout=log, stderr=subprocess.STDOUT)
    try:
        await listening(port, proc)
        context = cert.client_context()
        conn = await tls_conn(port, context)
        try:
            await conn.send(post(HANDSHAKE))
            reply = await conn.response()
            assert reply.lean and reply.json()[0]["successful"] is True
        finally:
            conn.writer.close()
        await plain_request_is_refused(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        async with aiohttp.ClientSession() as http, http.get(f"https://127.0.0.1:{port}/readyz", ssl=context) as resp:
            assert resp.status == 200
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert [x["url"] for x in lines if x["event"] == "listening"] == [f"https://127.0.0.1:{port}"]
    assert not [x for x in lines if x.get("level") == "error"], lines
