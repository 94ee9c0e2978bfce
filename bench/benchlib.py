"""What the benchmark scripts share: the server process under test, ports, percentiles, core load, profiles.

Imported by the scripts in this folder (run as `python bench/<script>.py`, so this folder is on sys.path).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import pstats
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on HOST right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def raise_nofile() -> int:
    """Raise the open-files limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pinned(cmd: Sequence[str], core: int | str) -> list[str]:
    """`cmd` pinned to one core with taskset (which execs it: same pid), when taskset is there."""
    return ["taskset", "-c", str(core), *cmd] if shutil.which("taskset") else list(cmd)


def pct(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def fmt(value: Any, spec: str = ".1f") -> str:
    """A figure for a table: '-' for None or NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return format(value, spec)


def core_times() -> list[tuple[float, float]]:
    """Per core: (total, idle) seconds since boot."""
    return [(sum(t), t.idle + getattr(t, "iowait", 0.0)) for t in psutil.cpu_times(percpu=True)]


def busy_pct(before: list[tuple[float, float]], after: list[tuple[float, float]]) -> list[float]:
    """Per core: % busy between two core_times() readings."""
    out = []
    for (t0, i0), (t1, i1) in zip(before, after, strict=True):
        total = t1 - t0
        out.append(100.0 * (total - (i1 - i0)) / total if total > 0 else 0.0)
    return out


def profile_top(path: Path, title: str, count: int = 25) -> list[str]:
    """The top `count` functions of a cProfile file, by own time and by cumulative time."""
    out: list[str] = []
    for key in ("tottime", "cumulative"):
        buffer = io.StringIO()
        pstats.Stats(str(path), stream=buffer).strip_dirs().sort_stats(key).print_stats(count)
        lines = buffer.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
        out += [f"-- {title}, top {count} by {key} --", *lines[start:]]
    return out


class ServerProcess:
    """A server under test, started from `cmd` and listening on `port`; its CPU and memory through psutil."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        port: int,
        stderr_path: Path,
        cwd: Path,
        env: dict[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGINT,
        listen_timeout: float = 60.0,
    ) -> None:
        self.port = port
        self.stderr_path = stderr_path
        self._stop_signal = stop_signal
        self._err = stderr_path.open("wb")
        self.proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=self._err)
        self.pid = self.proc.pid  # taskset execs the server: same pid
        self.ps = psutil.Process(self.pid)
        try:
            self._wait_listening(listen_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.stderr_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"server exited ({self.proc.returncode}) before listening: {tail}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=0.5):
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not listening on {self.port} after {timeout} s")

    def cpu_s(self) -> float:
        """CPU time so far (user + system, all threads)."""
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def rss(self) -> int:
        """Resident memory now (bytes)."""
        return int(self.ps.memory_info().rss)

    def affinity(self) -> list[int]:
        """The cores it may run on."""
        with contextlib.suppress(psutil.Error):
            return list(self.ps.cpu_affinity() or [])
        return []

    def kill(self) -> list[str]:
        """Kill it at once (SIGKILL: no shutdown at all, as a crash); the log lines."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        return ServerProcess.stop(self)

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Stop gracefully (SIGINT lets cProfile write its file), SIGKILL after `timeout`; the log lines."""
        if self.proc.poll() is None:
            self.proc.send_signal(self._stop_signal)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._err.close()
        return [line for line in self.stderr_path.read_text(errors="replace").splitlines() if line.strip()]


def child_env_with(path: Path) -> dict[str, str]:
    """This environment with `path` first on PYTHONPATH (the gateway of another checkout)."""
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(path), os.environ.get("PYTHONPATH")]))}
