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
    assert [type(n).__name__ for n in top] == ["Assign", "AsyncFunctionDef"]
    assert ast.unparse(top[0]) == "WEB_DIRECTORY = './web'"
    assert top[1].name == "comfy_entrypoint"
    assert (REPO / "web").is_dir()


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


README_BLOCKS = ("node-table", "model-table", "main-command", "test-command", "first-run-times")


def test_readme_blocks_appear_once_each():
    """Each marked block opens once and closes once, in that order: a second copy is always stale."""
    readme = (REPO / "README.md").read_text()
    for block in README_BLOCKS:
        opens, closes = readme.count(f"<!-- {block} -->"), readme.count(f"<!-- /{block} -->")
        assert (opens, closes) == (1, 1), f"README has {opens} '{block}' openers and {closes} closers"
        assert readme.index(f"<!-- {block} -->") < readme.index(f"<!-- /{block} -->"), block


def test_no_node_row_outside_the_node_table():
    """A node's row lives in the one table only (copies outside it drift, as two InvertVideo rows did)."""
    readme = (REPO / "README.md").read_text()
    before, rest = readme.split("<!-- node-table -->")
    _, after = rest.split("<!-- /node-table -->")
    for part in (before, after):
        stray = re.findall(r"^.*`DRIVE_\w+`\s*\|.*$|^.*\|\s*DRIVE/\w+\s*\|.*$", part, re.M)
        assert not stray, f"node rows outside the node table: {stray}"


def test_display_names_share_one_style():
    """'<Name> (DRIVE)' for every node, and README prose never uses the old 'DRIVE <Name>' form."""
    readme = (REPO / "README.md").read_text()
    for path, call in schema_calls():
        name = _kw(call, "display_name")
        assert isinstance(name, ast.Constant), path
        assert re.fullmatch(r"[A-Z0-9][\w\- ]*[\w)] \(DRIVE\)", name.value), name.value
        bare = name.value.removesuffix(" (DRIVE)")
        assert f"DRIVE {bare}" not in readme, f"README calls it 'DRIVE {bare}'; the UI shows {name.value!r}"


def test_one_name_for_the_pack():
    """comfyui-drive is the package, registry id and install folder; ComfyUI-DRIVE the display form."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    readme = (REPO / "README.md").read_text()
    assert meta["project"]["name"] == "comfyui-drive"
    assert meta["tool"]["comfy"]["DisplayName"] == "ComfyUI-DRIVE"
    assert readme.startswith("# ComfyUI-DRIVE\n")
    assert re.search(r"git clone \S+/comfyui-drive\s", readme), "README's clone must make the comfyui-drive folder"
    assert "Repository" in meta["project"]["urls"] and meta["tool"]["comfy"]["Icon"]
    from comfy_server import PACK_LINK_NAME

    assert PACK_LINK_NAME == "comfyui-drive"


def test_readme_has_no_paths_outside_the_repository():
    readme = (REPO / "README.md").read_text()
    assert "../shared" not in readme and "/work/" not in readme
    assert "build machine" not in readme
