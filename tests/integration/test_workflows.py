"""Every example workflow, run inside a real ComfyUI on a tiny clip, plus its bad-input failures.

The API twins in tests/workflows are what frontend 1.27.10 made of the UI files
(tools/build_workflows.py); here they run at 64x64, 8 frames, 3 steps with the
random-weight SD1.5 checkpoint and random SAM2 weights, and the converter the headless
runner uses must give the same prompts from the UI files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from comfy_client import execution_error
from comfy_core import SNAPSHOT_CORE, comfy_version, comparable_prompt, workflow_params, workflows_for_this_core
from comfy_server import Server
from comfy_test_server import free_port
from random_weights import (provide_depth_stand_ins, provide_flux2_stand_ins, provide_random_controlnet,
                            provide_wan_stand_ins, write_random_sam2)
from workflow_convert import ui_to_api

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

WORKFLOWS = [p.stem for p in workflows_for_this_core(ROOT / "workflows")]
"""The shipped workflows whose nodes this core has (the depth one needs core MoGe, 0.33 and newer)."""
FRAMES, SIZE, STEPS, CLIP_FPS = 8, 64, 3, 8
CLIP_NAME = "drive_test_clip.mp4"
CANNY_CONTROLNET = "control_v11p_sd15_canny.pth"
MASK_NAME = "drive_test_mask.png"
WAN_SIZE = 96
"""Wan VACE's working size in the tests: larger than the clip, so Align Edited Clip undoes a real resize."""
WAN_FRAMES = 4 * ((FRAMES - 1) // 4) + 1
FRAMES_OF = {"drive_wan_edit": WAN_FRAMES}
"""Workflows that edit Wan's native video latent load 4n+1 frames (the latent's temporal stride)."""


def _api(name: str) -> dict:
    return json.loads((ROOT / "tests" / "workflows" / f"{name}.api.json").read_text())


@pytest.fixture(scope="module")
def assets(comfy):
    """The clip, mask, checkpoint alias and random SAM2 and ControlNet weights the workflows name."""
    frames = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for t in range(FRAMES):
        frames[t] = np.stack([(xx * 4) % 256, (yy * 4) % 256, np.full_like(xx, 60 + 10 * t)], -1)
        frames[t, 20:44, 14 + t:38 + t] = (230, 200, 40)
    with av.open(str(comfy.input_dir / CLIP_NAME), "w") as out:
        stream = out.add_stream("libx264", rate=CLIP_FPS)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv444p"
        stream.options = {"qp": "0"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[20:44, 14:38] = 255
    Image.fromarray(mask).convert("RGB").save(comfy.input_dir / MASK_NAME)
    write_random_sam2(comfy.models_dir / "sam2" / "sam2.1_hiera_tiny.pt")
    provide_random_controlnet(comfy.models_dir, comfy.comfy_dir, CANNY_CONTROLNET)
    provide_depth_stand_ins(comfy.models_dir, comfy.comfy_dir, CANNY_CONTROLNET)
    provide_wan_stand_ins(comfy.models_dir, comfy.comfy_dir)
    provide_flux2_stand_ins(comfy.models_dir, comfy.comfy_dir)
    return {"clip": CLIP_NAME}


def _shrink(prompt: dict, clip: str, frames: int = FRAMES) -> dict:
    """The workflow at test size: ``frames`` (8) frames of 64x64, 3 steps, random checkpoint, Wan and FLUX.2 stand-ins (Wan VACE
    at 96x96; their text encoders replaced)."""
    p = json.loads(json.dumps(prompt))
    for node in p.values():
        kind, inputs = node["class_type"], node["inputs"]
        if kind == "DRIVE_LoadVideo":
            inputs.update(video=clip, frame_load_cap=frames, size_policy="keep")
        elif kind == "CheckpointLoaderSimple":
            inputs["ckpt_name"] = "sd15_random_fp16.safetensors"
        elif kind == "DRIVE_SAM2Loader":
            inputs["image_size"] = 256
        elif kind == "MoGeInference":
            inputs["resolution_level"] = 0
        elif kind == "UNETLoader":
            inputs["weight_dtype"] = "default"
        elif kind == "WanVaceToVideo":  # a size linked from the clip stays the clip's
            inputs.update({side: WAN_SIZE for side in ("width", "height") if not isinstance(inputs[side], list)})
        elif kind == "LoadImageMask":
            inputs["image"] = MASK_NAME
        elif kind == "DRIVE_TrackObject":
            inputs.update(positive_points='[{"x": 30, "y": 32}]', negative_points='[{"x": 2, "y": 2}]')
        if "steps" in inputs and kind != "DRIVE_EasyInvSampler":
            inputs["steps"] = STEPS
        if "grid_size" in inputs and inputs["grid_size"] > 2:
            inputs["grid_size"] = 2
    return _without_large_text_encoders(p)


LARGE_TEXT_ENCODERS = {"umt5_xxl_fp8_e4m3fn_scaled.safetensors": 4096, "qwen_3_4b.safetensors": 7680}
"""Text encoders with no stand-in, and the width of the conditioning their DiT reads: Wan's umt5-xxl (6.7 GB) and
FLUX.2 [klein] 4B's Qwen3-4B (8 GB; three layers of 2560)."""


def _without_large_text_encoders(prompt: dict) -> dict:
    """The CLIP Text Encode nodes of a text encoder with no stand-in become the test server's Test Text Conditioning
    (a seeded [1, 8, width] CONDITIONING at that encoder's width); its loader goes."""
    loaders = {nid: LARGE_TEXT_ENCODERS[n["inputs"].get("clip_name")] for nid, n in prompt.items()
               if n["class_type"] == "CLIPLoader" and n["inputs"].get("clip_name") in LARGE_TEXT_ENCODERS}
    for seed, (nid, node) in enumerate(sorted(prompt.items())):
        clip = node["inputs"].get("clip")
        if node["class_type"] == "CLIPTextEncode" and isinstance(clip, list) and clip[0] in loaders:
            prompt[nid] = {"class_type": "TestTextConditioning",
                           "inputs": {"tokens": 8, "width": loaders[clip[0]], "seed": seed}}
    for nid in loaders:
        del prompt[nid]
    return prompt


def _saved_path(comfy, entry: dict, node_id: str) -> Path:
    item = entry["outputs"][node_id]["images"][0]
    return comfy.output_dir / item["subfolder"] / item["filename"]


def _saved_frames(comfy, entry: dict, node_id: str) -> list[np.ndarray]:
    """Frames of the png sequence a DRIVE_SaveVideo node wrote."""
    path = _saved_path(comfy, entry, node_id)
    folder = path if path.is_dir() else path.parent
    return [np.asarray(Image.open(f).convert("RGB")) for f in sorted(folder.glob("frame_*.png"))]


def _frames_and_fps(path: Path) -> tuple[int, float | None]:
    """Frame count and rate of a saved video file (png sequences carry no rate)."""
    if path.suffix == ".png":
        folder = path if path.is_dir() else path.parent
        return len(list(folder.glob("frame_*.png"))), None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for _ in container.decode(stream)), float(stream.average_rate)


def _lossless(prompt: dict) -> dict:
    """The same prompt with every Save Video writing png sequences, for pixel comparisons."""
    p = json.loads(json.dumps(prompt))
    for node in p.values():
        if node["class_type"] == "DRIVE_SaveVideo":
            node["inputs"]["format"] = "png"
    return p


def test_api_twins_match_the_converter(comfy):
    """The API twins were made by 0.3.64's frontend (those needing a newer core by that core's): the converter gives
    them on 0.3.64, and on newer cores the same graph (titles aside)."""
    info = comfy.object_info()
    assert WORKFLOWS, "no workflows found"
    for name in WORKFLOWS:
        ui = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
        assert comparable_prompt(ui_to_api(ui, info), info) == comparable_prompt(_api(name), info), name


def test_object_info_snapshot_is_current(comfy):
    """tests/workflows/object_info.json (used by CI, written on 0.3.64) still describes these nodes' inputs; on newer
    cores the pack's own nodes must read the same (core's may have changed: 0.33's PreviewAny has no output)."""
    snap = json.loads((ROOT / "tests" / "workflows" / "object_info.json").read_text())
    info = comfy.object_info()
    here = workflows_for_this_core(ROOT / "workflows")
    newer = {n["type"] for path in (ROOT / "workflows").glob("*.json") if path not in here
             for n in json.loads(path.read_text())["nodes"]}
    for kind, schema in snap.items():
        if kind not in info:
            assert kind in newer, f"{kind} is in the snapshot but not on this core, and no newer-core workflow uses it"
            continue
        if comfy_version() != SNAPSHOT_CORE and not kind.startswith("DRIVE_"):
            continue
        assert schema["input_order"] == info[kind]["input_order"], kind
        assert schema["output"] == info[kind]["output"], kind


@pytest.mark.parametrize("name", workflow_params(ROOT / "workflows"))
def test_workflow_runs(comfy, assets, name):
    frames = FRAMES_OF.get(name, FRAMES)
    prompt = _shrink(_api(name), assets["clip"], frames)
    entry = comfy.run_ok(prompt, timeout=1800)
    saves = [nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_SaveVideo"]
    assert saves
    for nid in saves:
        count, fps = _frames_and_fps(_saved_path(comfy, entry, nid))
        assert count == frames, (name, nid, count)
        assert fps is None or fps == pytest.approx(CLIP_FPS), (name, nid, fps)


def _with_known_mask(prompt: dict) -> dict:
    """The prompt with Mask Tools fed by the weight-free propagation of a known mask, not by SAM2.

    Random SAM2 weights give an arbitrary mask (often the whole frame).
    """
    tools = [nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_MaskTools"]
    load = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_LoadVideo")
    prompt["known_mask"] = {"class_type": "LoadImageMask", "inputs": {"image": MASK_NAME, "channel": "red"}}
    prompt["propagated"] = {"class_type": "DRIVE_PropagateMask", "inputs": {
        "images": [load, 0], "mask": ["known_mask", 0], "frame_index": 0, "flow_quality": "fine",
        "occlusion_check": True, "threshold": 0.5}}
    for nid in tools:
        prompt[nid]["inputs"]["mask"] = ["propagated", 0]
    return prompt


def _assert_source_beyond_the_feather(comfy, prompt: dict, tools: str, made: int = FRAMES) -> None:
    """Run ``prompt`` and a pass-through of its clip (png): every pixel farther than Mask Tools ``tools``' feather
    from its tracked mask (its output with the feather off) is the source's, exactly; frames from ``made`` on (a model
    that made fewer frames) are the source's whole; and inside the mask the edit shows.

    Exactly, not within a tolerance: the result and the reference both go from the same loaded float frames
    through the same byte rounding of Save Video's png output, so an untouched pixel is the same byte. The
    feather reaches round(feather_px) px (a separable Gaussian: a square).
    """
    import cv2

    save = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_SaveVideo")
    reach = round(prompt[tools]["inputs"]["feather_px"])
    out = _saved_frames(comfy, comfy.run_ok(prompt, timeout=1800), save)
    source = _saved_frames(comfy, comfy.run_ok(_passthrough(prompt), timeout=600), "passthrough")
    untouched = json.loads(json.dumps(prompt))
    untouched[tools]["inputs"]["feather_px"] = 0.0
    tracked = _mask_frames(comfy, untouched, [tools, 0])
    loaded = next(n for n in prompt.values() if n["class_type"] == "DRIVE_LoadVideo")["inputs"]["frame_load_cap"]
    assert len(out) == len(source) == loaded
    changed_inside = False
    for t in range(loaded):
        near = cv2.dilate((tracked[t] > 127).astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
        assert 0.2 < (~near).mean() < 0.95, f"frame {t}: the propagated mask lost the object"
        assert np.array_equal(out[t][~near], source[t][~near]), \
            f"frame {t} changed farther than {reach} px from the tracked mask"
        if t >= made:
            assert np.array_equal(out[t], source[t]), f"frame {t}: the model made {made} frames, this one is the source"
        else:
            changed_inside |= not np.array_equal(out[t][tracked[t] > 127], source[t][tracked[t] > 127])
    assert changed_inside, "the edit changed nothing inside the mask"


def test_instance_edit_keeps_everything_outside_the_tracked_mask_plus_the_feather(comfy, assets):
    """Every pixel farther than the feather from the tracked mask equals the input frame, exactly (png out, whatever
    the weights): the composite takes the tracked mask feathered about its edge, not a grown one (issue 24)."""
    prompt = _with_known_mask(_lossless(_shrink(_api("drive_instance_edit"), assets["clip"])))
    composite = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_CompositeBackground")
    tools = prompt[composite]["inputs"]["mask"][0]
    assert prompt[tools]["class_type"] == "DRIVE_MaskTools" and prompt[tools]["inputs"]["grow_px"] == 0
    assert prompt[composite]["inputs"]["grow"] == 0 and prompt[composite]["inputs"]["feather"] == 0
    _assert_source_beyond_the_feather(comfy, prompt, tools)


@pytest.mark.min_core("0.33.0")
def test_wan_vace_finish_keeps_everything_outside_the_mask(comfy, assets):
    """wan_vace_finish with the random Wan 2.1 VACE stand-ins: VACE makes 4n+1 frames (5 of the 8 loaded) at its own
    size (96x96 from 64x64); after Align Edited Clip and Composite Background every pixel farther than the feather
    from the finish mask is the source's, exactly (png out), frames VACE did not make are the source's whole, and
    inside the mask the edit shows."""
    prompt = _with_known_mask(_lossless(_shrink(_api("wan_vace_finish"), assets["clip"])))
    composite = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_CompositeBackground")
    align = prompt[composite]["inputs"]["mask"][0]
    assert prompt[align]["class_type"] == "DRIVE_AlignEditedClip"
    tools = prompt[align]["inputs"]["mask"][0]
    assert prompt[tools]["class_type"] == "DRIVE_MaskTools" and prompt[tools]["inputs"]["grow_px"] == 0
    assert prompt[composite]["inputs"]["grow"] == 0 and prompt[composite]["inputs"]["feather"] == 0
    _assert_source_beyond_the_feather(comfy, prompt, tools, made=WAN_FRAMES)


@pytest.mark.min_core("0.33.0")
def test_flow_edit_keeps_everything_outside_the_mask(comfy, assets):
    """drive_flow_edit with the random FLUX.2 [klein] stand-ins (a flow model: FireFlow inversion, the cfg-1 masked
    edit on shuffled 2x2 grids of 128-channel, 16x latents): after Composite Background every pixel farther than the
    feather from the tracked mask is the source's, exactly (png out), and inside the mask the edit shows."""
    prompt = _with_known_mask(_lossless(_shrink(_api("drive_flow_edit"), assets["clip"])))
    edit = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_MaskedCFGSampler")
    invert = prompt[edit]["inputs"]["latent"][0]
    assert prompt[invert]["inputs"]["method"] == "fireflow" and prompt[edit]["inputs"]["cfg"] == 1.0
    assert prompt[edit]["inputs"]["grid_size"] == 2 and prompt[edit]["inputs"]["shuffle"]
    composite = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_CompositeBackground")
    tools = prompt[composite]["inputs"]["mask"][0]
    assert prompt[tools]["class_type"] == "DRIVE_MaskTools" and prompt[tools]["inputs"]["grow_px"] == 0
    assert prompt[composite]["inputs"]["grow"] == 0 and prompt[composite]["inputs"]["feather"] == 0
    _assert_source_beyond_the_feather(comfy, prompt, tools)


@pytest.mark.min_core("0.33.0")
def test_wan_edit_keeps_everything_outside_the_mask(comfy, assets):
    """drive_wan_edit with the random Wan 2.1 VACE stand-ins (the native video latent [1, 16, 2, h, w] of 5 frames,
    FireFlow inversion, Wan VACE To Video's conditioning in the Masked-CFG Sampler's cfg-1 masked edit): after
    Composite Background every pixel farther than the feather from the tracked mask is the source's, exactly (png
    out), and inside the mask the edit shows."""
    prompt = _with_known_mask(_lossless(_shrink(_api("drive_wan_edit"), assets["clip"], WAN_FRAMES)))
    edit = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_MaskedCFGSampler")
    vace = prompt[edit]["inputs"]["positive"][0]
    assert prompt[vace]["class_type"] == "WanVaceToVideo" and prompt[edit]["inputs"]["cfg"] == 1.0
    assert all(isinstance(prompt[vace]["inputs"][side], list) for side in ("width", "height", "length"))
    composite = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_CompositeBackground")
    tools = prompt[composite]["inputs"]["mask"][0]
    assert prompt[tools]["class_type"] == "DRIVE_MaskTools" and prompt[tools]["inputs"]["grow_px"] == 0
    _assert_source_beyond_the_feather(comfy, prompt, tools)


def _passthrough(prompt: dict) -> dict:
    """Load the clip exactly as the workflow does and save it as png: the reference pixels."""
    load = next(n for n in prompt.values() if n["class_type"] == "DRIVE_LoadVideo")
    return {"load": {"class_type": "DRIVE_LoadVideo", "inputs": dict(load["inputs"])},
            "passthrough": {"class_type": "DRIVE_SaveVideo", "inputs": {
                "images": ["load", 0], "fps": 8.0, "filename_prefix": "drive_test/source", "format": "png", "crf": 19}}}


def _mask_frames(comfy, prompt: dict, mask_src: list) -> list[np.ndarray]:
    """Re-run the workflow's mask branch and save the mask as png to compare against."""
    p = json.loads(json.dumps(prompt))
    keep = _ancestors(p, mask_src[0])
    p = {k: v for k, v in p.items() if k in keep}
    p["mask_img"] = {"class_type": "MaskToImage", "inputs": {"mask": mask_src}}
    p["mask_save"] = {"class_type": "DRIVE_SaveVideo", "inputs": {
        "images": ["mask_img", 0], "fps": 8.0, "filename_prefix": "drive_test/mask", "format": "png", "crf": 19}}
    return [f[..., 0] for f in _saved_frames(comfy, comfy.run_ok(p, timeout=900), "mask_save")]


def _ancestors(prompt: dict, node_id: str) -> set[str]:
    seen, todo = set(), [node_id]
    while todo:
        nid = todo.pop()
        if nid in seen:
            continue
        seen.add(nid)
        todo += [v[0] for v in prompt[nid]["inputs"].values() if isinstance(v, list) and len(v) == 2]
    return seen


def test_rerun_is_reproducible(comfy, assets):
    """Upstream outputs are cached and reused: a run that mutated them would change the next one."""
    prompt = _lossless(_shrink(_api("rave_global_edit"), assets["clip"]))
    save = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_SaveVideo")
    sampler = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_MaskedCFGSampler")
    first = _saved_frames(comfy, comfy.run_ok(prompt), save)
    other = json.loads(json.dumps(prompt))
    other[sampler]["inputs"]["seed"] += 1
    other[sampler]["inputs"]["cfg"] = 3.0
    comfy.run_ok(other)
    prompt[save]["inputs"]["filename_prefix"] = "drive_test/rerun"
    again = _saved_frames(comfy, comfy.run_ok(prompt), save)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def _fails_with(comfy, prompt: dict, text: str) -> None:
    entry = comfy.run(prompt, timeout=900)
    assert entry["status"]["status_str"] == "error"
    assert text in execution_error(entry).get("exception_message", ""), execution_error(entry)


def test_mask_of_the_wrong_length_is_refused(comfy, assets):
    prompt = _shrink(_api("drive_instance_edit"), assets["clip"])
    composite = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_CompositeBackground")
    mask_src = prompt[composite]["inputs"]["mask"]
    prompt["as_img"] = {"class_type": "MaskToImage", "inputs": {"mask": mask_src}}
    prompt["three"] = {"class_type": "ImageFromBatch", "inputs": {"image": ["as_img", 0], "batch_index": 0,
                                                                  "length": 3}}
    prompt["short"] = {"class_type": "ImageToMask", "inputs": {"image": ["three", 0], "channel": "red"}}
    prompt[composite]["inputs"]["mask"] = ["short", 0]
    _fails_with(comfy, prompt, "has 3 frames but the video has 8")


def test_missing_harmonizer_file_names_the_folder(comfy, assets):
    ui = json.loads((ROOT / "workflows" / "drive_instance_edit.json").read_text())
    for node in ui["nodes"]:
        if node["type"] == "DRIVE_HarmonizerLoader":
            node["mode"] = 0
    prompt = _shrink(ui_to_api(ui, comfy.object_info()), assets["clip"])
    _fails_with(comfy, prompt, "harmonizer")


def test_save_outside_the_output_folder_is_refused(comfy, assets):
    prompt = _shrink(_api("mask_only"), assets["clip"])
    for node in prompt.values():
        if node["class_type"] == "DRIVE_SaveVideo":
            node["inputs"]["filename_prefix"] = "../../escape"
    _fails_with(comfy, prompt, "outside the output folder")


def test_headless_runner_batch(comfy, assets, tmp_path):
    """scripts/run_workflow.py against this server: a folder of two clips, UI workflow, overrides."""
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(comfy.input_dir / assets["clip"], clips / name)
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "scripts" / "run_workflow.py"), str(ROOT / "workflows" / "mask_only.json"),
           "--url", comfy.url, "--video", str(clips), "--points", '[{"x": 30, "y": 32}]', "--negative-points", "[]",
           "--set", "DRIVE_SAM2Loader.image_size=256", "--set", f"DRIVE_LoadVideo.frame_load_cap={FRAMES}",
           "--set", "DRIVE_LoadVideo.size_policy=keep", "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    for clip in ("a", "b"):
        files = sorted(f for f in (out / clip).rglob("*") if f.is_file())
        videos = [f for f in files if f.suffix == ".mp4"]
        assert videos and _frames_and_fps(videos[0]) == (FRAMES, pytest.approx(CLIP_FPS)), files
        assert len([f for f in files if f.suffix == ".png"]) == FRAMES, files  # the whole mask sequence


def test_headless_runner_reports_a_refused_prompt(comfy, tmp_path):
    cmd = [sys.executable, str(ROOT / "scripts" / "run_workflow.py"), str(ROOT / "workflows" / "mask_only.json"),
           "--url", comfy.url, "--set", "DRIVE_LoadVideo.video=no_such_clip.mp4", "--out", str(tmp_path)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1
    assert "error:" in run.stderr and "no_such_clip.mp4" in run.stderr, run.stderr


def _runner(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "run_workflow.py"), *args],
                          capture_output=True, text=True, timeout=timeout)


def _container_tags(path: Path) -> dict:
    with av.open(str(path)) as container:
        return dict(container.metadata)


def test_headless_runner_uploads_files_and_embeds_the_ui_workflow(comfy, assets, tmp_path):
    """--file gives patch_nodes_ksampler its mask; the saved video carries the UI graph with the run's values."""
    mask = tmp_path / "my_mask.png"
    shutil.copy(comfy.input_dir / MASK_NAME, mask)
    clip = tmp_path / "clip.mp4"
    shutil.copy(comfy.input_dir / assets["clip"], clip)
    run = _runner(str(ROOT / "workflows" / "patch_nodes_ksampler.json"), "--server", comfy.url, "--video", str(clip),
                  "--file", f"LoadImageMask.image={mask}", "--set", f"DRIVE_LoadVideo.frame_load_cap={FRAMES}",
                  "--set", "DRIVE_LoadVideo.size_policy=keep", "--set", f"BasicScheduler.steps={STEPS}",
                  "--set", f"KSamplerAdvanced.steps={STEPS}", "--set", "DRIVE_RAVEGridPatch.grid_size=2",
                  "--set", "CheckpointLoaderSimple.ckpt_name=sd15_random_fp16.safetensors", "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr[-3000:]
    video = next((tmp_path / "out").rglob("*.mp4"))
    workflow = json.loads(_container_tags(video)["workflow"])
    assert "nodes" in workflow and "links" in workflow, "the UI graph is embedded, not only the prompt"
    by_type = {n["type"]: n for n in workflow["nodes"]}
    assert by_type["LoadImageMask"]["widgets_values"][0] == "my_mask.png"
    assert by_type["DRIVE_LoadVideo"]["widgets_values"][:2] == ["clip.mp4", FRAMES]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["jobs"]["clip.mp4"]["status"] == "done"


def test_headless_runner_reports_edit_report_numbers(comfy, assets, tmp_path):
    """The round trip's Edit Report numbers reach the console and report.json; --previews fetches the plot."""
    out = tmp_path / "out"
    run = _runner(str(ROOT / "workflows" / "inversion_roundtrip.json"), "--server", comfy.url,
                  "--set", f"DRIVE_LoadVideo.video={assets['clip']}", "--set", f"DRIVE_LoadVideo.frame_load_cap={FRAMES}",
                  "--set", "DRIVE_LoadVideo.size_policy=keep", "--set", f"DRIVE_InvertVideo.steps={STEPS}",
                  "--set", f"DRIVE_MaskedCFGSampler.steps={STEPS}",
                  "--set", "CheckpointLoaderSimple.ckpt_name=sd15_random_fp16.safetensors", "--previews", "--out", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    numbers = next(r for r in report.values() if r["type"] == "DRIVE_EditReport")
    assert {"summary", "background_psnr", "background_ssim", "warp_error", "flicker_ratio"} <= set(numbers)
    assert f"background_psnr: {numbers['background_psnr']}" in run.stderr
    assert list((out / "previews").rglob("*.png")), "the report's plot preview was not downloaded"


def test_headless_runner_spreads_clips_over_two_servers(comfy, assets, tmp_path):
    """Two CPU servers, four clips (one corrupt): each good clip runs once, the bad one is reported, a re-run skips."""
    second = Server(f"http://127.0.0.1:{free_port()}")
    base = tmp_path / "second"
    for sub in ("input", "output", "temp"):
        (base / sub).mkdir(parents=True)
    second.start(comfy.comfy_dir, sys.executable, 240, workdir=base,
                 model_paths={"sam2": [comfy.models_dir / "sam2"]},
                 extra_args=["--cpu", "--input-directory", str(base / "input"), "--output-directory",
                             str(base / "output"), "--temp-directory", str(base / "temp")])
    try:
        clips = tmp_path / "clips"
        clips.mkdir()
        for name in ("a.mp4", "b.mp4", "c.mp4"):
            shutil.copy(comfy.input_dir / assets["clip"], clips / name)
        (clips / "bad.mp4").write_bytes(b"not a video at all")
        out = tmp_path / "out"
        args = [str(ROOT / "workflows" / "mask_only.json"), "--server", comfy.url, "--server", second.url,
                "--video", str(clips), "--points", '[{"x": 30, "y": 32}]', "--negative-points", "[]",
                "--set", "DRIVE_SAM2Loader.image_size=256", "--set", f"DRIVE_LoadVideo.frame_load_cap={FRAMES}",
                "--set", "DRIVE_LoadVideo.size_policy=keep", "--out", str(out)]
        first = _runner(*args)
        assert first.returncode == 1 and "bad.mp4" in first.stderr and "1 of 4 clip(s) failed" in first.stderr
        jobs = json.loads((out / "manifest.json").read_text())["jobs"]
        assert {k: v["status"] for k, v in jobs.items()} == {"a.mp4": "done", "b.mp4": "done", "c.mp4": "done",
                                                             "bad.mp4": "failed"}
        assert {v["server"] for v in jobs.values()} == {comfy.url, second.url}, "both servers ran clips"
        for clip in ("a", "b", "c"):
            assert list((out / clip).rglob("*.mp4")), clip
        again = _runner(*args)
        assert again.stderr.count("done before") == 3 and again.stderr.count("running mask_only") == 1, again.stderr
    finally:
        second.stop()
