"""The example workflows in the real frontends in headless Chromium.

Each core runs with the frontend it pins (0.3.64: comfyui-frontend-package 1.27.10, 0.33.0:
1.49.6); on 0.33.0 a second server also serves 1.58.1 (the newest on PyPI when this was
written, installed by tools/setup_env.sh under .cache/frontends/) through ``--front-end-root``.
Needs Debian's chromium and playwright-core (set NODE_PATH to the node_modules that holds it);
skipped with the reason where either is missing. Screenshots land in $DRIVE_SCREENSHOT_DIR
(default: pytest's tmp dir).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from comfy_core import comparable_prompt, core_at_least, workflows_for_this_core
from comfy_test_server import start_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FRONTENDS = ROOT / os.environ.get("DRIVE_CACHE", ".cache") / "frontends"
NEWER_FRONTENDS = ["1.58.1"]
"""Frontends tried beside the core's own on 0.33.0 and newer (an older backend lacks the APIs they call)."""
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PLACEHOLDER_FILES = {"checkpoints": ["v1-5-pruned-emaonly.safetensors"],
                     "controlnet": ["control_v11p_sd15_canny.pth", "control_v11f1p_sd15_depth.pth"],
                     "sam2": ["sam2.1_hiera_tiny.pt"],
                     "harmonizer": ["harmonizer.pth"],
                     "geometry_estimation": ["moge_1_vitl_fp16.safetensors"],
                     "diffusion_models": ["wan2.1_vace_14B_fp16.safetensors", "flux-2-klein-4b.safetensors"],
                     "vae": ["wan_2.1_vae.safetensors", "flux2-vae.safetensors"],
                     "loras": ["Wan21_CausVid_14B_T2V_lora_rank32.safetensors"],
                     "text_encoders": ["umt5_xxl_fp8_e4m3fn_scaled.safetensors", "qwen_3_4b.safetensors"]}


def _playwright_available() -> bool:
    if not shutil.which("node") or not Path(CHROMIUM).exists():
        return False
    probe = subprocess.run(["node", "-e", "require.resolve('playwright-core')"], capture_output=True)
    return probe.returncode == 0


def _frontends() -> list[str]:
    return ["core"] + (NEWER_FRONTENDS if core_at_least("0.33.0") else [])


@pytest.fixture(scope="module", params=_frontends())
def frontend_url(request, comfy, tmp_path_factory):
    """The core's server for its own frontend; for a newer one, a second server on the same folders serving it."""
    if request.param == "core":
        yield comfy.url
        return
    static = FRONTENDS / request.param / "comfyui_frontend_package" / "static"
    if not (static / "index.html").is_file():
        pytest.skip(f"frontend {request.param} is not installed in {FRONTENDS} (tools/setup_env.sh installs it)")
    base = tmp_path_factory.mktemp(f"frontend-{request.param}")
    (base / "input").symlink_to(comfy.input_dir)
    server, _ = start_server(comfy.comfy_dir, base, comfy.models_dir, ("--front-end-root", str(static)))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def report(comfy, frontend_url, tmp_path_factory):
    if not _playwright_available():
        pytest.skip("needs node, playwright-core on NODE_PATH and /usr/bin/chromium (apt-get install chromium)")
    # the model files the workflows name, as empty placeholders (only combo lists are read), and the shipped
    # clip and mask themselves (Load Video's preview must load, as it does for a user), removed afterwards
    created = []
    for folder, names in PLACEHOLDER_FILES.items():
        for name in names:
            created.append(comfy.models_dir / folder / name)
    inputs = [comfy.input_dir / "drive_demo.mp4", comfy.input_dir / "drive_demo_mask.png"]
    created = [p for p in created + inputs if not p.exists()]
    for path in created:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path in inputs:
            shutil.copy(ROOT / "workflows" / "inputs" / path.name, path)
        else:
            path.write_bytes(b"")
    shots = Path(os.environ.get("DRIVE_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    shipped = tmp_path_factory.mktemp("workflows")  # those whose nodes this core has (the depth one needs 0.33)
    for path in workflows_for_this_core(ROOT / "workflows"):
        (shipped / path.name).symlink_to(path)
    out = subprocess.run(["node", str(ROOT / "tools" / "frontend.js"), "check", frontend_url + "/",
                          str(shipped), str(shots), str(ROOT / "workflows" / "pictures")],
                         capture_output=True, text=True, timeout=600)
    for path in created:
        path.unlink()
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout)


def test_workflows_load_without_errors(report):
    assert report["workflows"], "no workflows were checked"
    for name, result in report["workflows"].items():
        assert result["missing"] == [], f"{name}: missing node types {result['missing']}"
        assert result["widgetIssues"] == [], f"{name}: {result['widgetIssues']}"
        assert Path(result["screenshot"]).stat().st_size > 10_000


def test_nothing_overlaps_once_the_video_shows(report):
    """Once a video is picked, Load Video's preview grows the node downward: it must cover no other node."""
    for name, result in report["workflows"].items():
        for node_id, before, after in result["videoPreview"]:
            assert after > before + 100, f"{name}: Load Video #{node_id} did not show its preview ({before} -> {after})"
        assert result["overlaps"] == [], f"{name}: overlapping nodes {result['overlaps']}"


def test_frontend_prompt_equals_api_twin(report, comfy):
    info = comfy.object_info()
    for name, result in report["workflows"].items():
        twin = json.loads((ROOT / "tests" / "workflows" / name.replace(".json", ".api.json")).read_text())
        assert comparable_prompt(result["api"], info) == comparable_prompt(twin, info), name


def test_search_lists_every_drive_node(report, comfy):
    ours = sorted(k for k in comfy.object_info() if k.startswith("DRIVE_"))
    assert report["driveNodes"] == ours
    display = {comfy.object_info()[k]["display_name"] for k in ours}
    # each option starts with the node's name (then, by frontend, its category, pack or description)
    missing = sorted(d for d in display if not any(item.startswith(d) for item in report["searchDrive"]))
    assert not missing, f"search for DRIVE misses {missing}"


def test_dropped_pictures_restore_their_workflow(report):
    """Each README picture carries its workflow: dropping it onto the canvas rebuilds that graph."""
    pictures = sorted((ROOT / "workflows" / "pictures").glob("*.png"))
    assert pictures and sorted(report["dropped"]) == [p.name for p in pictures]
    for name, nodes in report["dropped"].items():
        workflow = json.loads((ROOT / "workflows" / (name.split("-")[0] + ".json")).read_text())
        # ids as the frontend keeps them: numbers in 1.27, text in 1.49 and newer
        assert sorted([str(i), t] for i, t in nodes) == sorted([str(n["id"]), n["type"]] for n in workflow["nodes"]), name


@pytest.fixture(scope="module")
def canvas_report(comfy, frontend_url, tmp_path_factory):
    """Track Object's pick canvas driven with the mouse (tools/frontend.js canvas) on the shipped demo clip."""
    if not _playwright_available():
        pytest.skip("needs node, playwright-core on NODE_PATH and /usr/bin/chromium (apt-get install chromium)")
    clip = comfy.input_dir / "drive_demo.mp4"
    created = not clip.exists()
    if created:
        shutil.copy(ROOT / "workflows" / "inputs" / clip.name, clip)
    shots = Path(os.environ.get("DRIVE_SCREENSHOT_DIR") or tmp_path_factory.mktemp("canvas-shots"))
    try:
        out = subprocess.run(["node", str(ROOT / "tools" / "frontend.js"), "canvas", frontend_url + "/", str(shots)],
                             capture_output=True, text=True, timeout=600)
    finally:
        if created:
            clip.unlink()
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout)


