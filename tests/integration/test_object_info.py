"""The pack as ComfyUI sees it: every node registered, documented, and the import cheap."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pack_nodes import declared_categories

pytestmark = pytest.mark.integration


def test_every_declared_node_is_registered_and_documented(comfy):
    info = comfy.object_info()
    declared = declared_categories()
    assert sorted(k for k in info if k.startswith("DRIVE_")) == sorted(declared)
    for node_id, category in declared.items():
        spec = info[node_id]
        assert spec["category"] == category and category.startswith("DRIVE/"), node_id
        assert spec["description"].strip(), f"{node_id} has no description"
        for group in ("required", "optional"):
            for name, entry in spec["input"].get(group, {}).items():
                assert len(entry) > 1 and entry[1].get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_input_order_matches_the_snapshot(comfy):
    """The unit test reads the schemas against stand-ins for ComfyUI; here the real server agrees."""
    snapshot = json.loads((Path(__file__).resolve().parents[1] / "data" / "node_inputs.json").read_text())
    info = comfy.object_info()
    for node_id, groups in snapshot.items():
        live = info[node_id]["input_order"]
        for group in ("required", "optional"):
            assert live.get(group, []) == [name for name, _ in groups[group]], f"{node_id}.{group}"


def test_pack_imports_in_well_under_a_second(comfy):
    """ComfyUI's own 'Import times for custom nodes' line for this pack (torch is loaded by then)."""
    log = comfy.log_text()
    times = re.findall(r"^\s*([\d.]+) seconds.*custom_nodes/comfyui-drive\s*$", log, re.M)
    assert times, "no import-time line for the pack in the ComfyUI log"
    assert float(times[0]) < 0.5, f"the pack took {times[0]} s to import"
