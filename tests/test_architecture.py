"""The shape of the code: one-way imports, short modules, update rules only in suite/optimizers/.

The import graph is read from the source with :mod:`ast` (every ``import`` statement, also those
inside functions: a function-level import that dodges a cycle is still a cycle), each import
resolved to the package module it names (``from suite import store`` -> ``suite.store``;
``from suite.store import Store`` -> ``suite.store``). An import of a submodule is an edge to
that submodule only, not to its parent packages (a package's ``__init__`` that imports its own
submodules is not a cycle).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("suite", "tasks")
MAX_LINES = 600
RULE_NAMES = re.compile(
    r"^(scale_by_\w+|clip_by_\w+|apply_updates|sgd|momentum|nesterov|adam\w*|rmsprop|adagrad)$"
)
"""Names of update-rule transforms (as in suite/optimizers/updates.py and optax)."""


def module_files() -> dict[str, Path]:
    """``module name -> file`` for every module of the packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import in the file that names a package module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if _is_package(path) else name.rpartition(".")[0]

    def resolve(target: str) -> str | None:
        while target and target not in modules:  # `import suite.x.Name`-like: the module part
            target = target.rpartition(".")[0]
        return target or None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found = resolve(alias.name)
                if found:
                    yield found, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, up level - 1 steps
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found = sub if sub in modules else resolve(base)
                if found:
                    yield found, node.lineno
        elif (  # importlib.import_module("suite.x") with a literal name
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found = resolve(node.args[0].value)
            if found:
                yield found, node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    """``module -> {imported module: first line}`` over the packages (self-imports dropped)."""
    modules = module_files()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imports_of(name, path, modules):
            if target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def a_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """One cycle through the first module of a strongly connected component (BFS back to it)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in the component {component}")


def describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    files = module_files()
    steps = [
        f"{a} ({files[a].relative_to(ROOT)}:{graph[a][b]})"
        for a, b in zip(cycle, cycle[1:], strict=False)
    ]
    return " -> ".join([*steps, cycle[-1]])


def test_graph_reader_sees_every_kind_of_import(tmp_path):
    """The reader is not blind: function-level, relative and `from package import module`."""
    modules = {"suite": tmp_path / "__init__.py", "suite.a": tmp_path / "a.py"}
    modules |= {"suite.b": tmp_path / "b.py", "suite.c": tmp_path / "c.py"}
    source = (
        "from suite import b\n"
        "def f():\n    from .c import name\n"
        "import importlib\nimportlib.import_module('suite.b')\n"
    )
    modules["suite.a"].write_text(source)
    assert list(imports_of("suite.a", modules["suite.a"], modules)) == [
        ("suite.b", 1),
        ("suite.c", 3),
        ("suite.b", 5),
    ]
    graph = {"x": {"y": 1}, "y": {"z": 2}, "z": {"x": 3}, "w": {"x": 4}}
    assert strongly_connected(graph) == [["x", "y", "z"]]
    assert a_cycle(graph, ["x", "y", "z"]) == ["x", "y", "z", "x"]


def test_no_import_cycle():
    graph = import_graph()
    assert "suite.kinds" in graph and "tasks" in graph
    cycles = [describe(graph, a_cycle(graph, c)) for c in strongly_connected(graph)]
    assert not cycles, "import cycles (module (file:line of the import) -> ...):\n" + "\n".join(
        cycles
    )


def test_no_module_over_600_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in module_files().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: " + ", ".join(
        f"{p} ({n})" for p, n in sorted(long.items(), key=lambda x: -x[1])
    )


def _is_ema(node: ast.AST) -> bool:
    """``a * x + (1 - a) * y`` (either order): an exponential moving average, as in Adam's
    moments or momentum."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
        return False
    sides = [node.left, node.right]
    if not all(isinstance(s, ast.BinOp) and isinstance(s.op, ast.Mult) for s in sides):
        return False
    factors = [[ast.dump(s.left), ast.dump(s.right)] for s in sides]  # type: ignore[attr-defined]
    for i in (0, 1):
        other = sides[1 - i]
        for f in (other.left, other.right):  # type: ignore[attr-defined]
            if (
                isinstance(f, ast.BinOp)
                and isinstance(f.op, ast.Sub)
                and isinstance(f.left, ast.Constant)
                and f.left.value == 1
                and ast.dump(f.right) in factors[i]
            ):
                return True
    return False


def update_rules(path: Path) -> list[str]:
    """What in a file looks like an update rule: a scope defining both ``init`` and ``update``,
    a function or class named like a rule transform, a moving average of the Adam kind."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
            defined = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            if {"init", "update"} <= defined:
                where = getattr(node, "name", "module")
                found.append(f"{where} defines init + update (line {getattr(node, 'lineno', 1)})")
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and RULE_NAMES.match(node.name):
            found.append(f"{node.name} (line {node.lineno}) is named like an update rule")
        if _is_ema(node):
            found.append(f"a moving average b * x + (1 - b) * y (line {node.lineno})")  # type: ignore[attr-defined]
    return found


def test_update_rule_detector_can_fire(tmp_path):
    path = tmp_path / "rules.py"
    path.write_text(
        "def scale_by_adam(b1):\n"
        "    def init(p): return 0\n"
        "    def update(g, s): return g, s\n"
        "def step(m, g, b1):\n    return b1 * m + (1 - b1) * g\n"
    )
    found = update_rules(path)
    assert len(found) == 3, found
    path.write_text(
        "class Table:\n    def init(self): pass\n\ndef mix(a, b, w):\n    return a - w\n"
    )
    assert update_rules(path) == []


def test_update_rules_live_in_suite_optimizers():
    optimizers = ROOT / "suite" / "optimizers"
    outside = {
        str(path.relative_to(ROOT)): found
        for path in module_files().values()
        if optimizers not in path.parents and (found := update_rules(path))
    }
    assert not outside, "update rules outside suite/optimizers/: " + "; ".join(
        f"{p}: {', '.join(f)}" for p, f in sorted(outside.items())
    )
