"""A node started before its engines (cluster.wait_for_engines_s): `python -m gateway` processes whose Redis or
PostgreSQL is started late on its port. While it waits nothing listens and each attempt is one warning; once
every engine answers it listens, is ready and serves; when the wait is spent it exits 1 with the one line a
node without the wait prints."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.conftest import free_port, gateway_command, run_cli, write_config
from tests.integration.raw import RawHttp
from tests.servers.postgres import binaries_or_skip, server_on
from tests.servers.redis import RedisServer, find_redis_server

Logged = list[dict[str, Any]]


def logged(path: Path) -> Logged:
    """The JSON log lines the node wrote so far."""
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [orjson.loads(line) for line in lines if line.startswith(b"{")]


def waits(path: Path, engine: str) -> Logged:
    """The node's `engine_unavailable` warnings for `engine`."""
    return [e for e in logged(path) if e.get("event") == "engine_unavailable" and e.get("engine") == engine]


async def until(predicate: Callable[[], bool], proc: asyncio.subprocess.Process, timeout: float = 20.0) -> None:
    """Poll `predicate` until true (fail at once if the node exits meanwhile)."""
    end = time.monotonic() + timeout
    while not predicate():
        if proc.returncode is not None:
            raise AssertionError(f"the node exited with {proc.returncode}")
        if time.monotonic() > end:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


def listens(path: Path) -> bool:
    """True once the node logged `listening`."""
    return any(e.get("event") == "listening" for e in logged(path))


