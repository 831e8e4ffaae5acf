"""DRIVE_EditReport / DRIVE_CompareStrip inside a real ComfyUI, on frames made by core nodes and PNGs."""

from __future__ import annotations

import numpy as np
import pytest

from comfy_client import execution_error

pytestmark = pytest.mark.integration

W, H, FRAMES = 64, 48, 3


def write_frames(input_dir, prefix: str, edit: bool) -> list[str]:
    """A textured clip moving 2 px per frame; ``edit`` paints a grey box in the middle (the 'object')."""
    import cv2

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8)
    base = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
    names = []
    for i in range(FRAMES):
        frame = np.roll(base, 2 * i, axis=1).copy()
        if edit:
            frame[16:32, 24:40] = 128
        name = f"{prefix}_{i}.png"
        cv2.imwrite(str(input_dir / name), frame)
        names.append(name)
    return names


def write_mask(input_dir) -> str:
    """RGBA PNG whose alpha is 0 over the box: LoadImage's MASK output (1 - alpha) is 1 there."""
    import cv2

    rgba = np.full((H, W, 4), 255, dtype=np.uint8)
    rgba[16:32, 24:40, 3] = 0
    cv2.imwrite(str(input_dir / "mask.png"), rgba)
    return "mask.png"


def batch_of(prompt: dict, names: list[str], start: int) -> list:
    """LoadImage each PNG and chain core ImageBatch nodes; returns the link to the clip."""
    link = None
    for k, name in enumerate(names):
        load = str(start + 2 * k)
        prompt[load] = {"class_type": "LoadImage", "inputs": {"image": name}}
        if link is None:
            link = [load, 0]
        else:
            batch = str(start + 2 * k + 1)
            prompt[batch] = {"class_type": "ImageBatch", "inputs": {"image1": link, "image2": [load, 0]}}
            link = [batch, 0]
    return link


def report_node(original: list, edited: list, mask: list | None = None) -> dict:
    inputs = {"original": original, "edited": edited, "dilation_px": 3, "flow_preset": "fast", "prompt": ""}
    if mask is not None:
        inputs["mask"] = mask
    return {"class_type": "DRIVE_EditReport", "inputs": inputs}


def test_object_info_schema(comfy):
    info = comfy.object_info()
    report = info["DRIVE_EditReport"]
    assert report["output"] == ["IMAGE", "STRING", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "FLOAT"]
    assert set(report["input"]["optional"]) == {"mask", "clip_vision", "clip"}
    assert info["DRIVE_CompareStrip"]["output"] == ["IMAGE"]


def test_report_and_strip_on_png_frames(comfy):
    src = write_frames(comfy.input_dir, "src", edit=False)
    edited = write_frames(comfy.input_dir, "edit", edit=True)
    mask_png = write_mask(comfy.input_dir)
    prompt: dict = {}
    src_link = batch_of(prompt, src, 10)
    edit_link = batch_of(prompt, edited, 30)
    prompt["50"] = {"class_type": "LoadImage", "inputs": {"image": mask_png}}
    prompt["1"] = report_node(src_link, edit_link, ["50", 1])
    prompt["2"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    prompt["3"] = {"class_type": "PreviewAny", "inputs": {"source": ["1", 1]}}
    prompt["4"] = {"class_type": "PreviewAny", "inputs": {"source": ["1", 2]}}
    prompt["5"] = {"class_type": "DRIVE_CompareStrip",
                   "inputs": {"source": src_link, "edited": edit_link, "mask": ["50", 1], "frames": "0, -1"}}
    prompt["6"] = {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "DRIVE/strip"}}
    entry = comfy.run_ok(prompt, timeout=300)
    outputs = entry["outputs"]
    assert len(outputs["2"]["images"]) == 1
    summary = outputs["3"]["text"][0]
    assert "background PSNR" in summary and "warp error" in summary and "CLIP" not in summary
    assert "nan" not in summary.lower()
    assert float(outputs["4"]["text"][0]) == float("inf")  # the edit stays inside the dilated mask
    import cv2

    saved = outputs["6"]["images"][0]
    strip = cv2.imread(str(comfy.output_dir / saved["subfolder"] / saved["filename"]))
    assert strip.shape == (2 * H + 4, 3 * W + 2 * 4, 3)


