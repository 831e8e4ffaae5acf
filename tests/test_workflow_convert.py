"""The headless runner's UI-to-API converter against what the real frontend produced."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from workflow_convert import WorkflowError, ui_to_api  # noqa: E402

CAPTURE = json.loads((Path(__file__).parent / "data" / "frontend_graph_to_prompt.json").read_text())


def test_matches_frontend_graph_to_prompt():
    assert ui_to_api(CAPTURE["ui"], CAPTURE["object_info"]) == CAPTURE["api"]


def test_bypassed_node_passes_its_input_through():
    api = ui_to_api(CAPTURE["ui"], CAPTURE["object_info"])
    sampler = next(n for n in api.values() if n["class_type"] == "KSampler")
    latent_src = api[sampler["inputs"]["latent_image"][0]]
    assert latent_src["class_type"] == "EmptyLatentImage"
    assert not any(n["class_type"] in ("LatentUpscaleBy", "SaveImage", "Note", "Reroute") for n in api.values())


def test_unknown_node_type_names_the_fix():
    ui = json.loads(json.dumps(CAPTURE["ui"]))
    ui["nodes"][0]["type"] = "SomePackNode"
    ui["nodes"][0]["mode"] = 0
    with pytest.raises(WorkflowError, match="install the pack"):
        ui_to_api(ui, CAPTURE["object_info"])
