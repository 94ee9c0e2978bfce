"""A PostgreSQL server of the tests' own: Debian's binaries, a cluster in a temporary folder, a free port.

The session fixture `postgres_server` finds `/usr/lib/postgresql/*/bin/initdb` (installing Debian's
`postgresql` package with apt-get when it is missing and we are root), runs `initdb` into a new folder,
starts `postgres` on 127.0.0.1 with its socket in that folder, and stops it and removes the folder at the
end. PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user the package
creates, and the server runs as that user. No test uses a server that happens to be running.

Without the binaries and no way to install them the tests that need it are skipped, saying why; under
CI=true they fail instead.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_counter = itertools.count(1)


def _binaries() -> Path | None:
    """The newest Debian PostgreSQL bin folder with initdb and postgres."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0,
    )
    found = [folder for folder in found if (folder / "postgres").exists()]
    return found[-1] if found else None


def _install() -> str | None:
    """apt-get install postgresql when root; the reason it cannot be done otherwise."""
    if os.geteuid() != 0:
        return "PostgreSQL binaries missing (/usr/lib/postgresql/*/bin) and not root: apt-get install postgresql"
    if shutil.which("apt-get") is None:
        return "PostgreSQL binaries missing and no apt-get to install them"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"apt-get install postgresql failed: {exc}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server: superuser `postgres`, trust authentication on 127.0.0.1."""

    port: int
    folder: Path
    databases: dict[str, str] = field(default_factory=dict)

    def url(self, database: str = "postgres") -> str:
        """The gateway's storage.url for `database`."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its storage.url."""
        import psycopg

        name = name or f"gw_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def database_for(self, key: str) -> str:
        """The same database for the same key (a test that reopens its store), a new one for a new key."""
        if key not in self.databases:
            self.databases[key] = self.create_database()
        return self.databases[key]


def _start(binaries: Path, port: int | None = None) -> tuple[PostgresServer, subprocess.Popen[bytes]]:
    folder = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
    data = folder / "data"
    as_root = os.geteuid() == 0
    user = "postgres" if as_root else None
    if as_root:
        shutil.chown(folder, "postgres", "postgres")
    log = folder / "server.log"
    subprocess.run(
        [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        user=user,
        timeout=120,
    )
    port = port or _free_port()
    with log.open("wb") as out:
        # A throwaway cluster: no fsync (the tests never crash the server), room for many test connections.
        settings = ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200"]
        proc = subprocess.Popen(
            [
                str(binaries / "postgres"),
                *("-D", str(data), "-k", str(folder), "-h", "127.0.0.1", "-p", str(port)),
                *(arg for setting in settings for arg in ("-c", setting)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            user=user,
        )
    server = PostgresServer(port=port, folder=folder)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            probe = subprocess.run(
                [str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True, timeout=10
            )
            if probe.returncode == 0:
                return server, proc
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"postgres not ready on port {port}: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def _stop(server: PostgresServer, proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients, no checkpoint wait
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(server.folder, ignore_errors=True)


def binaries_or_skip() -> Path:
    """The PostgreSQL bin folder (installed when missing and root); the test is skipped without it (failed
    under CI=true)."""
    binaries = _binaries()
    if binaries is None:
        reason = _install()
        binaries = _binaries()
        if binaries is None:
            message = reason or "apt-get install postgresql brought no /usr/lib/postgresql/*/bin/initdb"
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI needs PostgreSQL for the store tests: {message}")
            pytest.skip(message)
    return binaries


@contextlib.contextmanager
def server_on(binaries: Path, port: int) -> Iterator[PostgresServer]:
    """A server of its own on a given port (one started after the gateway that waits for it); stopped and
    removed on exit."""
    server, proc = _start(binaries, port)
    try:
        yield server
    finally:
        _stop(server, proc)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test session (see the module's docstring)."""
    server, proc = _start(binaries_or_skip())
    try:
        yield server
    finally:
        _stop(server, proc)