def test_constant_frames_from_empty_image(comfy):
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 4, "color": 0x406080}},
        "2": report_node(["1", 0], ["1", 0]),
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["2", 1]}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": ["2", 6]}},
    }
    outputs = comfy.run_ok(prompt, timeout=300)["outputs"]
    summary = outputs["4"]["text"][0]
    assert "nan" not in summary.lower() and "flicker ratio    1.000" in summary
    assert float(outputs["5"]["text"][0]) == -1.0  # CLIP-T sentinel without CLIP models


def test_frame_count_mismatch_names_the_fix(comfy):
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 4, "color": 0}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 3, "color": 0}},
        "3": report_node(["1", 0], ["2", 0]),
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    entry = comfy.run(prompt, timeout=300)
    assert entry["status"]["status_str"] == "error"
    assert "frames" in execution_error(entry).get("exception_message", "")


def import_pack_nodes():
    """Import the pack as ComfyUI does (a package under an arbitrary name), plus ComfyUI itself."""
    import torch
    from comfy_inprocess import load_pack, start_comfy

    start_comfy(cpu=not torch.cuda.is_available())  # --cpu is read when comfy.model_management is first imported
    return load_pack()("nodes.evaluate")


def tiny_clip_vision(tmp_path, projection_dim: int):
    """ComfyUI's own ClipVisionModel on a tiny config, with seeded random weights (no download)."""
    import json

    import torch

    from comfy.clip_vision import ClipVisionModel

    config = {"hidden_act": "quick_gelu", "hidden_size": 32, "image_size": 224, "intermediate_size": 64,
              "layer_norm_eps": 1e-5, "model_type": "clip_vision_model", "num_attention_heads": 2,
              "num_channels": 3, "num_hidden_layers": 2, "patch_size": 32, "projection_dim": projection_dim}
    path = tmp_path / "tiny_clip_vision.json"
    path.write_text(json.dumps(config))
    model = ClipVisionModel(str(path))
    g = torch.Generator().manual_seed(0)
    sd = {k: (torch.randn(v.shape, generator=g) * 0.05 if v.dim() > 1 else torch.ones(v.shape) if "weight" in k
              else torch.zeros(v.shape)) for k, v in model.get_sd().items()}
    model.load_sd(sd)
    return model


def test_clip_scores_through_comfy_models(tmp_path):
    """CLIP-T / CLIP-F through ComfyUI's CLIP vision encode_image and CLIP.encode_from_tokens (random weights)."""
    import math
    import os
    from pathlib import Path

    import torch

    ckpt = Path(os.environ["COMFYUI_DIR"]) / "models" / "checkpoints" / "sd15_random_fp16.safetensors"
    if not ckpt.is_file():
        pytest.skip(f"{ckpt} is absent (the harness's random-weight SD1.5 checkpoint)")
    nodes_metrics = import_pack_nodes()
    import comfy.sd

    clip = comfy.sd.load_checkpoint_guess_config(str(ckpt), output_vae=False, output_model=False)[1]
    vision = tiny_clip_vision(tmp_path, projection_dim=768)  # CLIP-L's pooled text size
    g = torch.Generator().manual_seed(0)
    original = torch.rand(3, 32, 32, 3, generator=g)
    edited = (original * 0.8).clamp(0, 1)
    out = nodes_metrics.EditReport.execute(original=original, edited=edited, dilation_px=2, flow_preset="fast",
                                           prompt="a red box", clip_vision=vision, clip=clip)
    plot, summary, *numbers = out.result
    clip_t, clip_f = numbers[-2:]
    assert -100 <= clip_t <= 100 and -100 <= clip_f <= 100 and clip_t != -1.0
    assert not any(math.isnan(x) for x in numbers)
    assert "CLIP-T" in summary and "CLIP-F" in summary and "projected space" in summary
    assert plot.shape[0] == 1 and plot.shape[-1] == 3
    only_f = nodes_metrics.EditReport.execute(original=original, edited=edited, dilation_px=2, flow_preset="fast",
                                              prompt="", clip_vision=vision).result
    assert only_f[-2] == -1.0 and only_f[-1] == pytest.approx(clip_f)
    with pytest.raises(ValueError, match="same CLIP"):
        nodes_metrics.EditReport.execute(original=original, edited=edited, dilation_px=2, flow_preset="fast",
                                         prompt="a red box", clip_vision=tiny_clip_vision(tmp_path, 512), clip=clip)
    with pytest.raises(ValueError, match="clip_vision"):
        nodes_metrics.EditReport.execute(original=original, edited=edited, dilation_px=2, flow_preset="fast",
                                         prompt="a red box", clip=clip)