def _points(text: str) -> list[tuple[int, int]]:
    return [(p["x"], p["y"]) for p in json.loads(text)]


def _close(got, want, tol=1):
    return len(got) == len(want) and all(abs(a - b) <= tol for g, w in zip(got, want) for a, b in zip(g, w))


@pytest.mark.parametrize("scale", ["1", "0.6"])
def test_canvas_clicks_and_drag_give_frame_pixels(canvas_report, scale):
    """Clicks, a Shift+click and a drag at display scale 1 and 0.6 land in the 512x512 frames' pixels (the demo
    clip at Load Video's fit_longer_side 512), whatever the size the canvas is drawn at; points move and delete."""
    run = canvas_report["scales"][scale]
    steps = run["steps"]
    assert _close(_points(steps["clicks"]["positive_points"]), [(128, 256), (300, 200)])
    assert steps["clicks"]["picked_frame_size"] == "512x512"
    assert _close(_points(steps["shiftClick"]["negative_points"]), [(400, 64)])
    assert _close([json.loads(steps["drag"]["box"])], [[100, 120, 360, 420]])
    assert _close(_points(steps["moved"]["positive_points"]), [(128, 256), (310, 240)])
    assert steps["deleted"]["negative_points"] == "[]"
    outside = steps["outside"]
    assert outside["positive_points"] == steps["deleted"]["positive_points"], "a click outside the frame added a point"
    assert "outside" in outside["note"] and "ignored" in outside["note"]


def test_canvas_draws_at_two_sizes(canvas_report):
    widths = [canvas_report["scales"][s]["elementWidth"] for s in ("1", "0.6")]
    assert widths[1] < 0.7 * widths[0], f"the display scale did not change the canvas's on-screen size: {widths}"


def test_canvas_pick_survives_save_and_load(canvas_report):
    reloaded = canvas_report["reloaded"]
    assert reloaded["widgets"] == reloaded["saved"]
    assert reloaded["drawn"] == [2, 0, True]
    assert reloaded["frameShown"] and reloaded["note"] == "", reloaded["note"]
    prompt = reloaded["prompt"]
    assert _close(_points(prompt["positive_points"]), [(128, 256), (310, 240)])
    assert prompt["box"] == "[100,120,360,420]" and prompt["picked_frame_size"] == "512x512"
    assert "pick_canvas" not in prompt


def test_canvas_rescales_points_when_the_frames_change_size(canvas_report):
    """Load Video's longer_side 512 -> 256: the pick follows (halved) and says so; the size record follows."""
    resized = canvas_report["resized"]
    assert _close(_points(resized["positive_points"]), [(64, 128), (155, 120)])
    assert _close([json.loads(resized["box"])], [[50, 60, 180, 210]])
    assert resized["picked_frame_size"] == "256x256"
    assert "rescaled" in resized["note"]


def test_mask_preview_queues_alone_from_the_frontend(canvas_report):
    """Mask Preview selected and queued with "Queue Selected Output Nodes": the prompt runs Load Video, Track Object
    and Mask Preview only (1.27 posts just those nodes; newer frontends post the graph with the preview as the one
    partial-execution target), never the Save Video beside it."""
    queued = canvas_report["queuedAlone"]
    ids = queued["ids"]
    assert queued.get("types"), "the frontend posted no prompt"
    targets = queued["targets"]
    run = set(queued["types"]) if targets is None else None
    if targets is None:
        assert run == {ids["load"], ids["track"], ids["preview"]}, queued["types"]
    else:
        assert [str(t) for t in targets] == [ids["preview"]], targets
