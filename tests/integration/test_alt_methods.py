"""Cross-frame attention, the Pix2Video sampler and STEM attention inside a real ComfyUI.

Each graph runs the patched and the unpatched model side by side on the random SD1.5
checkpoint (64x64 px, 3 frames, 2-3 steps) and saves the latents, so the tests check what
the patches must do: the anchor frame never changes, the other frames do.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.integration

CKPT = "sd15_random_fp16.safetensors"
FRAMES = 3


def _graph() -> dict:
    return {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a wolf in the snow", "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["ckpt", 1]}},
        "empty": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": FRAMES}},
    }


def _ksampler(model: list, latent: list, cfg: float = 5.0, steps: int = 2) -> dict:
    return {"class_type": "KSampler", "inputs": {
        "seed": 7, "steps": steps, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
        "model": model, "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": latent}}


def _save(latent: list, prefix: str) -> dict:
    return {"class_type": "SaveLatent", "inputs": {"samples": latent, "filename_prefix": f"latents/{prefix}"}}


def _latents(comfy, entry: dict, node_id: str) -> torch.Tensor:
    from safetensors.torch import load_file

    info = entry["outputs"][node_id]["latents"][0]
    return load_file(str(comfy.output_dir / info["subfolder"] / info["filename"]))["latent_tensor"].float()


def _assert_anchor_kept_others_changed(patched: torch.Tensor, plain: torch.Tensor, anchor: int = 0) -> None:
    """The anchor frame differs from the unpatched run only by float noise, far below every other frame's change."""
    change = [float((patched[f] - plain[f]).abs().max()) for f in range(FRAMES)]
    others = min(c for f, c in enumerate(change) if f != anchor)
    assert others > 1e-6 * float(plain.abs().max()), f"a non-anchor frame is unchanged: {change}"
    assert change[anchor] <= 0.02 * others, f"the anchor frame changed: {change}"



def test_cross_frame_attention_with_core_ksampler(comfy):
    g = _graph()
    g["plain"] = _ksampler(["ckpt", 0], ["empty", 0])
    g["save_plain"] = _save(["plain", 0], "xf_plain")
    for mode in ("pix2video", "sparse_causal", "anchor_only"):
        g[f"patch_{mode}"] = {"class_type": "DRIVE_CrossFrameAttention", "inputs": {
            "model": ["ckpt", 0], "mode": mode, "anchor_frame": 0, "include_self": mode == "anchor_only",
            "layers": "mode default", "start_percent": 0.0, "end_percent": 1.0}}
        g[f"ks_{mode}"] = _ksampler([f"patch_{mode}", 0], ["empty", 0])
        g[f"save_{mode}"] = _save([f"ks_{mode}", 0], f"xf_{mode}")
    entry = comfy.run_ok(g)
    plain = _latents(comfy, entry, "save_plain")
    assert plain.shape == (FRAMES, 4, 8, 8)
    for mode in ("pix2video", "sparse_causal", "anchor_only"):
        _assert_anchor_kept_others_changed(_latents(comfy, entry, f"save_{mode}"), plain)


def test_pix2video_sampler_with_sampler_custom(comfy):
    g = _graph()
    g["sigmas"] = {"class_type": "BasicScheduler", "inputs": {"model": ["ckpt", 0], "scheduler": "ddim_uniform",
                                                              "steps": 3, "denoise": 1.0}}
    g["euler"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}}
    g["p2v"] = {"class_type": "DRIVE_Pix2VideoSampler", "inputs": {"weight": 100.0, "guided_fraction": 0.52,
                                                                   "anchor_frame": 1}}
    g["xf"] = {"class_type": "DRIVE_CrossFrameAttention", "inputs": {
        "model": ["ckpt", 0], "mode": "pix2video", "anchor_frame": 1, "include_self": False,
        "layers": "mode default", "start_percent": 0.0, "end_percent": 1.0}}
    for name, model, sampler in (("plain", "ckpt", "euler"), ("guided", "ckpt", "p2v"), ("full", "xf", "p2v")):
        g[name] = {"class_type": "SamplerCustom", "inputs": {
            "model": [model, 0], "add_noise": True, "noise_seed": 3, "cfg": 5.0, "positive": ["pos", 0],
            "negative": ["neg", 0], "sampler": [sampler, 0], "sigmas": ["sigmas", 0], "latent_image": ["empty", 0]}}
        g[f"save_{name}"] = _save([name, 0], f"p2v_{name}")
    entry = comfy.run_ok(g)
    plain = _latents(comfy, entry, "save_plain")
    _assert_anchor_kept_others_changed(_latents(comfy, entry, "save_guided"), plain, anchor=1)
    _assert_anchor_kept_others_changed(_latents(comfy, entry, "save_full"), plain, anchor=1)


