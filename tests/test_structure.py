"""The shape of the package: no import cycle (function-level imports
included), no private name imported across modules, modules and functions
of a readable size, and no pointer to a file the repository does not hold."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "jaxkd"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60
# Packages jaxkd runs without (extras), imported where they are used; and the
# package's own lazy load_tagger, which keeps `import jaxkd.x` cheap.
OPTIONAL = {"datasets", "tensorboardX", "huggingface_hub"}
LAZY = {("jaxkd/__init__.py", "jaxkd.labeling")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imported(node, modules: dict) -> list[str]:
    """The jaxkd modules an import statement executes (a ``from`` import of a
    name that is a module counts as that module)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif node.level == 0 and node.module:
        names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names]
    else:
        names = []
    return [n for n in names if n in modules]


def import_graph() -> dict[str, set[str]]:
    """Module -> the jaxkd modules it imports anywhere in its text, with the
    packages above each (whose ``__init__`` runs first). The root package is
    left out as a target: its one import (``load_tagger``) runs on attribute
    access, and no module imports it."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(node, modules):
                    parts = target.split(".")
                    edges.update(".".join(parts[:k]) for k in range(2, len(parts) + 1))
        edges.discard(name)
        graph[name] = {e for e in edges if e != "jaxkd" and not name.startswith(e + ".")} if name != "jaxkd" else edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_of_jaxkd_imports_in_a_circle():
    graph = import_graph()
    assert "jaxkd.training.loop" in graph and "jaxkd.training.teacher" in graph["jaxkd.training.loop"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_imports_are_at_module_top_except_optional_packages():
    inside = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    for name in [a.name for a in sub.names] if isinstance(sub, ast.Import) else [sub.module]:
                        where = (str(path.relative_to(REPO)), name)
                        if name.split(".")[0] not in OPTIONAL and where not in LAZY:
                            inside.append(f"{where[0]}:{sub.lineno} imports {name} inside {node.name}")
    assert not inside, inside


def test_no_private_name_crosses_a_module():
    crossings = []
    for path in [*PACKAGE.rglob("*.py"), *(REPO / "benchmarks").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0] in ("jaxkd", "benchmarks")
            ):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
                crossings += [f"{path.relative_to(REPO)}: {node.module}.{n}" for n in private]
    assert not crossings, crossings


def test_modules_and_functions_are_of_a_readable_size():
    long = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(REPO)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, long


def test_code_and_its_output_cite_only_files_of_the_repository():
    outside = ("DESIGN.md", "METHODS.md", "../shared")
    places = [*PACKAGE.rglob("*.py"), *(REPO / "benchmarks").rglob("*.py"), *(REPO / "configs").rglob("*.py"),
              *(REPO / "bin").iterdir(), REPO / "README.md", *(REPO / "docs").rglob("*.md")]
    cited = [f"{p.relative_to(REPO)}: {w}" for p in places if p.is_file() for w in outside if w in p.read_text()]
    assert not cited, cited
    for doc in ("docs/methods.md", "docs/measuring.md"):  # what the code cites exists
        assert (REPO / doc).is_file(), doc
