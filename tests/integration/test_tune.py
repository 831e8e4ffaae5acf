"""Tune-A-Video inside a real ComfyUI 0.3.64: the in-process checks, and tune -> save -> load -> invert -> edit.

The in-process script (tune_inprocess.py, a tiny SD1.5-shaped UNet) checks what must hold
whatever the weights: only the to_q weights change and only temporal layers are added,
the input MODEL and the shared UNet stay bit-identical after a run and after a cancel,
fresh temporal layers leave the output unchanged, a saved file reloads to the same
outputs, other base models are refused. The server test runs the nodes on the random
full-size SD1.5 checkpoint at 64x64 with 3 frames and 2 steps.
"""

from __future__ import annotations

import pytest
import torch

from comfy_client import execution_error
from comfy_inprocess import run_checks_script

pytestmark = pytest.mark.integration

CKPT = "sd15_random_fp16.safetensors"
FRAMES, SIZE = 3, 64


def test_tuning_checks_in_process():
    run_checks_script("tune_inprocess.py", timeout=900)


def _source() -> dict:
    return {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "caption": {"class_type": "CLIPTextEncode", "inputs": {"text": "a ball rolls", "clip": ["ckpt", 1]}},
        "edit_text": {"class_type": "CLIPTextEncode", "inputs": {"text": "a square slides", "clip": ["ckpt", 1]}},
        "empty": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["ckpt", 1]}},
        "img": {"class_type": "EmptyImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": FRAMES,
                                                        "color": 0x4080C0}},
        "enc": {"class_type": "VAEEncode", "inputs": {"pixels": ["img", 0], "vae": ["ckpt", 2]}},
    }


def _edit(model: list, latent: list, grid_size: int = 1, shuffle: bool = False) -> dict:
    return {"class_type": "DRIVE_MaskedCFGSampler", "inputs": {
        "model": model, "positive": ["edit_text", 0], "negative": ["empty", 0], "latent": latent, "steps": 2,
        "cfg": 12.5, "cfg_start": -1.0, "grid_size": grid_size, "shuffle": shuffle, "seed": 0,
        "max_grids_per_call": 0, "mask_mode": "nearest", "mask_threshold": 0.5}}


def test_tune_save_load_invert_edit(comfy):
    g = _source()
    g["tune"] = {"class_type": "DRIVE_TuneAVideo", "inputs": {
        "model": ["ckpt", 0], "latent": ["enc", 0], "conditioning": ["caption", 0], "steps": 2,
        "learning_rate": 3e-5, "trainable": "tune_a_video", "lora_rank": 4, "frames_per_step": 0,
        "gradient_checkpointing": True, "training_dtype": "bf16", "seed": 33, "sparse_causal": True}}
    g["save"] = {"class_type": "DRIVE_SaveTunedVideoModel", "inputs": {"model": ["tune", 0],
                                                                       "filename_prefix": "tests/clip"}}
    g["show"] = {"class_type": "PreviewAny", "inputs": {"source": ["tune", 2]}}
    comfy.run_ok(g, timeout=1800)
    files = sorted((comfy.models_dir / "drive_tuned" / "tests").glob("clip_*.safetensors"))
    assert files, "Save Tuned Video Model wrote nothing into models/drive_tuned"
    from safetensors import safe_open

    with safe_open(str(files[-1]), framework="pt") as f:
        names, meta = list(f.keys()), f.metadata()
    assert meta["format"] == "drive_tuned_video_model" and "base_hash" in meta and "recipe" in meta
    assert all(".attn_temp." in n or n.endswith(("attn1.to_q.diff", "attn2.to_q.diff")) for n in names)
    assert sum(n.endswith(".to_q.diff") for n in names) == 32  # SD1.5: 16 transformer blocks, attn1 + attn2

    g = _source()
    g["load"] = {"class_type": "DRIVE_LoadTunedVideoModel", "inputs": {
        "model": ["ckpt", 0], "tuned_name": f"tests/{files[-1].name}"}}
    g["inv"] = {"class_type": "DRIVE_InvertVideo", "inputs": {
        "model": ["load", 0], "conditioning": ["empty", 0], "latent": ["enc", 0], "steps": 2, "method": "ddim",
        "eta": 0.5, "window_start": 0.05, "window_length": 0.2, "blend": "after", "cfg": 1.0, "grid_size": 1,
        "max_grids_per_call": 0}}
    g["edit"] = _edit(["load", 0], ["inv", 0])
    g["save"] = {"class_type": "SaveLatent", "inputs": {"samples": ["edit", 0], "filename_prefix": "tune/edit"}}
    entry = comfy.run_ok(g, timeout=1800)
    from safetensors.torch import load_file

    info = entry["outputs"]["save"]["latents"][0]
    edited = load_file(str(comfy.output_dir / info["subfolder"] / info["filename"]))["latent_tensor"]
    assert edited.shape == (FRAMES, 4, SIZE // 8, SIZE // 8) and torch.isfinite(edited).all()

    g["edit"] = _edit(["load", 0], ["inv", 0], grid_size=2, shuffle=True)
    g["save"]["inputs"]["filename_prefix"] = "tune/refused"
    entry = comfy.run(g, timeout=900)
    assert entry["status"]["status_str"] == "error"
    assert "Tune-A-Video temporal layers" in execution_error(entry).get("exception_message", "")
