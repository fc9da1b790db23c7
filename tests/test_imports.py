"""The library's modules import one another without a circle, function-level imports included.

The graph is built from the source (no module is imported): an edge runs from a module to every
wwmdistill module an `import` or `from ... import` anywhere in it names, relative imports
resolved; `from package import name` counts the submodule `package.name` when there is one.
Importing `a.b.c` runs the packages `a` and `a.b` first, so they count too, except the importer's
own packages, which are already running when it is.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "wwmdistill"


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _packages(name: str) -> set[str]:
    """The packages above module `name`."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` (at `path`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    running = _packages(name) | {name}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # `from a.b import name` names a module or something in one: the deepest module.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target:
                found |= ({target} | _packages(target)) - running
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through every strongly connected component bigger than a module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A readable circle inside one component: start, ..., start."""
    members = set(component)
    start = component[0]
    seen = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return [*seen[node], start]
            if nxt not in seen:
                seen[nxt] = [*seen[node], nxt]
                queue.append(nxt)
    return component


def test_graph_sees_every_module() -> None:
    graph = import_graph()
    assert "wwmdistill.arrow_io" in graph
    assert "wwmdistill.arrow_io" in graph["wwmdistill.corpus"]
    # a submodule import runs its package; a package's own modules do not count it
    assert "wwmdistill.artifacts" in graph["wwmdistill.corpus"]
    assert "wwmdistill.artifacts" not in graph["wwmdistill.artifacts.segmented"]


def test_cycle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _path(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_import_cycles() -> None:
    graph = import_graph()
    circles = [" -> ".join(_path(graph, c)) for c in _cycles(graph)]
    assert not circles, "import circles:\n" + "\n".join(circles)
