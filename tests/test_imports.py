"""No import cycles among the modules of connectome_lib, not even through function-local imports.

Every module is parsed with ``ast`` (nothing is imported); each ``import`` / ``from ... import``
of a ``connectome_lib`` module anywhere in it (at the top, in a function, in a ``try``) is an
edge, except those under ``if TYPE_CHECKING:``, which never run. Importing ``a.b.c`` from outside
the package ``a.b`` also runs ``a/b/__init__.py`` first, so that is an edge too. A depth-first
search then reports every cycle it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "connectome_lib"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package (``__init__`` = the package)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that module ``name`` (file ``path``) imports, anywhere in its code."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod]
            # ``from pkg import sub`` imports the sub-module ``pkg.sub`` when there is one
            targets += [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
        for target in targets:
            while target and target not in modules:  # ``import a.b.C`` of a name: its module
                target = target.rpartition(".")[0]
            if not target or target == PACKAGE or name.startswith(target + "."):
                continue  # the root package, and the importer's own packages, are initialised already
            found.add(target)
            parent = target.rpartition(".")[0]
            while parent and parent != PACKAGE:  # a sub-package's __init__ runs first ...
                if not (name == parent or name.startswith(parent + ".")):  # ... unless we are inside it
                    found.add(parent)
                parent = parent.rpartition(".")[0]
    found.discard(name)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first search meets (one per back edge), each as ``[a, b, ..., a]``."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    stack: list[str] = []
    cycles: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()

    def visit(node: str) -> None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, BLACK) == GREY:
                cycle = stack[stack.index(nxt):]
                i = cycle.index(min(cycle))
                key = tuple(cycle[i:] + cycle[:i])
                if key not in seen:
                    seen.add(key)
                    cycles.append(list(key) + [key[0]])
            elif colour.get(nxt) == WHITE:
                visit(nxt)
        stack.pop()
        colour[node] = BLACK

    for node in sorted(graph):
        if colour[node] == WHITE:
            visit(node)
    return cycles


def test_the_cycle_finder_finds_cycles_and_only_cycles():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_import_graph_sees_function_local_and_relative_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import x\n")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .. import a\nfrom . import c\nif TYPE_CHECKING:\n    from ..d import y\n")
    (pkg / "sub" / "c.py").write_text("import connectome_lib.d\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\n")
    graph = import_graph(pkg)
    assert graph[f"{PACKAGE}.a"] == {f"{PACKAGE}.sub.b", f"{PACKAGE}.sub"}
    assert graph[f"{PACKAGE}.sub.b"] == {f"{PACKAGE}.a", f"{PACKAGE}.sub.c"}
    assert graph[f"{PACKAGE}.sub.c"] == {f"{PACKAGE}.d"}
    assert find_cycles(graph) == [[f"{PACKAGE}.a", f"{PACKAGE}.sub.b", f"{PACKAGE}.a"]]


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, f"{len(cycles)} import cycle(s) among {PACKAGE} modules:\n" + "\n".join(
        " -> ".join(c) for c in cycles)
