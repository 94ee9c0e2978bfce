"""The `gateway` command: config loading and overrides, JSON logs, graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import aiohttp

from tests.conftest import ROOT, free_port, gateway_command, listening, run_cli, write_config
from tests.integration.raw import RawHttp, RawWs


def test_bad_config_says_what_and_where(tmp_path: Path) -> None:
    """A wrong setting exits 2 naming the key and the problem, without a traceback."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("bayeux:\n  timeout_ms: -5\n  no_such_key: 1\nserver:\n  port: http\n")
    result = run_cli("--config", str(cfg))
    assert result.returncode == 2
    assert "bayeux.timeout_ms" in result.stderr and "bayeux.no_such_key" in result.stderr
    assert "server.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    """A config path that does not exist is reported plainly."""
    result = run_cli("--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_shipped_config_is_valid() -> None:
    """The config.yaml in the repository loads (every documented key is a real setting)."""
    from gateway.settings import load_settings

    settings = load_settings(ROOT / "config.yaml")
    assert settings.bayeux.path == "/api/v2/notifications"
    assert settings.server.port == 8080


async def test_serves_logs_json_and_shuts_down_gracefully(tmp_path: Path) -> None:
    """`python -m gateway --config F --port P` serves; SIGTERM answers held connects and closes sockets 1001."""
    port = free_port()
    cfg = write_config(tmp_path / "c.yaml", 1, timeout_ms=20000)  # --port must override server.port
    log_path = tmp_path / "gw.log"
    with log_path.open("wb") as log:
        proc = await gateway_command("--config", str(cfg), "--port", str(port), stdout=log, stderr=subprocess.STDOUT)
    try:
        await listening(port, proc)
        url = f"http://127.0.0.1:{port}/api/v2/notifications"
        async with aiohttp.ClientSession() as http:
            raw = RawHttp(url, http)
            await raw.open("/chat/x")
            ws = RawWs(await http.ws_connect(url.replace("http", "ws", 1)))
            await ws.open()
            held = asyncio.create_task(raw.connect())  # held for 20 s unless the shutdown answers it
            # A socket whose session just ended waits a moment before it closes: the stop comes within it.
            gone = RawWs(await http.ws_connect(url.replace("http", "ws", 1)))
            await gone.open()
            await gone.send({"channel": "/meta/disconnect", "clientId": gone.client_id, "id": "9"})
            await gone.recv_until(lambda m: m.get("channel") == "/meta/disconnect")
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            replies = await asyncio.wait_for(held, 5)
            assert replies[-1]["channel"] == "/meta/connect" and replies[-1]["successful"] is True
            closing = await ws.ws.receive(timeout=5)
            assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1001
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = log_path.read_text()
    # The storm bench's gateway wrote one such line per WebSocket at its stop: a delayed close left pending.
    assert "Task was destroyed" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert "listening" in events and "session_created" in events and "session_connected" in events
    created = [line for line in lines if line["event"] == "session_created"]
    assert {c["transport"] for c in created} == {"long-polling", "websocket"}
    assert all(len(c["client_id"]) == 40 for c in created)


def test_check_config_valid_and_invalid(tmp_path: Path) -> None:
    """`gateway check-config` says ok with a summary, or lists each problem with its key; exit 0 / 2."""
    ok = run_cli("check-config", str(ROOT / "config.yaml"))
    assert ok.returncode == 0 and ": ok:" in ok.stdout and "4 users" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("bayeux:\n  timeout_ms: -1\nusers:\n  - {name: x, role: boss, password: p}\n")
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert "bayeux.timeout_ms" in result.stderr and "users.0.role" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_takes_config_option(tmp_path: Path) -> None:
    """`check-config --config F` (and `gateway --config F check-config`) check F, as `check-config F` does."""
    shipped = str(ROOT / "config.yaml")
    for args in (("check-config", "--config", shipped), ("--config", shipped, "check-config")):
        ok = run_cli(*args)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith(f"{shipped}: ok:") and "4 users" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("bayeux:\n  timeout_ms: -1\n")
    result = run_cli("check-config", "--config", str(bad))
    assert result.returncode == 2 and "bayeux.timeout_ms" in result.stderr
    # Two different files: refused rather than one of them silently ignored.
    both = run_cli("check-config", shipped, "--config", str(bad))
    assert both.returncode == 2 and "once" in both.stderr
