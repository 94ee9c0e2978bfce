"""Build hook: the wheel (and the sdist) carry the official CometD JavaScript client the agent desktop serves.

Everything else about the package is in pyproject.toml. The client is taken at build time from the npm
package installed by `npm ci --prefix desktop` (desktop/node_modules/cometd) and written into the build as
gateway/desktop/vendor/cometd/, so `pip install <wheel>` gives a gateway whose /desktop/ works without npm.
Nothing is copied into the working tree (the path is gitignored all the same): the sdist gets the files in
its archive, and a wheel built from that sdist (what `python -m build` does) takes them from there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
NPM_PACKAGE = HERE / "desktop" / "node_modules" / "cometd"
VENDOR = Path("gateway", "desktop", "vendor", "cometd")  # inside the package (see gateway/desktop/site.py)
# Besides the ES modules the desktop serves: the licence (Apache-2.0 asks for it) and the version.
KEPT = frozenset(("LICENSE", "package.json"))


def _source() -> Path:
    """The CometD client to package: the npm package, or the copy an sdist carries; exits when neither is there."""
    for candidate in (NPM_PACKAGE, HERE / VENDOR):
        if (candidate / "cometd.js").is_file():
            return candidate
    raise SystemExit(
        "error: the wheel carries the official CometD JavaScript client, taken from the npm package at build "
        f"time, and it is not installed at {NPM_PACKAGE}. Run `npm ci --prefix desktop` in the repository "
        "first, then build again."
    )


def _copy_client(target: Path) -> None:
    source = _source()
    if target.exists():
        shutil.rmtree(target)  # no stale modules of an older client version
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and (path.suffix == ".js" or path.name in KEPT):
            shutil.copy2(path, target / path.name)


class BuildPy(build_py):
    """build_py, then the CometD client into the build (not for editable installs: a checkout uses npm's)."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            _copy_client(Path(self.build_lib) / VENDOR)


class Sdist(sdist):
    """sdist whose archive carries the CometD client, so that a wheel built from it has it too."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        _copy_client(Path(base_dir) / VENDOR)


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
