"""Measure the import structure of the project's own modules.

Every ``import``/``from … import`` counts, including the ones inside functions (they run too).
Prints the import circles (strongly connected groups of modules), the number of function-local
imports of project modules, and the modules over the size limit. ``tests/test_architecture.py``
uses the same functions to hold the layering rules.

    python scripts/import_graph.py            # summary
    python scripts/import_graph.py --verbose  # every circle and every local import
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "config", "accounts", "narrations", "invitations", "notifications", "providers", "people", "news", "roleplay", "batchjobs")
SIZE_LIMIT = 600


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported project module
    line: int
    local: bool  # inside a function or method


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            modules[_module_name(path)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The most specific project module ``name`` refers to (``a.b.C`` → ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_local = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    target = _resolve(alias.name, modules)
                    if target and target != module:
                        found.append(Import(module, target, child.lineno, local))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".")
                    if not is_package:
                        anchor = anchor[:-1]
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:
                    # ``from pkg import module`` names a module; ``from module import name`` a name.
                    target = _resolve(f"{base}.{alias.name}", modules) if base else None
                    if target and target != module:
                        found.append(Import(module, target, child.lineno, local))
            else:
                visit(child, child_local)

    visit(tree, False)
    return sorted(set(found), key=lambda i: (i.line, i.target))


def import_graph() -> tuple[dict[str, Path], list[Import]]:
    modules = project_modules()
    edges: list[Import] = []
    for module, path in modules.items():
        edges.extend(imports_of(module, path, modules))
    return modules, edges


def cycles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(10000)

    def strongconnect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                strongconnect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return sorted(groups, key=lambda g: (-len(g), g))


def line_counts(modules: dict[str, Path]) -> dict[str, int]:
    return {module: len(path.read_text().splitlines()) for module, path in modules.items()}


def main(argv: list[str]) -> int:
    verbose = "--verbose" in argv
    modules, edges = import_graph()
    groups = cycles(edges)
    local = [e for e in edges if e.local]
    sizes = line_counts(modules)
    big = sorted(((n, m) for m, n in sizes.items() if n > SIZE_LIMIT), reverse=True)
    print(f"modules: {len(modules)}  imports between them: {len(edges)}  function-local: {len(local)}")
    print(f"import circles: {len(groups)} ({sum(len(g) for g in groups)} modules in them)")
    for group in groups:
        print(f"  [{len(group)}] " + (", ".join(group) if verbose or len(group) <= 14 else ", ".join(group[:14]) + ", …"))
    print(f"modules over {SIZE_LIMIT} lines: {len(big)}")
    for n, m in big:
        print(f"  {n:5d} {m}")
    if verbose:
        for e in local:
            print(f"  local: {e.source}:{e.line} -> {e.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
