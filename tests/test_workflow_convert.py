"""The headless runner's UI-to-API converter against what the real frontend produced."""

import json
from pathlib import Path

import pytest
from workflow_convert import WorkflowError, ui_to_api

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


WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
TWINS = Path(__file__).resolve().parent / "workflows"


@pytest.mark.parametrize("name", sorted(p.stem for p in WORKFLOWS.glob("*.json")))
def test_shipped_workflows_convert_to_their_api_twins(name):
    """The runner's converter reproduces what the frontend made of each shipped workflow."""
    info = json.loads((TWINS / "object_info.json").read_text())
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    assert ui_to_api(ui, info) == json.loads((TWINS / f"{name}.api.json").read_text())


def test_every_workflow_has_notes_and_only_known_nodes():
    info = json.loads((TWINS / "object_info.json").read_text())
    for path in WORKFLOWS.glob("*.json"):
        ui = json.loads(path.read_text())
        types = {n["type"] for n in ui["nodes"]}
        assert "Note" in types, f"{path.name} explains nothing"
        assert types - {"Note"} <= set(info), f"{path.name}: {sorted(types - {'Note'} - set(info))}"


def test_runner_overrides_reach_the_right_inputs():
    from run_workflow import apply_overrides, parse_args

    prompt = json.loads((TWINS / "drive_instance_edit.api.json").read_text())
    args = parse_args(["x.json", "--prompt", "a bronze wolf", "--negative", "ugly", "--seed", "9",
                       "--points", '[{"x": 1, "y": 2}]', "--negative-points", "[]", "--set", "DRIVE_MaskTools.grow_px=3"])
    out = apply_overrides(prompt, args, "clip.mp4")
    by_type = {}
    for node in out.values():
        by_type.setdefault(node["class_type"], []).append(node["inputs"])
    assert by_type["DRIVE_LoadVideo"][0]["video"] == "clip.mp4"
    texts = sorted(n["text"] for n in by_type["CLIPTextEncode"])
    assert texts == sorted(["", "a bronze wolf", "ugly"]), texts  # the inversion prompt stays empty
    assert by_type["DRIVE_MaskedCFGSampler"][0]["seed"] == 9
    assert by_type["DRIVE_TrackObject"][0]["positive_points"] == '[{"x": 1, "y": 2}]'
    assert by_type["DRIVE_TrackObject"][0]["negative_points"] == "[]"
    assert by_type["DRIVE_MaskTools"][0]["grow_px"] == 3
    assert prompt != out  # the input prompt is not modified


def test_prompt_override_follows_conditioning_through_controlnet():
    from run_workflow import apply_overrides, parse_args

    ui = json.loads((WORKFLOWS / "drive_instance_edit.json").read_text())
    for node in ui["nodes"]:
        if node["type"].startswith("ControlNet"):
            node["mode"] = 0
    prompt = ui_to_api(ui, json.loads((TWINS / "object_info.json").read_text()))
    out = apply_overrides(prompt, parse_args(["x.json", "--prompt", "a bronze wolf"]), None)
    texts = sorted(n["inputs"]["text"] for n in out.values() if n["class_type"] == "CLIPTextEncode")
    assert "a bronze wolf" in texts and "" in texts


def test_shipped_workflows_carry_no_hidden_negative_click():
    """A workflow's negative points are the user's: a shipped one lands wherever its pixel happens to be on their clip."""
    for path in WORKFLOWS.glob("*.json"):
        for n in json.loads(path.read_text())["nodes"]:
            if n["type"] == "DRIVE_TrackObject":
                assert "[]" in n["widgets_values"], f"{path.name}: Track Object ships a negative point"
