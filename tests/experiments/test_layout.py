"""The rooms of experiments/ import one way, hold no import circle, and docs/ARCHITECTURE.md names every module."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "experiments"
#: Which rooms each room may import (besides itself). Front doors first; metrics/ imports no other room.
ALLOWED = {
    "(package)": {"api", "metrics", "runs"},
    "api": {"cli", "analysis", "metrics", "runs"},
    "cli": {"runs", "analysis", "media", "bench", "ci", "metrics"},
    "analysis": {"runs", "media", "metrics"},
    "media": {"runs", "metrics"},
    "bench": {"runs", "media", "metrics"},
    "ci": {"runs", "metrics"},
    "runs": {"metrics"},
    "metrics": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(("taxbench", "experiments", *parts))


def room(module: str) -> str:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else "(package)"


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("taxbench.experiments"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    graph[name].add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in modules)
    return graph


def test_rooms_import_one_way():
    wrong = [
        f"{source} imports {target}"
        for source, targets in import_graph().items()
        for target in targets
        if room(target) != room(source) and room(target) not in ALLOWED[room(source)]
    ]
    assert not wrong, wrong


def test_no_import_circle_inside_experiments():
    graph = import_graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [])
            assert cycle is None, " -> ".join(cycle)


def test_architecture_page_names_every_module():
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    missing = [
        str(p.relative_to(PACKAGE))
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.name not in ("__init__.py", "__main__.py") and p.name not in page
    ]
    assert not missing, f"docs/ARCHITECTURE.md does not mention {missing}"
