"""The layout shows the pipeline: drive_ops by stage with one import rule, nodes one file per category.

- every drive_ops module lives in a stage sub-package; a stage imports only itself and
  ``core``, and ``core`` imports no stage, so the sub-package graph has no cycle;
- no two drive_ops modules import each other, even lazily inside a function;
- ``nodes/<category>.py`` holds exactly the nodes of category ``DRIVE/<category>``; no node
  module imports another node module, and ``nodes/patches`` and the helpers import none.
"""

from __future__ import annotations

import ast
from pathlib import Path

from pack_nodes import keyword

REPO = Path(__file__).resolve().parent.parent
OPS = REPO / "drive_ops"
NODES = REPO / "nodes"
STAGES = ("core", "video", "masks", "diffusion", "composite", "evaluate")
CATEGORIES = ("video", "track", "mask", "tune", "invert", "edit", "consistency", "composite", "evaluate")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, known: set[str]) -> set[str]:
    """The pack modules ``path`` imports anywhere in its body (function-level imports included)."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                root = ".".join(base + ([node.module] if node.module else []))
            else:
                root = node.module or ""
            names = [f"{root}.{a.name}" for a in node.names] + [root]
        else:
            continue
        for name in names:
            while name and name not in known:   # `from x import function` names the module x
                name = name.rpartition(".")[0]
            if name and name != here:
                found.add(name)
    return found


def _graph(folder: Path) -> dict[str, set[str]]:
    files = sorted(folder.rglob("*.py"))
    known = {_module_name(p) for p in files}
    return {_module_name(p): _imported_modules(p, known) for p in files}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def stage_graph() -> dict[str, set[str]]:
    """drive_ops sub-package -> the other sub-packages it imports."""
    out: dict[str, set[str]] = {s: set() for s in STAGES}
    for module, imports in _graph(OPS).items():
        src = _stage(module)
        for target in imports:
            dst = _stage(target)
            if src and dst and dst != src:
                out[src].add(dst)
    return out


def test_drive_ops_is_only_stage_packages():
    assert sorted(p.name for p in OPS.iterdir() if p.suffix == ".py") == ["__init__.py"]
    assert sorted(p.name for p in OPS.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(STAGES)
    for stage in STAGES:
        assert (OPS / stage / "__init__.py").is_file(), stage


def test_each_stage_imports_only_itself_and_core():
    graph = stage_graph()
    assert graph["core"] == set(), f"core imports {graph['core']}: core must not depend on a stage"
    for stage, targets in graph.items():
        assert targets <= {"core"}, f"drive_ops.{stage} imports {sorted(targets - {'core'})}: only core is shared"
    assert _cycle(graph) is None


def test_no_import_cycle_between_modules():
    graph = _graph(OPS)
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def _node_modules() -> dict[str, Path]:
    return {p.stem: p for p in NODES.glob("*.py") if p.stem in CATEGORIES}


def test_node_files_line_up_with_categories():
    assert sorted(_node_modules()) == sorted(CATEGORIES)
    for path in sorted(NODES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Schema":
                node_id, category = keyword(node, "node_id").value, keyword(node, "category").value
                assert category == f"DRIVE/{path.stem}", f"{node_id} ({category}) is declared in {path.name}"


def test_no_node_module_imports_another():
    graph = _graph(NODES)
    node_modules = {f"nodes.{name}" for name in _node_modules()}
    for module, imports in graph.items():
        if module == "nodes.extension":
            assert node_modules <= imports, "extension.py lists every node module"
            continue
        leaked = imports & node_modules
        assert not leaked, f"{module} imports the node module(s) {sorted(leaked)}; share helpers through nodes/patches"
    for module in graph:
        if module.startswith("nodes.patches"):
            assert "nodes.extension" not in graph[module]
