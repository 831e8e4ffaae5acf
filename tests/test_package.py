"""Contract checks on the pack's files that need no ComfyUI: layout, metadata, node schemas."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from pack_nodes import keyword as _kw, schema_calls

REPO = Path(__file__).resolve().parent.parent
PACK_SOURCES = [p for d in ("nodes", "drive_ops") for p in (REPO / d).rglob("*.py")] + [REPO / "__init__.py"]


def test_requirements_mirror_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [ln.strip() for ln in (REPO / "requirements.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    assert reqs == deps
    assert not any(re.match(r"^(torch|numpy)\s*[=<>~!]", r) for r in reqs), "never pin torch or numpy"
    assert not any(r.startswith(("torchvision", "comfyui-frontend-package")) for r in reqs)


def test_comfy_metadata():
    comfy = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["comfy"]
    assert {"PublisherId", "DisplayName", "Icon", "requires-comfyui"} <= comfy.keys()


def test_root_init_only_exposes_entrypoint():
    tree = ast.parse((REPO / "__init__.py").read_text())
    top = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert [type(n).__name__ for n in top] == ["AsyncFunctionDef"]
    assert top[0].name == "comfy_entrypoint"


def test_layers_stay_apart():
    for path in PACK_SOURCES:
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+torchvision", text, re.M), f"{path} imports torchvision"
        if "drive_ops" in path.parts:
            assert not re.search(r"^\s*(import|from)\s+(comfy|comfy_api|folder_paths)\b", text, re.M), \
                f"{path} imports comfy: only nodes/ may"


def test_every_node_is_documented():
    schemas = schema_calls()
    ids = []
    for path, call in schemas:
        node_id = _kw(call, "node_id")
        assert isinstance(node_id, ast.Constant) and node_id.value.startswith("DRIVE_"), path
        ids.append(node_id.value)
        category = _kw(call, "category")
        assert isinstance(category, ast.Constant) and category.value.startswith("DRIVE/"), node_id.value
        assert _kw(call, "description") is not None, f"{node_id.value} has no description"
    assert len(ids) == len(set(ids)), "duplicate node ids"
    table = (REPO / "README.md").read_text().split("<!-- node-table -->")[1].split("<!-- /node-table -->")[0]
    documented = re.findall(r"^\|\s*`(DRIVE_\w+)`", table, re.M)
    assert sorted(documented) == sorted(ids), "README's node table is out of step with nodes/"


def test_every_input_has_a_tooltip():
    for path in (REPO / "nodes").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Input":
                assert _kw(node, "tooltip") is not None, f"{path.name}:{node.lineno} input without tooltip"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- test-command -->")[1].split("<!-- /test-command -->")[0]
    assert "pytest" in block and "setup_env.sh" in block
    assert "test-command" in (REPO / ".ci" / "run").read_text()