def test_stem_attention_inverts_with_core_samplers(comfy):
    g = _graph()
    g["source"] = _ksampler(["ckpt", 0], ["empty", 0])
    g["stem"] = {"class_type": "DRIVE_STEMAttention", "inputs": {
        "model": ["ckpt", 0], "num_bases": 256, "iterations": 5, "temperature": 0.01, "chunk_frames": 0,
        "init": "gaussian", "seed": 0}}
    g["sigmas"] = {"class_type": "BasicScheduler", "inputs": {"model": ["ckpt", 0], "scheduler": "ddim_uniform",
                                                              "steps": 3, "denoise": 1.0}}
    g["flip"] = {"class_type": "FlipSigmas", "inputs": {"sigmas": ["sigmas", 0]}}
    g["euler"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}}
    for name, model in (("inv_plain", "ckpt"), ("inv_stem", "stem")):
        g[name] = {"class_type": "SamplerCustom", "inputs": {
            "model": [model, 0], "add_noise": False, "noise_seed": 0, "cfg": 1.0, "positive": ["pos", 0],
            "negative": ["pos", 0], "sampler": ["euler", 0], "sigmas": ["flip", 0], "latent_image": ["source", 0]}}
        g[f"save_{name}"] = _save([name, 0], name)
    g["ks_stem"] = _ksampler(["stem", 0], ["empty", 0], cfg=1.0)
    g["save_ks_stem"] = _save(["ks_stem", 0], "ks_stem")
    entry = comfy.run_ok(g)
    plain, stem = _latents(comfy, entry, "save_inv_plain"), _latents(comfy, entry, "save_inv_stem")
    assert torch.isfinite(stem).all() and stem.shape == plain.shape
    assert not torch.equal(stem, plain), "STEM attention left the inversion unchanged"   # plain DDIM is deterministic
    assert torch.isfinite(_latents(comfy, entry, "save_ks_stem")).all()
    assert "DRIVE STEM:" in comfy.log_text(), "STEM did not log its memory estimate"


def _one_box(model: list, latent: list, grid_size: int = 1, shuffle: bool = False, pix2video_weight: float = 0.0):
    return {"class_type": "DRIVE_MaskedCFGSampler", "inputs": {
        "model": model, "positive": ["pos", 0], "negative": ["neg", 0], "latent": latent, "steps": 2, "cfg": 5.0,
        "cfg_start": -1.0, "grid_size": grid_size, "shuffle": shuffle, "seed": 0, "max_grids_per_call": 0,
        "mask_mode": "nearest", "mask_threshold": 0.5, "pix2video_weight": pix2video_weight}}


def _cross_frame(model: list, mode: str = "pix2video") -> dict:
    return {"class_type": "DRIVE_CrossFrameAttention", "inputs": {
        "model": model, "mode": mode, "anchor_frame": 0, "include_self": False, "layers": "mode default",
        "start_percent": 0.0, "end_percent": 1.0}}


def test_engine_one_box_nodes_with_stem_and_pix2video(comfy):
    g = _graph()
    g["source"] = _ksampler(["ckpt", 0], ["empty", 0])
    for method in ("ddim", "stem"):
        g[f"inv_{method}"] = {"class_type": "DRIVE_InvertVideo", "inputs": {
            "model": ["ckpt", 0], "conditioning": ["neg", 0], "latent": ["source", 0], "steps": 2, "method": method,
            "eta": 0.5, "window_start": 0.05, "window_length": 0.2, "blend": "after", "cfg": 1.0, "grid_size": 1,
            "max_grids_per_call": 0}}
        g[f"save_inv_{method}"] = _save([f"inv_{method}", 0], f"engine_inv_{method}")
    g["xf"] = _cross_frame(["ckpt", 0])
    g["edit_plain"] = _one_box(["ckpt", 0], ["inv_ddim", 0])
    g["edit_xf"] = _one_box(["xf", 0], ["inv_ddim", 0])
    g["edit_p2v"] = _one_box(["ckpt", 0], ["inv_ddim", 0], pix2video_weight=100.0)
    for name in ("edit_plain", "edit_xf", "edit_p2v"):
        g[f"save_{name}"] = _save([name, 0], f"engine_{name}")
    entry = comfy.run_ok(g)
    ddim, stem = _latents(comfy, entry, "save_inv_ddim"), _latents(comfy, entry, "save_inv_stem")
    assert torch.isfinite(stem).all() and not torch.equal(stem, ddim)
    plain = _latents(comfy, entry, "save_edit_plain")
    _assert_anchor_kept_others_changed(_latents(comfy, entry, "save_edit_xf"), plain)
    _assert_anchor_kept_others_changed(_latents(comfy, entry, "save_edit_p2v"), plain)


def test_cross_frame_attention_refuses_the_grid_shuffle(comfy):
    from comfy_client import execution_error

    g = _graph()
    g["xf"] = _cross_frame(["ckpt", 0], "sparse_causal")
    g["edit"] = _one_box(["xf", 0], ["empty", 0], grid_size=2, shuffle=True)
    g["save"] = _save(["edit", 0], "refused")
    entry = comfy.run(g)
    assert entry["status"]["status_str"] == "error"
    assert "re-batched" in execution_error(entry).get("exception_message", "")
