"""The import graph of the project's packages: no circles, and the one-way rules of DESIGN.md.

Every ``import`` in ``streams``, ``connectors`` and ``services`` counts, also those inside
functions, under ``TYPE_CHECKING`` and through ``importlib.import_module("name")``: a lazy import
still ties two modules together. Run it alone with ``python -m pytest tests/test_imports.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("streams", "connectors", "services")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path for package in PACKAGES for path in (REPO / package).rglob("*.py")
    }


def imported(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module ``path`` imports: project modules by name, others by their top package."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return {name if name in modules else name.split(".")[0] for name in found} - {own}


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {
        name: {target for target in imported(path, modules) if target in modules}
        for name, path in modules.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_the_project_modules() -> None:
    found = cycles(graph())
    assert found == [], "import circles: " + "; ".join(" ⇄ ".join(c) for c in found)


def test_streams_imports_neither_services_nor_connectors() -> None:
    modules = project_modules()
    wrong = {
        (name, target)
        for name, path in modules.items()
        if name.split(".")[0] == "streams"
        for target in imported(path, modules)
        if target.split(".")[0] in ("services", "connectors")
    }
    assert wrong == set()


def test_connectors_import_neither_faust_nor_services() -> None:
    modules = project_modules()
    wrong = {
        (name, target)
        for name, path in modules.items()
        if name.split(".")[0] == "connectors"
        for target in imported(path, modules)
        if target.split(".")[0] in ("faust", "mode", "services")
    }
    assert wrong == set()
