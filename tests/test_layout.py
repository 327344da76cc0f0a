"""The layout keeps its shape: imports run one way in the Python package and between the core's
modules, and no library module imports the command line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "bytepiece_rs"
CORE = ROOT / "rust" / "bytepiece" / "src"


def python_imports() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at any level (inside functions and
    ``TYPE_CHECKING`` blocks too)."""
    modules = {p.stem for p in PACKAGE.glob("*.py")} | {p.stem for p in PACKAGE.glob("*.pyi")}
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(a.name for a in node.names)
        graph[path.stem] = {m for m in found if m in modules and m != path.stem}
    return graph


def rust_uses() -> dict[str, set[str]]:
    """Core module -> the core modules its code (not its tests or comments) names."""
    modules = {p.stem for p in CORE.glob("*.rs")}
    graph: dict[str, set[str]] = {}
    for path in CORE.glob("*.rs"):
        text = path.read_text(encoding="utf-8").split("#[cfg(test)]\nmod tests")[0]
        code = "\n".join(line.split("//")[0] for line in text.splitlines())
        names = set(re.findall(r"crate::(\w+)", code))
        for group in re.findall(r"crate::\{([^}]*)\}", code):
            names.update(re.findall(r"\b(\w+)\b", group))
        graph[path.stem] = {m for m in names if m in modules and m != path.stem}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_python_package_has_no_import_cycle():
    graph = python_imports()
    assert graph["tokenizer"] >= {"convert", "show"}, graph["tokenizer"]  # the graph is read
    assert cycles(graph) == []


def test_no_library_module_imports_the_command_line():
    graph = python_imports()
    assert [m for m, deps in graph.items() if "cli" in deps and m != "__main__"] == []


def test_the_core_modules_use_each_other_one_way():
    graph = rust_uses()
    assert "lattice" in graph["encoder"]  # the graph is read
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
