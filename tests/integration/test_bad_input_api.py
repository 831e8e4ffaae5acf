"""The bad-input catalogue through the HTTP API of a real ComfyUI: what needs the server's validation, files and output folder.

Every case posts one prompt and classifies what came back (tests/bad_input_catalogue.py):
a 400 from validation or an ``execution_error`` whose text names the fix is a clear
error; a run that succeeds is checked against its expected output. A case that fails
must leave the output folder exactly as it was. Non-finite pixels are made with core
nodes only: ImageBlend with ``blend_factor`` NaN (NaN passes ComfyUI's min/max check)
pasted by ImageCompositeMasked into an 8x8 patch of clean frames.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from bad_input_catalogue import Case, assert_outcome, record_observed
from bad_input_files import Payload, write_audio_only, write_clip
from comfy_client import execution_error
from random_weights import write_random_sam2

pytestmark = pytest.mark.integration

NAN = float("nan")
SAM2_FILE = "sam2.1_hiera_tiny_random.safetensors"
MARKER = "api-payload-ran"


@pytest.fixture(scope="module")
def files(comfy) -> Path:
    """Clips in the server's input folder, weight files (good, broken, booby-trapped) in its model folders."""
    from PIL import Image
    from safetensors.torch import save_file

    from drive_ops.composite.harmonizer_model import random_state_dict

    inp, models = comfy.input_dir, comfy.models_dir
    write_clip(inp / "bi_clip.mkv", 6, 64, 64)
    write_clip(inp / "bi_odd.mkv", 3, 7, 5)
    write_clip(inp / "bi_pixel.mkv", 2, 1, 1)
    write_clip(inp / "bi_ntsc.mp4", 12, 32, 32, rate=Fraction(24000, 1001), codec="libx264", pix_fmt="yuv420p")
    full = (inp / "bi_ntsc.mp4").read_bytes()
    (inp / "bi_truncated.mp4").write_bytes(full[: len(full) // 2])
    (inp / "bi_empty.mp4").write_bytes(b"")
    (inp / "bi_random.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    Image.fromarray(np.full((5, 7, 3), 90, np.uint8)).save(inp / "bi_still.png")
    write_clip(inp / "bi_swap.mkv", 3, 16, 16)
    write_audio_only(inp / "bi_audio.m4a")
    write_random_sam2(models / "sam2" / SAM2_FILE)
    good = (models / "sam2" / SAM2_FILE).read_bytes()
    (models / "sam2" / "bi_truncated.safetensors").write_bytes(good[: len(good) // 3])
    (models / "sam2" / "bi_zero.pt").write_bytes(b"")
    marker = comfy.base / MARKER
    torch.save({"model": Payload(os.system, f"touch {marker}")}, models / "sam2" / "bi_trap.pt")
    save_file({k: v.contiguous() for k, v in random_state_dict(0).items()},
              str(models / "harmonizer" / "bi_good.safetensors"))
    (models / "harmonizer" / "bi_random.pth").write_bytes(np.random.default_rng(3).bytes(6000))
    (models / "harmonizer" / "bi_zero.pth").write_bytes(b"")
    torch.save({"w": Payload(subprocess.Popen, ["touch", str(marker)])}, models / "harmonizer" / "bi_trap.pth")
    (models / "harmonizer" / "bi_sam2.safetensors").write_bytes(good)
    return inp


# ---------------------------------------------------------------- graph pieces


def empty(width=64, height=64, frames=4, color=0x336699) -> dict:
    return {"class_type": "EmptyImage", "inputs": {"width": width, "height": height, "batch_size": frames,
                                                    "color": color}}


def with_nan_patch(graph: dict, clean: str = "img") -> list:
    """Add nodes making ``clean`` with an 8x8 NaN patch at (8, 8) in every frame; returns its output link."""
    graph["nan_src"] = empty(8, 8, 1, 0)
    graph["nan_blend"] = {"class_type": "ImageBlend", "inputs": {"image1": ["nan_src", 0], "image2": ["nan_src", 0],
                                                                 "blend_factor": NAN, "blend_mode": "normal"}}
    graph["nan_img"] = {"class_type": "ImageCompositeMasked", "inputs": {
        "destination": [clean, 0], "source": ["nan_blend", 0], "x": 8, "y": 8, "resize_source": False}}
    return ["nan_img", 0]


def box_mask(graph: dict, width=64, height=64) -> list:
    graph["m_bg"] = {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": width, "height": height}}
    graph["m_fg"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": width // 2, "height": height // 2}}
    graph["m"] = {"class_type": "MaskComposite", "inputs": {"destination": ["m_bg", 0], "source": ["m_fg", 0],
                                                            "x": width // 4, "y": height // 4, "operation": "add"}}
    return ["m", 0]


def load(video, cap=0, skip=0, nth=1, policy="keep", side=512) -> dict:
    return {"class_type": "DRIVE_LoadVideo", "inputs": {"video": video, "frame_load_cap": cap,
                                                         "skip_first_frames": skip, "select_every_nth": nth,
                                                         "size_policy": policy, "longer_side": side}}


def save(images, prefix, fmt="mp4", fps=10.0, crf=19) -> dict:
    return {"class_type": "DRIVE_SaveVideo", "inputs": {"images": images, "fps": fps, "filename_prefix": prefix,
                                                         "format": fmt, "crf": crf}}


def load_save(video, prefix, fmt="png", **load_kw) -> dict:
    return {"load": load(video, **load_kw), "save": save(["load", 0], prefix, fmt, fps=["load", 2])}


def preview(images) -> dict:
    return {"class_type": "PreviewImage", "inputs": {"images": images}}


def save_only(images_graph: dict, prefix: str, **kw) -> dict:
    g = dict(images_graph)
    g["save"] = save(["img", 0], prefix, **kw)
    return g


def nan_save(prefix: str) -> dict:
    g = {"img": empty()}
    g["save"] = save(with_nan_patch(g), prefix)
    return g


def composite_graph(nan: bool = False, blend: str = "laplacian", feather=1.0) -> dict:
    g = {"img": empty(), "edit": empty(color=0xCC8822)}
    edited = with_nan_patch(g, "edit") if nan else ["edit", 0]
    g["comp"] = {"class_type": "DRIVE_CompositeBackground", "inputs": {
        "edited": edited, "original": ["img", 0], "mask": box_mask(g), "grow": 2, "feather": feather, "blend": blend}}
    g["out"] = preview(["comp", 0])
    return g


def harmonize_graph(image=None, harmonizer: str | None = None, strength=1.0, nan=False) -> dict:
    g = {"img": empty()}
    inputs = {"image": with_nan_patch(g) if nan else ["img", 0], "mask": box_mask(g), "strength": strength,
              "temporal_smoothing": 0.96, "fps": 25.0, "frames_per_batch": 4}
    if harmonizer:
        g["h"] = {"class_type": "DRIVE_HarmonizerLoader", "inputs": {"weights": harmonizer}}
        inputs["harmonizer"] = ["h", 0]
    g["harm"] = {"class_type": "DRIVE_Harmonize", "inputs": inputs}
    g["out"] = preview(["harm", 0])
    return g


def report_graph(nan: bool) -> dict:
    g = {"img": empty(color=0x406080), "img2": empty(color=0x406081)}
    edited = with_nan_patch(g, "img2") if nan else ["img2", 0]
    g["rep"] = {"class_type": "DRIVE_EditReport", "inputs": {"original": ["img", 0], "edited": edited,
                                                             "mask": box_mask(g), "dilation_px": 2,
                                                             "flow_preset": "ultrafast", "prompt": ""}}
    g["out"] = {"class_type": "PreviewAny", "inputs": {"source": ["rep", 1]}}
    return g


TRACK_DEFAULTS = {"frame_index": 0, "negative_points": "", "individual_objects": False, "output_mode": "merged",
                  "samurai_mode": False, "stable_frames_threshold": 15, "stable_ious_threshold": 0.3,
                  "kf_score_weight": 0.25, "min_obj_score_logits": -1.0, "memory_bank_iou_threshold": 0.5,
                  "memory_bank_obj_score_threshold": 0.0, "memory_bank_kf_score_threshold": 0.0,
                  "offload_video_to_cpu": True, "offload_state_to_cpu": True}


def track_graph(model_name=SAM2_FILE, image_size=256, **prompt) -> dict:
    g = {"img": empty(frames=3)}
    g["sam"] = {"class_type": "DRIVE_SAM2Loader", "inputs": {"model_name": model_name, "precision": "fp32",
                                                             "image_size": image_size}}
    inputs = dict(TRACK_DEFAULTS, sam2_model=["sam", 0], images=["img", 0])
    inputs.update(prompt)
    g["track"] = {"class_type": "DRIVE_TrackObject", "inputs": inputs}
    g["as_image"] = {"class_type": "MaskToImage", "inputs": {"mask": ["track", 0]}}
    g["out"] = preview(["as_image", 0])
    return g


# ---------------------------------------------------------------- checks on successful runs


def _saved(comfy, entry: dict, node: str = "save") -> Path:
    item = entry["outputs"][node]["images"][0]
    return comfy.output_dir / item["subfolder"] / item["filename"]


def _stream(path: Path) -> tuple[Fraction, int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return Fraction(stream.average_rate), stream.width, stream.height, count


def _png_count(comfy, entry) -> int:
    return len(entry["outputs"]["save"]["sequence"])


def _previews(entry, node="out") -> int:
    return len(entry["outputs"][node]["images"])


def _swap_and_rerun(comfy, files: Path, prompt: dict) -> tuple[int, int]:
    """Run, replace the clip by another keeping its mtime (cp -p), run the same prompt again: frame counts."""
    first = comfy.run_ok(prompt)
    path = files / "bi_swap.mkv"
    stat = os.stat(path)
    write_clip(files / "bi_swap_new.mkv", 5, 16, 16, shade=100)
    shutil.copyfile(files / "bi_swap_new.mkv", path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = comfy.run_ok(prompt)
    return _png_count(comfy, first), _png_count(comfy, second)


# ---------------------------------------------------------------- the table

TRACK_FIX = ("outside the 64x64 frames", "after Load Video's")

CASES = [
    # Load Video
    (Case("load-video-int", "DRIVE_LoadVideo", "video 123 (a number) through the API",
          ("video must be a file name", "got int 123")), lambda f: load_save(123, "bi/int")),
    (Case("load-video-list", "DRIVE_LoadVideo", 'video {"__value__": ["a.mp4"]} (a list value)',
          ("video must be a file name", "got list")),
     lambda f: load_save({"__value__": ["a.mp4"]}, "bi/list")),
    (Case("load-video-missing", "DRIVE_LoadVideo", "a file that is not there", ("video not found", "Put it in ComfyUI/input")),
     lambda f: load_save("bi_missing.mp4", "bi/missing")),
    (Case("load-video-traversal", "DRIVE_LoadVideo", "video ../../etc/passwd", ("points outside ComfyUI's folders",)),
     lambda f: load_save("../../etc/passwd", "bi/trav")),
    (Case("load-video-empty", "DRIVE_LoadVideo", "a 0-byte mp4", ("bi_empty.mp4 is empty (0 bytes",)),
     lambda f: load_save("bi_empty.mp4", "bi/empty")),
    (Case("load-video-random", "DRIVE_LoadVideo", "random bytes as mp4", ("is not a video file",)),
     lambda f: load_save("bi_random.mp4", "bi/random")),
    (Case("load-video-truncated", "DRIVE_LoadVideo", "an mp4 cut in half", ("truncated", "Copy or export")),
     lambda f: load_save("bi_truncated.mp4", "bi/trunc")),
    (Case("load-video-audio-only", "DRIVE_LoadVideo", "an audio-only m4a", ("has no video stream",)),
     lambda f: load_save("bi_audio.m4a", "bi/audio")),
    (Case("load-video-still", "DRIVE_LoadVideo", "a still png: one frame",
          check=lambda c, e: _png_count(c, e) == 1), lambda f: load_save("bi_still.png", "bi/still")),
    (Case("load-video-1x1", "DRIVE_LoadVideo", "a 1x1 clip saved as png", check=lambda c, e: _png_count(c, e) == 2),
     lambda f: load_save("bi_pixel.mkv", "bi/pixel")),
    (Case("load-video-7x5-mp4", "DRIVE_LoadVideo -> DRIVE_SaveVideo", "a 7x5 clip to mp4 (padded to 8x6, with a note)",
          check=lambda c, e: _stream(_saved(c, e))[1:] == (8, 6, 3) and "padded to 8x6" in e["outputs"]["save"]["text"][0]),
     lambda f: load_save("bi_odd.mkv", "bi/odd", "mp4")),
    (Case("load-video-7x5-crop", "DRIVE_LoadVideo", "a 7x5 clip cropped to multiples of 8", ("size_policy keep",)),
     lambda f: load_save("bi_odd.mkv", "bi/odd_crop", policy="crop_to_multiple_of_8")),
    (Case("load-video-skip-all", "DRIVE_LoadVideo", "skip_first_frames 99 on 6 frames", ("has 6 frames", "below 6")),
     lambda f: load_save("bi_clip.mkv", "bi/skip", skip=99)),
    (Case("load-video-cap-negative", "DRIVE_LoadVideo", "frame_load_cap -1", ("Value -1 smaller than min of 0",
                                                                             "frame_load_cap")),
     lambda f: load_save("bi_clip.mkv", "bi/cap", cap=-1)),
    (Case("load-video-nth-zero", "DRIVE_LoadVideo", "select_every_nth 0", ("smaller than min of 1", "select_every_nth")),
     lambda f: load_save("bi_clip.mkv", "bi/nth", nth=0)),
    (Case("load-video-policy", "DRIVE_LoadVideo", "size_policy 'huge' (0.3.64 does not check V3 combos)",
          ("size_policy 'huge' is not one of its options (keep, crop_to_multiple_of_8, fit_longer_side)",)),
     lambda f: load_save("bi_clip.mkv", "bi/policy", policy="huge")),
    (Case("load-video-longer-side-text", "DRIVE_LoadVideo", 'longer_side "big"', ("Failed to convert", "longer_side")),
     lambda f: load_save("bi_clip.mkv", "bi/side", policy="fit_longer_side", side="big")),
    (Case("load-video-cp-p", "DRIVE_LoadVideo", "the clip replaced with cp -p between two identical prompts",
          check=lambda c, r: r == (3, 5)), "swap"),
    (Case("load-save-ntsc", "DRIVE_LoadVideo -> DRIVE_SaveVideo", "a 24000/1001 clip loaded and saved as mp4",
          check=lambda c, e: _stream(_saved(c, e))[0] == Fraction(24000, 1001)),
     lambda f: load_save("bi_ntsc.mp4", "bi/ntsc", "mp4")),
    # Save Video
    (Case("save-nul-prefix", "DRIVE_SaveVideo", "a NUL byte in filename_prefix (left a hidden mp4)",
          ("control character '\\x00'", "remove it")), lambda f: save_only({"img": empty()}, "bi/a\u0000b")),
    (Case("save-empty-prefix", "DRIVE_SaveVideo", "an empty filename_prefix (wrote ._00001_.mp4)",
          check=lambda c, e: _saved(c, e).parent.name == "DRIVE" and _saved(c, e).name.startswith("video_")
          and "filename_prefix is empty" in e["outputs"]["save"]["text"][0]),
     lambda f: save_only({"img": empty(frames=2)}, "")),
    (Case("save-absolute-prefix", "DRIVE_SaveVideo", "filename_prefix /tmp/bi_escape", ("is an absolute path",)),
     lambda f: save_only({"img": empty()}, "/tmp/bi_escape")),
    (Case("save-traversal-prefix", "DRIVE_SaveVideo", "filename_prefix ../../bi_escape", ("climbs out with '..'",
                                                                                          "outside the output folder")),
     lambda f: save_only({"img": empty()}, "../../bi_escape")),
    (Case("save-gif-250", "DRIVE_SaveVideo", "gif at 250 fps (ZeroDivisionError, file deleted)",
          check=lambda c, e: _stream(_saved(c, e))[0] == 50 and "saved at 50 fps" in e["outputs"]["save"]["text"][0]),
     lambda f: save_only({"img": empty(16, 16, 6)}, "bi/fast", fmt="gif", fps=250.0)),
    (Case("save-fps-nan", "DRIVE_SaveVideo", "fps NaN through the API", ("fps must be a positive number, got nan",)),
     lambda f: save_only({"img": empty()}, "bi/fpsnan", fps=NAN)),
    (Case("save-fps-zero", "DRIVE_SaveVideo", "fps 0", ("smaller than min of 0.01", "fps")),
     lambda f: save_only({"img": empty()}, "bi/fps0", fps=0.0)),
    (Case("save-crf-mp4", "DRIVE_SaveVideo", "crf 60 for mp4", ("crf 60 is out of range for mp4", "0-51")),
     lambda f: save_only({"img": empty()}, "bi/crf", crf=60)),
    (Case("save-format", "DRIVE_SaveVideo", "format avi", ("format 'avi' is not one of its options (mp4, webm, gif, png)",)),
     lambda f: save_only({"img": empty()}, "bi/avi", fmt="avi")),
    (Case("save-nan-pixels", "DRIVE_SaveVideo", "an 8x8 NaN patch (was written as black)",
          ("the images to save holds non-finite values (768 NaN) in 4 of 4 frames", "--fp32-vae")),
     lambda f: nan_save("bi/nan")),
    # Composite / Harmonize / Edit Report with non-finite pixels from core nodes
    (Case("composite-nan-api", "DRIVE_CompositeBackground", "NaN patch in the edited frames, laplacian blend",
          ("the edited input holds non-finite values", "--bf16-vae")), lambda f: composite_graph(nan=True)),
    (Case("composite-feather-nan-api", "DRIVE_CompositeBackground", "feather NaN", ("feather is nan",)),
     lambda f: composite_graph(feather=NAN)),
    (Case("composite-ok-api", "DRIVE_CompositeBackground", "clean frames", check=lambda c, e: _previews(e) == 4),
     lambda f: composite_graph()),
    (Case("harmonize-nan-api", "DRIVE_Harmonize", "NaN patch into Harmonize (the old Lab fallback: all NaN)",
          ("the image input holds non-finite values",)), lambda f: harmonize_graph(nan=True)),
    (Case("harmonize-strength-nan-api", "DRIVE_Harmonize", "strength NaN", ("strength is nan",)),
     lambda f: harmonize_graph(strength=NAN)),
    (Case("harmonize-strength-big", "DRIVE_Harmonize", "strength 5 (max 2)", ("bigger than max of 2.0", "strength")),
     lambda f: harmonize_graph(strength=5.0)),
    (Case("report-nan-api", "DRIVE_EditReport", "NaN patch in the edited frames (said 'mask covers every pixel')",
          ("the edited clip holds non-finite values",)), lambda f: report_graph(nan=True)),
    # Load Harmonizer
    (Case("harmonizer-random", "DRIVE_HarmonizerLoader", "random bytes as harmonizer .pth",
          ("bi_random.pth", "is not a PyTorch checkpoint", "ZHKKKe/Harmonizer")),
     lambda f: harmonizer_graph("bi_random.pth")),
    (Case("harmonizer-zero", "DRIVE_HarmonizerLoader", "a 0-byte .pth (gave an empty EOFError)",
          ("bi_zero.pth", "is empty (0 bytes")), lambda f: harmonizer_graph("bi_zero.pth")),
    (Case("harmonizer-trap", "DRIVE_HarmonizerLoader", "a .pth whose pickle calls subprocess.Popen",
          ("bi_trap.pth", "holds Python code", "refused unread")), lambda f: harmonizer_graph("bi_trap.pth")),
    (Case("harmonizer-sam2-file", "DRIVE_HarmonizerLoader", "a SAM 2 checkpoint in models/harmonizer",
          ("not Harmonizer's", "harmonizer.pth")), lambda f: harmonizer_graph("bi_sam2.safetensors")),
    (Case("harmonizer-good", "DRIVE_HarmonizerLoader", "random weights in Harmonizer's layout",
          check=lambda c, e: _previews(e) == 4), lambda f: harmonizer_graph("bi_good.safetensors")),
    (Case("harmonizer-not-listed", "DRIVE_HarmonizerLoader", "a file name not in models/harmonizer",
          ("'bi_absent.pth' not found in the 'harmonizer' model folder", "put it there")),
     lambda f: harmonizer_graph("bi_absent.pth")),
    # Load SAM2 Model
    (Case("sam2-truncated", "DRIVE_SAM2Loader", "a truncated .safetensors (raw SafetensorError)",
          ("bi_truncated.safetensors", "truncated", "The sam2 model folder is")),
     lambda f: track_graph("bi_truncated.safetensors", positive_points="[[10, 10]]")),
    (Case("sam2-zero", "DRIVE_SAM2Loader", "a 0-byte .pt", ("bi_zero.pt", "is empty (0 bytes")),
     lambda f: track_graph("bi_zero.pt", positive_points="[[10, 10]]")),
    (Case("sam2-trap", "DRIVE_SAM2Loader", "a .pt whose pickle calls os.system",
          ("bi_trap.pt", "posix.system", "refused unread")),
     lambda f: track_graph("bi_trap.pt", positive_points="[[10, 10]]")),
    (Case("sam2-image-size", "DRIVE_SAM2Loader", "image_size 1000 (not a multiple of 32)",
          ("image_size 1000 must be a multiple of 32", "use 992 or 1024")),
     lambda f: track_graph(image_size=1000, positive_points="[[10, 10]]")),
    (Case("sam2-image-size-small", "DRIVE_SAM2Loader", "image_size 100 (min 256)", ("smaller than min of 256",)),
     lambda f: track_graph(image_size=100, positive_points="[[10, 10]]")),
    # Track Object
    (Case("track-point-outside", "DRIVE_TrackObject", "a point at (5000, -20) on 64x64 frames", TRACK_FIX),
     lambda f: track_graph(positive_points='[{"x": 5000, "y": -20}]')),
    (Case("track-box-nan", "DRIVE_TrackObject", "a NaN box (gave an empty mask)", ("value 1 of box 1 is nan",)),
     lambda f: track_graph(bboxes={"__value__": [[NAN, 4, 30, 30]]})),
    (Case("track-point-string", "DRIVE_TrackObject", 'x "abc"', ("'abc' (str), not a number",)),
     lambda f: track_graph(positive_points='[{"x": "abc", "y": 3}]')),
    (Case("track-normalized-as-pixels", "DRIVE_TrackObject", "Points Editor normalize=True read as pixels",
          ("look normalized", "points_normalized on")),
     lambda f: track_graph(positive_points='[{"x": 0.5, "y": 0.4}]')),
    (Case("track-normalized", "DRIVE_TrackObject", "normalized points with points_normalized on",
          check=lambda c, e: _previews(e) == 3),
     lambda f: track_graph(positive_points='[{"x": 0.5, "y": 0.4}]', points_normalized=True)),
    (Case("track-xywh", "DRIVE_TrackObject", "an xywh box with bbox_format xywh", check=lambda c, e: _previews(e) == 3),
     lambda f: track_graph(bboxes={"__value__": [[8, 8, 20, 20]]}, bbox_format="xywh")),
    (Case("track-xywh-as-xyxy", "DRIVE_TrackObject", "an xywh box read as corners", ("set bbox_format to xywh",)),
     lambda f: track_graph(bboxes={"__value__": [[30, 10, 20, 20]]})),
    (Case("track-frame-index", "DRIVE_TrackObject", "frame_index 7 on 3 frames", ("past the clip's last frame (2)",)),
     lambda f: track_graph(positive_points="[[10, 10]]", frame_index=7)),
    (Case("track-no-prompt", "DRIVE_TrackObject", "no points, box or mask", ("give the tracker a prompt",)),
     lambda f: track_graph()),
    (Case("track-output-mode", "DRIVE_TrackObject", "output_mode 'stacked' (was run as merged)",
          ("output_mode 'stacked' is not one of its options (merged, per_object)",)),
     lambda f: track_graph(positive_points="[[10, 10]]", output_mode="stacked")),
    (Case("track-bbox-format", "DRIVE_TrackObject", "bbox_format 'cxcywh' (was read as xyxy)",
          ("bbox_format 'cxcywh' is not one of its options (xyxy, xywh)",)),
     lambda f: track_graph(bboxes={"__value__": [[8, 8, 20, 20]]}, bbox_format="cxcywh")),
    (Case("track-samurai-many", "DRIVE_TrackObject", "samurai_mode with two objects",
          ("SAMURAI mode tracks a single object",)),
     lambda f: track_graph(positive_points="[[10, 10], [40, 40]]", individual_objects=True, samurai_mode=True)),
]


def harmonizer_graph(weights: str) -> dict:
    return harmonize_graph(harmonizer=weights)


def _output_files(comfy) -> set[str]:
    return {str(p.relative_to(comfy.output_dir)) for p in comfy.output_dir.rglob("*")}


def _error_text(status: int, body: dict, entry: dict | None) -> str:
    if status != 200:
        parts = [body.get("error", {}).get("message", "")]
        for node in body.get("node_errors", {}).values():
            parts += [f"{e.get('message', '')}: {e.get('details', '')}" for e in node.get("errors", [])]
        return " | ".join(parts)
    return execution_error(entry).get("exception_message", "")


@pytest.mark.parametrize("case,build", CASES, ids=[c.id for c, _ in CASES])
def test_bad_input_api(case: Case, build, comfy, files):
    before = _output_files(comfy)
    if build == "swap":
        prompt = load_save("bi_swap.mkv", "bi/swap")
        try:
            result = _swap_and_rerun(comfy, files, prompt)
        except AssertionError as err:
            observed, detail = record_observed(case, "unclear", str(err))
        else:
            ok = case.check(comfy, result)
            observed, detail = record_observed(case, "correct output" if ok else "silent", f"frame counts {result}")
        assert_outcome(case, observed, detail)
        return
    prompt = build(files)
    start = time.time()
    status, body = comfy.submit(prompt)
    entry = comfy.wait(body["prompt_id"], timeout=600) if status == 200 else None
    failed = status != 200 or entry["status"]["status_str"] != "success"
    if failed:
        text = _error_text(status, body, entry)
        written = sorted(_output_files(comfy) - before)
        if written:
            observed, detail = "silent", f"failed ({text}) but left {written} in the output folder"
        elif case.check is None and all(n in text for n in case.needles):
            observed, detail = "clear error", text
        else:
            observed, detail = "unclear", text
    elif case.check is None:
        observed, detail = "silent", f"ran in {time.time() - start:.1f} s: {json.dumps(entry['outputs'])[:300]}"
    else:
        ok = case.check(comfy, entry)
        observed, detail = "correct output" if ok else "silent", json.dumps(entry["outputs"])[:300]
    record_observed(case, observed, detail)
    assert not (comfy.base / MARKER).exists(), "a booby-trapped pickle ran its payload"
    assert_outcome(case, observed, detail)
