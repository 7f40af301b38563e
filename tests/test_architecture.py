"""The architecture's seams, as checks that can fail (docs/architecture.md): the engine
never imports Qt or the GUI; llama.cpp has one owner behind the runtime interface; the
engine's modules import each other without cycles."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parents[1]
SOURCES = ("engine", "app", "tests", "benchmarks", "packaging")


def test_engine_imports_no_qt() -> None:
    code = (
        "import sys, pkgutil, importlib, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('PySide6', 'shiboken6', 'app'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_single_owner_of_native_dependencies() -> None:
    owners = {
        "llama_cpp": {"engine/runtime"},
        "pypdf": {"engine/ingest/pdf.py"},
        "pypdfium2": {"engine/ingest/pdfium.py"},
        "pytesseract": {"engine/ingest/ocr.py"},
    }
    for module, allowed in owners.items():
        for path in (ROOT / "engine").rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            text = path.read_text(encoding="utf-8")
            # A whole name: pypdfium2 is not pypdf.
            imports = re.search(rf"^\s*(?:import|from)\s+{module}(?:[.\s]|$)", text, re.MULTILINE) is not None
            if imports:
                assert any(rel.startswith(a) for a in allowed), f"{rel} imports {module}"


# --- the runtime interface (issue 12) --------------------------------------------------------

def _modules(*tops: str) -> Iterator[tuple[str, ast.Module]]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _imported(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """Every absolute module name a file imports (``from a import b`` gives a and a.b)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno


def _is(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def test_llama_cpp_is_imported_by_exactly_one_module() -> None:
    importers = {rel for rel, tree in _modules(*SOURCES) for name, _ in _imported(tree) if _is(name, "llama_cpp")}
    assert importers == {"engine/runtime/llama.py"}


def test_nothing_above_the_runtime_reaches_into_llama_cpp() -> None:
    """No ``.llama`` on a model outside the runtime (benchmarks time bare llama.cpp on
    purpose), and ``engine.runtime.llama`` imported only by the backend default in
    engine/lane.py, by benchmarks, and by tests of the runtime itself."""
    allowed_importers = ("engine/runtime/", "engine/lane.py", "benchmarks/", "tests/")
    found: dict[str, list[str]] = {}
    for rel, tree in _modules(*SOURCES):
        if rel.startswith(("engine/runtime/", "benchmarks/")):
            continue
        problems = [
            f"line {node.lineno}: .llama"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == "llama"
        ]
        if not rel.startswith(allowed_importers):
            problems += [
                f"line {line}: imports {name}" for name, line in _imported(tree) if _is(name, "engine.runtime.llama")
            ]
        if problems:
            found[rel] = problems
    assert found == {}, found


def test_the_runtime_imports_nothing_above_it() -> None:
    """engine/runtime/* may use the errors and the model files' facts, never the
    planner, the lane, the store, the snapshot cache or the readers."""
    allowed = ("engine.errors", "engine.models", "engine.runtime")
    found = {
        rel: sorted({name for name, _ in _imported(tree) if _is(name, "engine") and not name.startswith(allowed)})
        for rel, tree in _modules("engine/runtime")
    }
    found = {rel: names for rel, names in found.items() if names}
    assert found == {}, found


def _engine_import_graph() -> dict[str, set[str]]:
    modules: dict[str, ast.Module] = {}
    for rel, tree in _modules("engine"):
        parts = rel.removesuffix(".py").split("/")
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = tree
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for node in ast.walk(tree):  # every import: module level, in functions, for type checking
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from package import submodule`` depends on the submodule, not on all the package.
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                ]
            else:
                continue
            for target in targets:
                # A module always runs its packages first: an edge to one's own package is no cycle.
                if target in modules and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
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
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_engine_has_no_import_cycle() -> None:
    graph = _engine_import_graph()
    assert "engine.planner" not in graph["engine.runtime.llama"]  # the cycle issue 12 removed
    assert _cycles(graph) == []


def test_the_cycle_check_can_fail() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
