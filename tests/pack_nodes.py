"""The node schemas as written in nodes/*.py, read statically (no ComfyUI needed)."""

from __future__ import annotations

import ast
from pathlib import Path

NODES_DIR = Path(__file__).resolve().parent.parent / "nodes"


def schema_calls() -> list[tuple[Path, ast.Call]]:
    """Every ``io.Schema(...)`` call in nodes/, with its file."""
    found = []
    for path in sorted(NODES_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Schema":
                found.append((path, node))
    return found


def keyword(call: ast.Call, name: str):
    """The AST value of keyword ``name`` in ``call`` (None when absent)."""
    return next((k.value for k in call.keywords if k.arg == name), None)


def declared_categories() -> dict[str, str]:
    """node_id -> category for every node the pack declares."""
    out = {}
    for _, call in schema_calls():
        out[keyword(call, "node_id").value] = keyword(call, "category").value
    return out
