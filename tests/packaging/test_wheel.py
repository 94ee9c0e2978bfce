"""The wheel: `python -m build`, then plain `pip install` into a new venv, serves the desktop without npm.

Builds the sdist and the wheel as a user would (`python -m build`: the wheel is built from the sdist), installs
the wheel into a fresh virtual environment (its dependencies from the package index), and runs that venv's
`gateway` from an empty temporary directory with a copy of the shipped config.yaml: nothing of the checkout
(no desktop/node_modules, no source tree on sys.path) is within its reach. Then fetches /desktop/ and every
script, module and stylesheet it references, transitively (the CometD client's modules included).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest

from tests.conftest import ROOT, free_port, listening

pytestmark = pytest.mark.timeout(600)

# Relative references of a page (scripts, stylesheets, icons) and of an ES module (static imports and re-exports).
_HTML_REF = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)
_JS_REF = re.compile(r"""(?:\bimport|\bexport)\b[^;'"]*?(?:\bfrom\s*)?["'](\.{1,2}/[^"']+)["']""")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}


def _clean_env() -> dict[str, str]:
    """The environment without anything that would point Python at the checkout or the test venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build` of the checkout (sdist, then the wheel from it) into a temporary directory."""
    if not (ROOT / "desktop" / "node_modules" / "cometd" / "cometd.js").is_file():
        pytest.fail("desktop/node_modules/cometd is missing: run `npm ci --prefix desktop` first", pytrace=False)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [built] = out.glob("*.whl")
    print(f"wheel {built.name}: {built.stat().st_size} bytes")
    return built


def test_wheel_carries_the_desktop_and_the_cometd_client(wheel: Path) -> None:
    """The page's own files and every module of the npm package's client (with its licence) are in the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    static = {p.name for p in (ROOT / "gateway" / "desktop" / "static").iterdir() if p.is_file()}
    assert {f"gateway/desktop/static/{n}" for n in static} <= names
    npm = ROOT / "desktop" / "node_modules" / "cometd"
    modules = {p.name for p in npm.glob("*.js")}
    assert "cometd.js" in modules
    vendored = {n.removeprefix("gateway/desktop/vendor/cometd/") for n in names if "/vendor/cometd/" in n}
    assert vendored == modules | {"LICENSE", "package.json"}
    # The copy is the npm package's, byte for byte.
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("gateway/desktop/vendor/cometd/Client.js") == (npm / "Client.js").read_bytes()
    # Nothing of the checkout's tooling or tests.
    assert not [n for n in names if n.startswith(("tests/", "desktop/", "bench/")) or "node_modules" in n]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the wheel installed by plain `pip install`; returns its bin directory."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True, clear=True)
    bin_dir = env_dir / "bin"
    result = subprocess.run(
        [str(bin_dir / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=400,
        env=_clean_env(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # From a directory outside the checkout, `gateway` is the venv's copy, not the source tree.
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import gateway.desktop.site as s; print(s.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path_factory.mktemp("elsewhere"),
        env=_clean_env(),
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout
    return bin_dir


async def _fetch_tree(http: aiohttp.ClientSession, page: str) -> dict[str, bytes]:
    """GET `page` and, transitively, every relative script, module, stylesheet and icon it references."""
    seen: dict[str, bytes] = {}
    todo = [page]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        async with http.get(url) as resp:
            body = await resp.read()
            assert resp.status == 200, f"{url}: {resp.status} {body[:300]!r}"
            path = urlsplit(str(resp.url)).path
            suffix = ".html" if path.endswith("/") or "." not in path.rsplit("/", 1)[-1] else Path(path).suffix
            assert resp.content_type == _TYPES[suffix], f"{url}: {resp.content_type}"
            base = str(resp.url)
        seen[url] = body
        text = body.decode()
        refs = _HTML_REF.findall(text) if suffix == ".html" else _JS_REF.findall(text) if suffix == ".js" else []
        todo.extend(urljoin(base, ref) for ref in refs if not urlsplit(ref).scheme)
    return seen


async def test_installed_wheel_serves_the_desktop_without_npm(installed: Path, tmp_path: Path) -> None:
    """The venv's `gateway`, run from an empty directory with the shipped config.yaml, serves the desktop."""
    work = tmp_path / "run"
    work.mkdir()
    # The shipped config names desktop.cometd_dir: desktop/node_modules/cometd, which does not exist here: the
    # packaged client must be used.
    shutil.copy(ROOT / "config.yaml", work / "config.yaml")
    port = free_port()
    log_path = work / "gateway.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(installed / "gateway"),
            "--config",
            "config.yaml",
            "--port",
            str(port),
            cwd=work,
            env=_clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        await listening(port, proc)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            files = await _fetch_tree(http, base + "/desktop/")
            paths = {urlsplit(u).path for u in files}
            assert {"/desktop/", "/desktop/desktop.js", "/desktop/desktop.css"} <= paths, paths
            assert {"/desktop/vendor/cometd/cometd.js", "/desktop/vendor/cometd/Client.js"} <= paths, paths
            assert b"AckExtension" in files[base + "/desktop/vendor/cometd/cometd.js"]
            # The supervisor wallboard (issue 14) is added on another branch: fetch it and its scripts when this
            # build has the route; until it lands /desktop/supervisor answers 404 and this part is left out.
            async with http.get(base + "/desktop/supervisor") as resp:
                supervisor = resp.status != 404
            if supervisor:
                wallboard = await _fetch_tree(http, base + "/desktop/supervisor")
                assert any(urlsplit(u).path.endswith(".js") for u in wallboard), wallboard.keys()
            async with http.get(base + "/readyz") as resp:
                assert resp.status == 200
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)
    text = log_path.read_text()
    assert "desktop_packaged_cometd" in text and "desktop_unavailable" not in text, text[-2000:]
