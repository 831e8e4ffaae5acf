"""Which ComfyUI core the integration tests run on: its version, read from the folder in ``COMFYUI_DIR``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest


def comfy_version(comfy_dir: str | Path | None = None) -> str:
    """The version a ComfyUI folder says it is (its comfyui_version.py), or "unknown"."""
    path = Path(comfy_dir or os.environ.get("COMFYUI_DIR", "")) / "comfyui_version.py"
    match = re.search(r'__version__\s*=\s*"([^"]+)"', path.read_text()) if path.is_file() else None
    return match.group(1) if match else "unknown"


def core_at_least(version: str) -> bool:
    """Whether the core under test is ``version`` or newer (an unknown core counts as the newest)."""
    have = comfy_version()
    if have == "unknown":
        return True
    return tuple(map(int, have.split(".")[:3])) >= tuple(map(int, version.split(".")))


SNAPSHOT_CORE = "0.3.64"
"""The core (and so frontend 1.27.10) the API twins and tests/workflows/object_info.json were written on."""


def comparable_prompt(prompt: dict, object_info: dict) -> dict:
    """An API prompt as compared across cores: whole on the snapshot core. Elsewhere without ``_meta`` (an untitled
    node's title is its core display name, which newer cores renamed: 0.33's Canny is "Detect Edges (Canny)") and
    with only the inputs the node declares in ``object_info`` (frontends 1.49+ also send display-only widgets, such
    as PreviewAny's ``preview``, which the core ignores)."""
    if comfy_version() == SNAPSHOT_CORE:
        return prompt
    out = {}
    for nid, node in prompt.items():
        declared = object_info.get(node["class_type"], {}).get("input", {})
        names = {*declared.get("required", {}), *declared.get("optional", {})}
        out[nid] = {"class_type": node["class_type"],
                    "inputs": {k: v for k, v in node["inputs"].items() if k in names}}
    return out


def workflow_min_core(path: Path) -> str | None:
    """The core a shipped workflow needs (``extra.drive_min_comfyui``: it uses core nodes older cores lack), if any."""
    return json.loads(path.read_text()).get("extra", {}).get("drive_min_comfyui")


def workflow_params(folder: Path) -> list:
    """The workflows of ``folder`` as pytest params by name, each marked ``min_core`` with the core it needs."""
    params = []
    for path in sorted(folder.glob("*.json")):
        needs = workflow_min_core(path)
        params.append(pytest.param(path.stem, marks=[pytest.mark.min_core(needs)] if needs else []))
    return params


def workflows_for_this_core(folder: Path) -> list[Path]:
    """The workflows of ``folder`` whose nodes the core under test has."""
    return [p for p in sorted(folder.glob("*.json")) if core_at_least(workflow_min_core(p) or "0")]
