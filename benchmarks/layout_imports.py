"""How legible the layout is, counted: imports of the package's own modules made inside
functions (a hidden dependency each), and cycles between its subpackages when those imports
count too (what `lint-imports` cannot see).

Run: .venv/bin/python benchmarks/layout_imports.py [PACKAGE_DIR] [--list]
Before issue 10 (commit 40576d4, `git worktree add /tmp/before 40576d4`, then
PACKAGE_DIR=/tmp/before/edgedistill): 223 in-function imports, one cycle of seven packages.
Target: 0 and no cycle (tests/test_layout.py keeps the first at 0).
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The modules an import statement names, relative imports resolved."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".")[: None if is_package else -1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def own_imports_inside_functions(tree: ast.AST, package: str = "edgedistill") -> list[int]:
    """Line numbers of imports of `package` made inside a function body (once each, however
    deeply the functions nest)."""
    lines: set[int] = set()
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                names = imported_modules(node, package, False)
                relative = isinstance(node, ast.ImportFrom) and node.level > 0
                if relative or any(n.split(".")[0] == package for n in names):
                    lines.add(node.lineno)
    return sorted(lines)


def subpackage_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one subpackage (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package_dir", nargs="?", default="edgedistill", type=Path)
    parser.add_argument("--list", action="store_true", help="print every in-function import")
    args = parser.parse_args()
    root = args.package_dir.resolve()
    package = root.name
    modules = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    inside: list[str] = []
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        inside += [f"{module}:{line}" for line in own_imports_inside_functions(tree, package)]
        top = ".".join(module.split(".")[:2])
        for node in ast.walk(tree):
            for name in imported_modules(node, module, path.name == "__init__.py"):
                if name in modules and name.split(".")[0] == package:
                    target = ".".join(name.split(".")[:2])
                    if target != top:
                        edges[top].add(target)
    print(f"{package}: {len(modules)} modules")
    print(f"imports of {package} modules inside functions: {len(inside)}")
    if args.list:
        print("\n".join(f"  {where}" for where in inside))
    cycles = subpackage_cycles(edges)
    print(f"subpackage cycles, in-function imports counted: {len(cycles)}")
    for group in cycles:
        print(f"  {' -> '.join(group)}")


if __name__ == "__main__":
    main()
