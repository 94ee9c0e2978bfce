"""The import graph of `gateway/`: packages point one way, aiohttp stays at the edge, app.py wires the concretes."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

GATEWAY: Final = Path(__file__).resolve().parents[2] / "gateway"

# The HTTP edge (README, Project layout): the transports, the REST dialects, the desktop site, the app that
# builds them and its lifecycle contexts, the ops routes, the CLI, and log.py (it tames what aiohttp logs).
EDGE: Final = frozenset({"transport", "api", "desktop", "app", "lifecycle", "ops", "__main__", "log"})
# Never aiohttp (README: these are pure Python, testable without a server).
CORE: Final = frozenset({"bayeux", "hub", "broker", "services", "events", "store", "wire"})
# A concrete implementation of a seam, by its name; only the wiring may import one from another package.
CONCRETE: Final = re.compile(r"(Memory|Sql|Redis|Postgres)[A-Z]\w*")
WIRING: Final = frozenset({"app", "__main__"})


@dataclass(frozen=True, slots=True)
class Import:
    """One runtime import: the importing module, the module imported and the names taken from it."""

    source: str
    target: str
    names: tuple[str, ...]


def _module(path: Path) -> str:
    parts = list(path.relative_to(GATEWAY.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Nodes inside `if TYPE_CHECKING:` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skipped.update(id(n) for n in ast.walk(child))
    return skipped


@cache
def imports() -> tuple[Import, ...]:
    """Every import in `gateway/` that runs (module level or inside functions; not `if TYPE_CHECKING:` ones:
    those never execute, so they cannot form an import cycle, and the point is the runtime graph)."""
    found: list[Import] = []
    for path in sorted(GATEWAY.rglob("*.py")):
        source = _module(path)
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                found.extend(Import(source, alias.name, ()) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{source}: relative import (the checks below assume absolute ones)"
                assert node.module is not None
                found.append(Import(source, node.module, tuple(alias.name for alias in node.names)))
    return tuple(found)


def part(module: str) -> str:
    """The subpackage (or top-level module) of `gateway` a module belongs to."""
    return module.split(".")[1]


def package_graph() -> dict[str, set[str]]:
    """Subpackage -> the other subpackages it imports at run time."""
    graph: dict[str, set[str]] = {}
    for imp in imports():
        if imp.target.startswith("gateway.") and part(imp.source) != part(imp.target):
            graph.setdefault(part(imp.source), set()).add(part(imp.target))
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    """The checker itself: a cycle is reported as its path, an acyclic graph as None."""
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}}) is None


def test_the_graph_is_read() -> None:
    """The parse sees the imports everyone knows about (a broken walk would make every check pass)."""
    graph = package_graph()
    assert {"bayeux", "hub", "broker", "wire"} <= graph["transport"] | graph["bayeux"] | graph["hub"]
    assert "store" in graph["services"] and "wire" in graph["broker"]
    assert any(i.source == "gateway.app" and i.target == "aiohttp" for i in imports())


def test_no_cycle_between_packages() -> None:
    """Subpackages of gateway import each other one way only."""
    assert cycle(package_graph()) is None


def test_no_import_cycle_between_modules() -> None:
    """No module imports (at run time) a module that imports it back, directly or not."""
    graph: dict[str, set[str]] = {}
    for imp in imports():
        if imp.target.startswith("gateway."):
            target = imp.target
            # `from gateway.store import sql_log` imports the module gateway.store.sql_log.
            for name in imp.names:
                if (GATEWAY.parent / (target + "." + name).replace(".", "/")).with_suffix(".py").exists():
                    graph.setdefault(imp.source, set()).add(target + "." + name)
            graph.setdefault(imp.source, set()).add(target)
    # A package's __init__ runs before its modules: importing gateway.x.y imports gateway.x, which is no edge
    # back unless gateway/x/__init__.py imports something itself (they are docstrings only; checked here).
    for init in GATEWAY.rglob("__init__.py"):
        assert _module(init) not in graph, f"{init} imports; the cycle check assumes it does not"
    assert cycle(graph) is None


def test_aiohttp_only_at_the_edge() -> None:
    """aiohttp is imported by the HTTP edge only, never by the protocol, the hub, the domain or the store."""
    users = {imp.source for imp in imports() if imp.target.split(".")[0] == "aiohttp"}
    assert {part(m) for m in users} <= EDGE, sorted(m for m in users if part(m) not in EDGE)
    assert not {m for m in users if part(m) in CORE}


def test_services_never_import_bayeux() -> None:
    """Domain services speak in events and notifications; the Bayeux protocol is not theirs to call."""
    assert not [i for i in imports() if part(i.source) == "services" and i.target.startswith("gateway.bayeux")]


def test_only_the_wiring_imports_concrete_implementations() -> None:
    """MemoryBroker, SqlContactStore, ... are named outside their own package by app.py (and the CLI) alone."""
    crossings = [
        (imp.source, name)
        for imp in imports()
        if imp.target.startswith("gateway.")
        for name in imp.names
        if CONCRETE.fullmatch(name) and part(imp.source) != part(imp.target)
    ]
    assert crossings, "app.py imports the concrete classes; finding none means the check is broken"
    assert {part(source) for source, _ in crossings} <= WIRING, crossings
