"""The models package and the runtime import each other in one direction only, and only at the top.

The graph is read from the source with ``ast``: every ``import edge...`` and
``from edge... import`` anywhere in a module (a function-level import of the
project counts like a top-level one, so a lazy import cannot hide a cycle).
Importing ``edge.a.b`` from outside the package ``edge.a`` runs ``edge/a/__init__.py``
first, so that import also depends on the package itself. Walked from
``edge.models.*`` and ``edge.runtime`` through every ``edge`` module they reach.
"""

from __future__ import annotations

import ast
from pathlib import Path

import edge

EDGE_DIR = Path(edge.__file__).parent
ROOTS = ("edge.runtime", "edge.models")


def module_file(name: str) -> Path | None:
    """The source file of the edge module ``name``, or None (not a module, or a compiled extension)."""
    base = EDGE_DIR.parent.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def is_module(name: str) -> bool:
    base = EDGE_DIR.parent.joinpath(*name.split("."))
    return module_file(name) is not None or any(base.parent.glob(f"{base.name}.*.so"))


def imported_modules(name: str) -> set[str]:
    """The edge modules ``name`` imports anywhere in its source, with the packages that run first."""
    path = module_file(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
    targets: set[str] = set()
    for target in found:
        if target != "edge" and not target.startswith("edge."):
            continue
        parts = target.split(".")
        for depth in range(2, len(parts) + 1):  # edge.a runs before edge.a.b, unless we are inside edge.a
            prefix = ".".join(parts[:depth])
            if depth == len(parts) or not (name == prefix or name.startswith(prefix + ".")):
                targets.add(prefix)
    return {target for target in targets if target != name and module_file(target) is not None}


def import_graph() -> dict[str, set[str]]:
    start = ["edge.runtime", "edge.models"]
    start += [f"edge.models.{p.stem}" for p in (EDGE_DIR / "models").glob("*.py") if p.stem != "__init__"]
    graph: dict[str, set[str]] = {}
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in graph:
            continue
        graph[name] = imported_modules(name)
        todo.extend(graph[name] - graph.keys())
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_models_and_runtime_import_graph_is_acyclic():
    graph = import_graph()
    assert "edge.models.loading" in graph["edge.runtime"]  # the walk sees real edges
    assert "edge.models" in graph["edge.runtime"]  # and the package that runs first
    ours = [c for c in cycles(graph) if any(m == "edge.runtime" or m.startswith("edge.models") for m in c)]
    assert ours == [], f"import cycles: {ours}"


def test_models_and_runtime_import_edge_only_at_their_top():
    """A function may import an optional dependency (onnx, NNCF, PyTorch) when called, never edge-har itself."""
    lazy = []
    for path in [EDGE_DIR / "runtime.py", *sorted((EDGE_DIR / "models").glob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if not node.level else ["edge"]
            else:
                continue
            if id(node) not in top and any(name == "edge" or name.startswith("edge.") for name in names):
                lazy.append(f"{path.relative_to(EDGE_DIR.parent)}:{node.lineno}")
    assert lazy == [], f"edge imported inside a function: {lazy}"


def test_the_checker_finds_a_lazy_cycle():
    graph = {"edge.models": {"edge.models.quantize"}, "edge.models.quantize": {"edge.runtime"},
             "edge.runtime": {"edge.models", "edge.models.loading"}, "edge.models.loading": set()}
    assert cycles(graph) == [["edge.models", "edge.models.quantize", "edge.runtime"]]


def test_the_runtime_imports_first_in_a_fresh_interpreter():
    import subprocess
    import sys

    for first in ("edge.runtime", "edge.models.quantize", "edge.models", "edge.models.loading"):
        done = subprocess.run([sys.executable, "-c", f"import {first}; import edge.models, edge.runtime"],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"import {first} first: {done.stderr.strip().splitlines()[-1:]}"