async def refused(port: int) -> bool:
    """True when nothing accepts connections on `port`."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


@contextlib.asynccontextmanager
async def node(config: Path, log: Path, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A gateway process writing its log to `log`; stopped (SIGTERM, then SIGKILL) on exit."""
    with log.open("wb") as out:
        proc = await gateway_command("--config", str(config), *args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def ready(base: str) -> dict[str, Any]:
    """/readyz's body, once it says 200."""
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            async with http.get(base + "/readyz") as resp:
                body: dict[str, Any] = await resp.json()
                if resp.status == 200:
                    return body
            await asyncio.sleep(0.1)
    raise AssertionError(f"not ready: {body}")


async def test_a_node_waits_for_a_redis_started_late(tmp_path: Path) -> None:
    """Redis not there yet: the node retries (one warning per attempt, naming the broker), its port refuses
    connections; Redis started on that port: the node listens, /readyz 200 with every Redis probe, and a
    Bayeux client handshakes."""
    redis = RedisServer(find_redis_server(), tmp_path)  # its port picked, nothing listening on it yet
    http_port = free_port()
    extra = {
        "broker": {"url": redis.url},
        "correlation": {"backend": "redis"},
        "cluster": {"wait_for_engines_s": 60},
    }
    config = write_config(tmp_path / "gw.yaml", http_port, extra=extra)
    log = tmp_path / "gw.log"
    try:
        async with node(config, log) as proc:
            await until(lambda: len(waits(log, "broker")) >= 2, proc)
            assert proc.returncode is None and await refused(http_port)
            await asyncio.to_thread(redis.start)
            await until(lambda: listens(log), proc, timeout=60)
            body = await ready(f"http://127.0.0.1:{http_port}")
            assert body == {
                "status": "ready",
                "store": True,
                "broker": True,
                "correlation": True,
                "presence": True,
                "web_sessions": True,
            }
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                reply = await RawHttp(f"http://127.0.0.1:{http_port}/api/v2/notifications", http).handshake()
                assert reply["successful"] is True
    finally:
        redis.stop()
    events = logged(log)
    warned = waits(log, "broker")
    assert [e["attempt"] for e in warned] == list(range(1, len(warned) + 1))
    assert all(f"127.0.0.1:{redis.port}" in e["error"] and e["level"] == "warning" for e in warned)
    assert [e["retry_in_s"] for e in warned[:3]] == [0.5, 1.0, 2.0][: len(warned)]
    names = [e["event"] for e in events]
    # Nothing listened before the broker answered; the start names the engines.
    assert names.index("engine_available") < names.index("listening")
    started = next(e for e in events if e["event"] == "engines")
    assert started["broker"] == started["presence"] == started["web_sessions"] == f"redis ({redis.url})"
    assert started["wait_for_engines_s"] == 60


async def test_the_wait_spent_exits_1_with_one_line(tmp_path: Path) -> None:
    """No Redis within --wait-for-engines: exit 1 and the one line a node without the wait prints, naming
    broker.url without its password; the warnings before it mask it too; nothing ever listened."""
    dead = free_port()
    http_port = free_port()
    url = f"redis://:secret@127.0.0.1:{dead}/0"
    config = write_config(tmp_path / "gw.yaml", http_port, extra={"broker": {"url": url}})
    log = tmp_path / "gw.log"
    began = time.monotonic()
    async with node(config, log, "--wait-for-engines", "1.2") as proc:
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 1 and time.monotonic() - began >= 1.2
    text = log.read_text()
    plain = [line for line in text.splitlines() if not line.startswith("{")]
    assert len(plain) == 1 and plain[0].startswith(
        f"gateway: cannot start: broker.url redis://:***@127.0.0.1:{dead}/0: cannot reach Redis:"
    ), text
    assert "secret" not in text and "Traceback" not in text
    warned = waits(log, "broker")
    # At 0 s, 0.5 s (and 1.5 s would be next): the attempt at 1.2 s is the last, its error the one raised.
    assert [e["attempt"] for e in warned] == [1, 2], warned
    assert [e["event"] for e in logged(log)][-1] == "redis_unavailable"
    assert "listening" not in text


async def test_sigterm_while_waiting_stops_the_node(tmp_path: Path) -> None:
    """A node waiting for its Redis stops at SIGTERM without finishing the wait: exit 0, `stopped`."""
    extra = {"broker": {"url": f"redis://127.0.0.1:{free_port()}/0"}, "cluster": {"wait_for_engines_s": 60}}
    config = write_config(tmp_path / "gw.yaml", free_port(), extra=extra)
    log = tmp_path / "gw.log"
    async with node(config, log) as proc:
        await until(lambda: len(waits(log, "broker")) >= 1, proc)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert [e["event"] for e in logged(log)][-1] == "stopped"


async def test_a_node_waits_for_a_postgresql_started_late(tmp_path: Path) -> None:
    """PostgreSQL not there yet: the node retries the store, its port refuses connections; PostgreSQL started
    on that port: the node migrates its database, listens and is ready."""
    binaries = binaries_or_skip()
    pg_port, http_port = free_port(), free_port()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/postgres"
    extra = {"storage": {"url": url}, "cluster": {"wait_for_engines_s": 90}}
    config = write_config(tmp_path / "gw.yaml", http_port, extra=extra)
    log = tmp_path / "gw.log"
    with contextlib.ExitStack() as servers:
        async with node(config, log) as proc:
            await until(lambda: len(waits(log, "store")) >= 1, proc)
            assert proc.returncode is None and await refused(http_port)
            await asyncio.to_thread(servers.enter_context, server_on(binaries, pg_port))
            await until(lambda: listens(log), proc, timeout=60)
            body = await ready(f"http://127.0.0.1:{http_port}")
            assert body == {"status": "ready", "store": True, "broker": True}
    warned = waits(log, "store")
    assert all(f"store postgresql at {url}" in e["error"] for e in warned)
    assert any(e["event"] == "store_opened" for e in logged(log))


async def test_the_wait_spent_on_postgresql_exits_1(tmp_path: Path) -> None:
    """No PostgreSQL within the wait: exit 1 with the store's line (password masked), `store_unavailable`."""
    dead = free_port()
    url = f"postgresql+psycopg://postgres:pw@127.0.0.1:{dead}/gateway"
    extra = {"storage": {"url": url}, "cluster": {"wait_for_engines_s": 0.6}}
    config = write_config(tmp_path / "gw.yaml", free_port(), extra=extra)
    log = tmp_path / "gw.log"
    async with node(config, log) as proc:
        code = await asyncio.wait_for(proc.wait(), 30)
    text = log.read_text()
    plain = [line for line in text.splitlines() if not line.startswith("{")]
    assert code == 1 and len(plain) == 1, text
    assert plain[0].startswith(
        f"gateway: cannot start: store postgresql at postgresql+psycopg://postgres:***@127.0.0.1:{dead}/gateway: "
    ), text
    assert "pw@" not in text and "Traceback" not in text
    warned = waits(log, "store")
    # At 0 s and, unless the first attempt was slow, at 0.5 s; the attempt at 0.6 s is the last (its error raised).
    assert 1 <= len(warned) <= 2 and all("pw@" not in e["error"] for e in warned)
    assert [e["event"] for e in logged(log)][-1] == "store_unavailable"


def test_a_negative_wait_is_refused(tmp_path: Path) -> None:
    """--wait-for-engines -1: exit 2 naming the key, before anything starts."""
    done = run_cli("--config", str(write_config(tmp_path / "gw.yaml", free_port())), "--wait-for-engines", "-1")
    assert done.returncode == 2
    assert "cluster.wait_for_engines_s: Input should be greater than or equal to 0" in done.stderr
