"""Run a Node client script (tests/interop/*.js, *.mjs) as a subprocess and read its JSON-lines output.

The scripts print one JSON object per observed step, read JSON commands on stdin (agent scenario) and
exit by themselves on a deadline. The subprocess runs under the test's event loop, so an in-process
gateway keeps serving while the client talks to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
NODE_MODULES = TESTS / "node_modules"
# Packages pinned in tests/package.json that the scripts import.
REQUIRED_PACKAGES = ("cometd", "cometd-nodejs-client", "faye", "ws")
TRANSPORTS = ["long-polling", "websocket"]

Event = dict[str, Any]


def require_node() -> str:
    """The node executable; fail the test (never skip) when Node or the npm packages are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js 20) is not on PATH: the interop tests need it", pytrace=False)
    missing = [name for name in REQUIRED_PACKAGES if not (NODE_MODULES / name / "package.json").is_file()]
    if missing:
        pytest.fail(
            f"npm packages missing from {NODE_MODULES}: {', '.join(missing)}. "
            "Run `npm ci --prefix tests` from the repository root first.",
            pytrace=False,
        )
    return node


class NodeClient:
    """One running client script: its events so far, a way to wait for more, and stdin commands."""

    def __init__(self, proc: asyncio.subprocess.Process, label: str) -> None:
        self.proc = proc
        self.label = label
        self.events: list[Event] = []
        self.noise: list[str] = []
        self._stderr: list[str] = []
        self._changed = asyncio.Condition()
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                self.noise.append(line)
                continue
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace").rstrip())

    def of(self, kind: str) -> list[Event]:
        """Every event of one kind, in order."""
        return [e for e in self.events if e.get("event") == kind]

    def describe(self) -> str:
        """What the client printed, for assertion messages."""
        lines = [json.dumps(e) for e in self.events]
        text = "\n".join(lines[-60:])
        if self.noise:
            text += "\n-- non-JSON stdout --\n" + "\n".join(self.noise[-20:])
        if self._stderr:
            text += "\n-- stderr --\n" + "\n".join(self._stderr[-40:])
        return f"[{self.label}] exit={self.proc.returncode}\n{text}"

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 8.0) -> Event:
        """The first event (already seen or coming) that matches; fails the test on timeout or exit."""

        def found() -> Event | None:
            return next((e for e in self.events if predicate(e)), None)

        async def wait() -> Event:
            async with self._changed:
                while True:
                    event = found()
                    if event is not None:
                        return event
                    if self._readers[0].done():
                        raise AssertionError("client exited before the expected event")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except (TimeoutError, AssertionError) as exc:
            pytest.fail(f"expected event not seen ({exc or 'timeout'}):\n{self.describe()}", pytrace=False)

    async def wait_event(self, kind: str, timeout: float = 8.0, **match: Any) -> Event:
        """The first event of `kind` whose fields equal `match`."""
        return await self.wait_for(
            lambda e: e.get("event") == kind and all(e.get(k) == v for k, v in match.items()), timeout
        )

    async def send(self, command: dict[str, Any]) -> None:
        """Write one JSON command line to the script's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()

    async def finish(self, timeout: float = 10.0) -> int:
        """Close stdin, wait for the script to exit on its own, collect its output; return the exit code."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.wait_closed()
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            pytest.fail(f"client did not exit within {timeout}s:\n{self.describe()}", pytrace=False)
        await asyncio.gather(*self._readers)
        return code

    async def close(self) -> None:
        """Make sure the process is gone and the pipes are drained (called on every exit path)."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        await asyncio.gather(*self._readers, return_exceptions=True)


@contextlib.asynccontextmanager
async def run_client(
    script: str, url: str, transport: str, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[NodeClient]:
    """Start `node <script> <url> <transport> *args` with pipes; kill it on the way out if still running.

    `env` adds to (or overrides) this process's environment, e.g. NODE_EXTRA_CA_CERTS for a test certificate.
    """
    node = require_node()
    proc = await asyncio.create_subprocess_exec(
        node,
        str(HERE / script),
        url,
        transport,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=TESTS,
        env={**os.environ, **env} if env else None,
    )
    client = NodeClient(proc, f"{script} {transport} {' '.join(args)}".strip())
    try:
        yield client
    finally:
        await client.close()


def messages(client: NodeClient) -> list[dict[str, Any]]:
    """The application messages a client received: channel and data (and ext when present)."""
    return [{k: v for k, v in e.items() if k in ("channel", "data", "ext")} for e in client.of("message")]
