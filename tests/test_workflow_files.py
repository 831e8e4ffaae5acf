"""What ships beside each workflow: a template thumbnail, model download metadata, inputs, pictures."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin", ".sft")


def _png_text(path: Path) -> dict[str, str]:
    data, pos, text = path.read_bytes(), 8, {}
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) == int.from_bytes(data[pos + 8 + length:pos + 12 + length], "big")
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            text[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + length
    return text


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_every_workflow_has_a_thumbnail(path):
    """The template browser asks for <name>.jpg beside the workflow and shows a placeholder without it."""
    thumb = path.with_suffix(".jpg")
    assert thumb.is_file(), f"{thumb.name} is missing: run tools/build_workflows.py"
    assert thumb.read_bytes()[:3] == b"\xff\xd8\xff", f"{thumb.name} is not a JPEG"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_every_model_file_a_workflow_names_carries_its_download(path):
    """properties.models (name, url, directory) on each node naming a model file: the Missing Models panel."""
    readme_models = _readme_model_table()
    for node in json.loads(path.read_text())["nodes"]:
        names = [v for v in node.get("widgets_values") or [] if isinstance(v, str) and v.endswith(MODEL_SUFFIXES)]
        models = {m["name"]: m for m in node.get("properties", {}).get("models", [])}
        for name in names:
            assert name in models, f"{path.name}: {node['type']} names {name} without properties.models"
            assert models[name]["url"].startswith("https://") and models[name]["directory"], models[name]
            assert name in readme_models, f"README's model table has no row for {name}"
            assert readme_models[name] == models[name]["directory"], name


def _readme_model_table() -> dict[str, str]:
    """{file name: folder under ComfyUI/models} from README's model table."""
    table = (ROOT / "README.md").read_text().split("<!-- model-table -->")[1].split("<!-- /model-table -->")[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\|[^|]*\|\s*`([^`]+)`\s*\|\s*`models/([^`/]+)/?`", table, re.M)}


def test_workflows_name_the_official_sam2_file():
    for path in WORKFLOWS:
        for node in json.loads(path.read_text())["nodes"]:
            if node["type"] == "DRIVE_SAM2Loader":
                assert re.fullmatch(r"sam2\.1_hiera_(tiny|small|base_plus|large)\.pt", node["widgets_values"][0])


def test_shipped_inputs_cover_the_workflows_files():
    """Every input file the workflows name by default ships in workflows/inputs."""
    shipped = {p.name for p in (ROOT / "workflows" / "inputs").iterdir()}
    for path in WORKFLOWS:
        for node in json.loads(path.read_text())["nodes"]:
            if node["type"] in ("DRIVE_LoadVideo", "LoadImageMask", "LoadImage"):
                assert node["widgets_values"][0] in shipped, (path.name, node["type"], node["widgets_values"][0])


def test_pictures_carry_their_workflow():
    """The README's pictures are draggable: tEXt 'workflow' (the UI graph) and 'prompt', as ComfyUI saves."""
    pictures = sorted((ROOT / "workflows" / "pictures").glob("*.png"))
    assert pictures
    for pic in pictures:
        text = _png_text(pic)
        workflow = json.loads((ROOT / "workflows" / (pic.name.split("-")[0] + ".json")).read_text())
        assert json.loads(text["workflow"]) == workflow, pic.name
        assert isinstance(json.loads(text["prompt"]), dict)
        assert f"workflows/pictures/{pic.name}" in (ROOT / "README.md").read_text(), f"README does not show {pic.name}"


def _main_api() -> dict:
    return json.loads((ROOT / "tests" / "workflows" / "drive_instance_edit.api.json").read_text())


def test_main_workflow_has_one_mask_chain():
    """Split masks from one chain: the sampler takes Mask Tools' tracked mask and edits every latent cell it touches
    (area, threshold 0); composite and harmonize take it feathered about its edge by a second Mask Tools, and the
    composite grows and feathers nothing more."""
    prompt = _main_api()
    by_type = {n["class_type"]: n["inputs"] for n in prompt.values()}
    sampler, composite = by_type["DRIVE_MaskedCFGSampler"], by_type["DRIVE_CompositeBackground"]
    tracked, feathered = prompt[sampler["mask"][0]], prompt[composite["mask"][0]]
    assert tracked["class_type"] == feathered["class_type"] == "DRIVE_MaskTools"
    assert feathered["inputs"]["mask"] == sampler["mask"] and by_type["DRIVE_Harmonize"]["mask"] == composite["mask"]
    assert tracked["inputs"]["grow_px"] == 0 and tracked["inputs"]["feather_px"] == 0
    assert feathered["inputs"]["grow_px"] == 0 and feathered["inputs"]["feather_px"] > 0
    assert composite["grow"] == 0 and composite["feather"] == 0
    assert (sampler["mask_mode"], sampler["mask_threshold"]) == ("area", 0), "object pixels left unguided"


def test_main_workflow_edits_as_drive_does():
    """Empty negative prompt, per-frame inversion, and one Canny ControlNet at strength 1 on the inversion
    conditioning and on both edit prompts."""
    prompt = _main_api()

    def source(link: list) -> dict:
        return prompt[link[0]]

    by_type: dict[str, list[dict]] = {}
    for node in prompt.values():
        by_type.setdefault(node["class_type"], []).append(node["inputs"])
    invert, edit = by_type["DRIVE_InvertVideo"][0], by_type["DRIVE_MaskedCFGSampler"][0]
    assert invert["grid_size"] == 1
    applies = [source(invert["conditioning"]), source(edit["positive"]), source(edit["negative"])]
    assert all(a["class_type"] == "ControlNetApplyAdvanced" for a in applies)
    for apply in applies:
        inputs = apply["inputs"]
        assert (inputs["strength"], inputs["start_percent"], inputs["end_percent"]) == (1.0, 0.0, 1.0)
        assert source(inputs["image"])["class_type"] == "Canny"
        assert source(inputs["control_net"])["inputs"]["control_net_name"] == "control_v11p_sd15_canny.pth"
    assert source(source(edit["negative"])["inputs"]["negative"])["inputs"]["text"] == ""
    assert source(source(invert["conditioning"])["inputs"]["positive"])["inputs"]["text"] == ""
    if "background" in edit:
        assert edit["background"] == invert["conditioning"], "the background is sampled with what it was inverted with"


def test_main_workflow_shrink_group_is_bypassed_and_changes_nothing():
    """Fill Background sits in the main workflow bypassed: its image output passes Load Video's frames through,
    so the API prompt (what runs) encodes and composites over the original frames as without it."""
    ui = json.loads((ROOT / "workflows" / "drive_instance_edit.json").read_text())
    fill = [n for n in ui["nodes"] if n["type"] == "DRIVE_FillBackground"]
    assert len(fill) == 1 and fill[0]["mode"] == 4
    prompt = _main_api()
    assert not any(n["class_type"] == "DRIVE_FillBackground" for n in prompt.values())
    by_type = {n["class_type"]: n["inputs"] for n in prompt.values()}
    frames = by_type["DRIVE_CompositeBackground"]["original"]
    assert prompt[frames[0]]["class_type"] == "DRIVE_LoadVideo"
    assert by_type["DRIVE_CompositeBackground"]["background"] == frames
    assert by_type["VAEEncode"]["pixels"] == frames
