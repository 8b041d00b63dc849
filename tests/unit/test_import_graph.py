"""The package has no import cycle, not even one hidden by a function-level import.

Every module of ``ser/`` is parsed with :mod:`ast`; every ``import ser.x`` and
``from ser.x import y`` anywhere in the file (module level, inside functions, under
``if TYPE_CHECKING``) is an edge to the module it names (``from ser.x import y`` names
the submodule ``ser.x.y`` when there is one, else ``ser.x``). Importing a submodule
also runs its package's ``__init__``; that implicit edge is not counted, only the
imports written in the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ser"

#: Known cycles, each a frozenset of the modules it joins, to be removed as they are fixed
#: (none today; an entry here must name the issue that will remove it).
ALLOWED_CYCLES: set[frozenset[str]] = set()


def module_names() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (``__init__`` as the package)."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:
                target = _resolve(f"{stem}.{alias.name}", modules)
                if target:
                    found.add(target)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One cycle through the component's first module, as a path that returns to it."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:  # breadth first: the shortest way back to ``start``
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError(f"no cycle in component {component}")


def test_graph_sees_function_level_imports():
    graph = import_graph()
    assert len(graph) > 50
    # imported inside functions only: the walk must reach function bodies
    assert "ser.predict.inference" in graph["ser.evaluation.metrics"]


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    (component,) = strongly_connected(graph)
    assert component == ["a", "b", "c"]
    assert a_cycle(graph, component) == ["a", "b", "c", "a"]


def test_no_import_cycle():
    graph = import_graph()
    cycles = []
    for component in strongly_connected(graph):
        if frozenset(component) in ALLOWED_CYCLES:
            continue
        cycles.append(" -> ".join(a_cycle(graph, component))
                      + (f"  (component: {', '.join(component)})" if len(component) > 2 else ""))
    assert not cycles, "import cycle(s) in ser/:\n" + "\n".join(cycles)


def test_every_allowed_cycle_still_exists():
    """An allow-list entry whose cycle is gone must be deleted (it would hide a new one)."""
    components = {frozenset(c) for c in strongly_connected(import_graph())}
    stale = [sorted(c) for c in ALLOWED_CYCLES if c not in components]
    assert not stale, f"remove from ALLOWED_CYCLES, these cycles are gone: {stale}"


def test_no_module_over_600_lines():
    """Issue 20: a module past 600 lines is split along a seam, not grown further."""
    long = {path.relative_to(ROOT).as_posix(): n for path in sorted(PACKAGE.rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > 600}
    assert not long, f"modules over 600 lines (split them): {long}"
