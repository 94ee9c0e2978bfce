"""nginx of the tests' own: Debian's `nginx` running docs/nginx.conf with the test's ports, in a temporary folder.

`NginxServer(folder, nodes).start()` renders the committed configuration (the three `server gwN.internal:8080`
lines become the test's node ports, `listen 80` a free port on 127.0.0.1) and runs
`nginx -p <folder> -c <folder>/nginx.conf -g 'daemon off;'`: pid, logs and temporary files in the folder, no
system nginx touched. Missing binary: `make test` and .ci/run install it (Debian's `nginx`) as root; otherwise
the tests that need it are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "docs" / "nginx.conf"
_SBIN = ("/usr/sbin", "/usr/local/sbin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _which() -> str | None:
    wanted = os.environ.get("NGINX", "nginx")
    return shutil.which(wanted) or shutil.which(wanted, path=os.pathsep.join(_SBIN))


def find_nginx() -> str:
    """The nginx binary (NGINX, PATH or /usr/sbin); installed with apt-get when missing and root."""
    found = _which()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"],
            check=False,
            env=env,
            capture_output=True,
        )
        found = _which()
    if found is None:
        reason = "nginx not found (apt-get install nginx; `make test` installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def render(conf: str, *, listen: int, nodes: list[int]) -> str:
    """docs/nginx.conf with the test's ports: `listen 80`, and 10.0.0.11-13:8080 (servers and the node map)."""
    assert len(nodes) == 3, "docs/nginx.conf names three nodes"
    out, n = re.subn(r"\blisten 80;", f"listen 127.0.0.1:{listen};", conf)
    assert n == 1, "docs/nginx.conf: no `listen 80;` to put the test's port in"
    for i, port in enumerate(nodes, start=1):
        out, plain = re.subn(rf"\b10\.0\.0\.1{i}:8080\b", f"127.0.0.1:{port}", out)
        out, escaped = re.subn(rf"10\\\.0\\\.0\\\.1{i}:8080", rf"127\\.0\\.0\\.1:{port}", out)
        assert plain == 4 and escaped == 1, f"docs/nginx.conf: node 10.0.0.1{i}:8080 not where expected"
    return out


class NginxServer:
    """One nginx process in `folder` in front of `nodes` (ports on 127.0.0.1)."""

    def __init__(self, folder: Path, nodes: list[int], binary: str | None = None) -> None:
        self.binary = binary or find_nginx()
        self.folder = folder
        self.nodes = nodes
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        """Its access log (log_format gateway: ... status upstream_addr request_time)."""
        return self.folder / "logs" / "access.log"

    def start(self) -> None:
        """Render the configuration, start nginx and wait until it accepts connections."""
        for sub in ("logs", "temp"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        # As root the workers run as `nobody`: they write request bodies and buffers to temp/.
        (self.folder / "temp").chmod(0o777)
        conf = self.folder / "nginx.conf"
        conf.write_text(render(CONF.read_text(), listen=self.port, nodes=self.nodes))
        args = [self.binary, "-p", str(self.folder), "-c", str(conf), "-g", "daemon off;"]
        check = subprocess.run([*args[:-2], "-t"], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the rendered docs/nginx.conf: {check.stderr}")
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(f"nginx did not start: {self.error_log()[-2000:]}") from None
                time.sleep(0.05)

    def error_log(self) -> str:
        """What nginx logged as errors (for assertion messages)."""
        path = self.folder / "logs" / "error.log"
        return path.read_text() if path.exists() else ""

    def upstreams(self) -> list[tuple[str, str, str]]:
        """(request line, status, upstream addresses) of every logged request, in order."""
        out = []
        if self.access_log.exists():
            for line in self.access_log.read_text().splitlines():
                found = re.search(r'"([^"]*)" (\d{3}) (.*) [\d.]+$', line)
                if found:
                    out.append((found.group(1), found.group(2), found.group(3)))
        return out

    def stop(self) -> None:
        """SIGTERM (fast shutdown: held long-polls and WebSockets are cut), then SIGKILL."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
