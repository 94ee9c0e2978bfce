"""A Redis server of our own for the tests: Debian's `redis-server` on a free port in a temporary folder.

Session-scoped (`redis_server`), flushed before each test that asks for `redis_url`, stopped at the end. It
never touches a Redis that happens to run on the machine (6379): the port is picked free, persistence is
off (`--save "" --appendonly no`) and its files go to the temporary folder. Missing binary: `make test` and
.ci/run install it (Debian's `redis-server`) as root; otherwise the Redis tests are skipped, except under
CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

_RUNNING: list[RedisServer] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_redis_server() -> str:
    """The redis-server binary (REDIS_SERVER or PATH); installed with apt-get when missing and root."""
    wanted = os.environ.get("REDIS_SERVER", "redis-server")
    found = shutil.which(wanted)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=False, env=env, capture_output=True)
        found = shutil.which(wanted)
    if found is None:
        reason = "redis-server not found (apt-get install redis-server; `make test` installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


class RedisServer:
    """One redis-server process; `restart()` keeps its port (clients reconnect to the same URL)."""

    def __init__(self, binary: str, folder: Path, *, persistent: bool = False) -> None:
        self.binary = binary
        self.folder = folder
        # Persistent: an append-only file synced every second (Redis's advice for durability); restarts keep
        # what it holds, a kill -9 may lose its last second.
        self.persistent = persistent
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:<port>/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A blocking client (for the fixture's and the tests' own commands)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        aof = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persistent else ["--appendonly", "no"]
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *aof]
        args += ["--dir", str(self.folder), "--logfile", str(self.folder / "redis.log"), "--daemonize", "no"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while True:
            try:
                with self.client() as c:
                    c.ping()
                return
            except redis.ConnectionError:
                if self._proc.poll() is not None or time.monotonic() > end:
                    log = (self.folder / "redis.log").read_text() if (self.folder / "redis.log").exists() else ""
                    raise RuntimeError(f"redis-server did not start on {self.port}: {log[-2000:]}") from None
                time.sleep(0.02)

    def alive(self) -> bool:
        """True while the process runs."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def kill9(self) -> None:
        """SIGKILL the server (no shutdown: what its append-only file had not synced is lost)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(10)

    def restart(self) -> None:
        """Stop and start again on the same port (everything in it is gone unless persistent)."""
        self.stop()
        self.start()

    def flush(self) -> None:
        """Empty every database."""
        with self.client() as c:
            c.flushall()


def running() -> RedisServer:
    """The session's server (the `redis_server` fixture started it)."""
    assert _RUNNING, "request the redis_url fixture first"
    return _RUNNING[-1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for the whole session, on a free port, without persistence; stopped at the end."""
    server = RedisServer(find_redis_server(), tmp_path_factory.mktemp("redis"))
    server.start()
    _RUNNING.append(server)
    try:
        yield server
    finally:
        _RUNNING.remove(server)
        server.stop()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own with an append-only file (everysec), on a free port; stopped after."""
    server = RedisServer(find_redis_server(), tmp_path / "redis-aof", persistent=True)
    server.folder.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, flushed (and started again if a test left it stopped): its URL."""
    if not redis_server.alive():
        redis_server.start()
    redis_server.flush()
    return redis_server.url
