"""The editing engine inside a real ComfyUI 0.3.64 with the random-weight SD1.5 checkpoint.

8 frames of 64x64, 2-3 steps. Server tests run API-format prompts; the ControlNet test
runs ``editing_inprocess.py`` in a subprocess (ComfyUI imported in-process, a tiny
SD1.5-shaped UNet and ControlNet with random weights), because a full-size random SD1.5
ControlNet file is ~0.7 GB to write and load on these machines; that script drives the
real ``comfy.sample`` path and checks the gridded hint shapes, parity with stock ComfyUI
at grid size 1, and that the upstream MODEL / CONDITIONING / ControlNet are untouched.
"""

from __future__ import annotations

import pytest
import torch

from comfy_inprocess import run_checks_script

pytestmark = pytest.mark.integration

CKPT = "sd15_random_fp16.safetensors"
FRAMES, SIZE = 8, 64


def base_graph(prefix: str) -> dict:
    """Checkpoint, prompts, 8 encoded frames and a square mask (pixels 16..47)."""
    return {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": f"a silver robot {prefix}", "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["ckpt", 1]}},
        "img": {"class_type": "EmptyImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": FRAMES,
                                                        "color": 0x4080C0}},
        "enc": {"class_type": "VAEEncode", "inputs": {"pixels": ["img", 0], "vae": ["ckpt", 2]}},
        "bg": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": SIZE, "height": SIZE}},
        "fg": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 32, "height": 32}},
        "mask": {"class_type": "MaskComposite", "inputs": {"destination": ["bg", 0], "source": ["fg", 0], "x": 16,
                                                           "y": 16, "operation": "add"}},
    }


def save_latent(node: str, source: list, prefix: str) -> dict:
    return {node: {"class_type": "SaveLatent", "inputs": {"samples": source, "filename_prefix": f"drive_test/{prefix}"}}}


def load_latent(comfy, prefix: str) -> torch.Tensor:
    from safetensors.torch import load_file

    files = sorted((comfy.output_dir / "drive_test").glob(f"{prefix}_*.latent"))
    assert files, f"no latent saved for {prefix}"
    return load_file(str(files[-1]))["latent_tensor"]



def test_one_box_invert_and_masked_sampler(comfy):
    g = base_graph("onebox")
    g["inv"] = {"class_type": "DRIVE_InvertVideo", "inputs": {
        "model": ["ckpt", 0], "conditioning": ["neg", 0], "latent": ["enc", 0], "steps": 3, "method": "easyinv",
        "eta": 0.5, "window_start": 0.05, "window_length": 0.6, "blend": "after", "cfg": 1.0, "grid_size": 1,
        "max_grids_per_call": 0}}
    g["edit"] = {"class_type": "DRIVE_MaskedCFGSampler", "inputs": {
        "model": ["ckpt", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent": ["inv", 0], "steps": 3,
        "cfg": 7.5, "cfg_start": 0.0, "grid_size": 2, "shuffle": True, "seed": 1, "max_grids_per_call": 1,
        "mask_mode": "nearest", "mask_threshold": 0.5, "mask": ["mask", 0]}}
    g["dec"] = {"class_type": "VAEDecode", "inputs": {"samples": ["edit", 0], "vae": ["ckpt", 2]}}
    g["save"] = {"class_type": "SaveImage", "inputs": {"images": ["dec", 0], "filename_prefix": "drive_test/onebox"}}
    g.update(save_latent("save_inv", ["inv", 0], "onebox_inv"))
    g.update(save_latent("save_edit", ["edit", 0], "onebox_edit"))
    g.update(save_latent("save_enc", ["enc", 0], "onebox_enc"))
    comfy.run_ok(g)
    encoded, inverted, edited = (load_latent(comfy, f"onebox_{p}") for p in ("enc", "inv", "edit"))
    assert inverted.shape == edited.shape == encoded.shape == (FRAMES, 4, SIZE // 8, SIZE // 8)
    assert torch.isfinite(inverted).all() and torch.isfinite(edited).all()
    assert float((inverted - encoded).abs().mean()) > 0.1 * float(encoded.abs().mean())
    assert len(list((comfy.output_dir / "drive_test").glob("onebox_*.png"))) == FRAMES


def test_patch_nodes_with_core_ksampler_and_sampler_custom_advanced(comfy):
    g = base_graph("patch")
    g["grid"] = {"class_type": "DRIVE_RAVEGridPatch", "inputs": {"model": ["ckpt", 0], "grid_size": 2, "shuffle": True,
                                                                 "seed": 0, "max_grids_per_call": 0}}
    g["mcfg"] = {"class_type": "DRIVE_MaskedCFGPatch", "inputs": {"model": ["grid", 0], "mask": ["mask", 0],
                                                                  "cfg_start": 0.0, "mask_mode": "area",
                                                                  "mask_threshold": 0.5}}
    g["ks"] = {"class_type": "KSampler", "inputs": {
        "model": ["mcfg", 0], "seed": 3, "steps": 2, "cfg": 7.0, "sampler_name": "ddim", "scheduler": "ddim_uniform",
        "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["enc", 0], "denoise": 1.0}}
    # inversion with SamplerCustomAdvanced + FlipSigmas + DRIVE_EasyInvSampler, then editing on the patched model
    g["sched"] = {"class_type": "BasicScheduler", "inputs": {"model": ["ckpt", 0], "scheduler": "ddim_uniform",
                                                             "steps": 3, "denoise": 1.0}}
    g["flip"] = {"class_type": "FlipSigmas", "inputs": {"sigmas": ["sched", 0]}}
    g["nonoise"] = {"class_type": "DisableNoise", "inputs": {}}
    g["easyinv"] = {"class_type": "DRIVE_EasyInvSampler", "inputs": {"eta": 0.5, "window_start": 0.05,
                                                                      "window_length": 0.6, "blend": "before"}}
    g["inv_guider"] = {"class_type": "CFGGuider", "inputs": {"model": ["grid", 0], "positive": ["neg", 0],
                                                             "negative": ["neg", 0], "cfg": 1.0}}
    g["inv"] = {"class_type": "SamplerCustomAdvanced", "inputs": {
        "noise": ["nonoise", 0], "guider": ["inv_guider", 0], "sampler": ["easyinv", 0], "sigmas": ["flip", 0],
        "latent_image": ["enc", 0]}}
    g["ddim"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "ddim"}}
    g["guider"] = {"class_type": "CFGGuider", "inputs": {"model": ["mcfg", 0], "positive": ["pos", 0],
                                                         "negative": ["neg", 0], "cfg": 7.5}}
    g["edit"] = {"class_type": "SamplerCustomAdvanced", "inputs": {
        "noise": ["nonoise", 0], "guider": ["guider", 0], "sampler": ["ddim", 0], "sigmas": ["sched", 0],
        "latent_image": ["inv", 0]}}
    g.update(save_latent("s1", ["ks", 0], "patch_ks"))
    g.update(save_latent("s2", ["edit", 0], "patch_custom"))
    comfy.run_ok(g)
    for prefix in ("patch_ks", "patch_custom"):
        out = load_latent(comfy, prefix)
        assert out.shape == (FRAMES, 4, 8, 8) and torch.isfinite(out).all()


def test_post_cfg_patch_matches_masked_conditioning(comfy):
    """DRIVE's blend as a post-CFG hook == ConditioningSetMask(pos, M) + ConditioningSetMask(neg, 1-M)."""
    g = base_graph("oracle")
    g["mcfg"] = {"class_type": "DRIVE_MaskedCFGPatch", "inputs": {"model": ["ckpt", 0], "mask": ["mask", 0],
                                                                  "cfg_start": -1.0, "mask_mode": "nearest",
                                                                  "mask_threshold": 0.5}}
    sampler = {"seed": 5, "steps": 2, "cfg": 6.0, "sampler_name": "ddim", "scheduler": "ddim_uniform",
               "negative": ["neg", 0], "latent_image": ["enc", 0], "denoise": 1.0}
    g["a"] = {"class_type": "KSampler", "inputs": dict(sampler, model=["mcfg", 0], positive=["pos", 0])}
    g["inv_mask"] = {"class_type": "InvertMask", "inputs": {"mask": ["mask", 0]}}
    g["pos_m"] = {"class_type": "ConditioningSetMask", "inputs": {"conditioning": ["pos", 0], "mask": ["mask", 0],
                                                                  "strength": 1.0, "set_cond_area": "default"}}
    g["neg_m"] = {"class_type": "ConditioningSetMask", "inputs": {"conditioning": ["neg", 0],
                                                                  "mask": ["inv_mask", 0], "strength": 1.0,
                                                                  "set_cond_area": "default"}}
    g["both"] = {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["pos_m", 0],
                                                                 "conditioning_2": ["neg_m", 0]}}
    g["b"] = {"class_type": "KSampler", "inputs": dict(sampler, model=["ckpt", 0], positive=["both", 0])}
    g["plain"] = {"class_type": "KSampler", "inputs": dict(sampler, model=["ckpt", 0], positive=["pos", 0])}
    g.update(save_latent("sa", ["a", 0], "oracle_hook"))
    g.update(save_latent("sb", ["b", 0], "oracle_conds"))
    g.update(save_latent("sc", ["plain", 0], "oracle_plain"))
    comfy.run_ok(g)
    hook, conds, plain = (load_latent(comfy, p) for p in ("oracle_hook", "oracle_conds", "oracle_plain"))
    scale = float(hook.abs().max())
    diff = float((hook - conds).abs().max())
    print(f"post-CFG hook vs masked conditioning: max abs diff {diff:.3e} (max |latent| {scale:.3f})")
    assert diff <= 1e-3 * scale
    assert float((hook - plain).abs().max()) > 100 * max(diff, 1e-6)


def test_controlnet_under_grid_and_inputs_untouched():
    run_checks_script("editing_inprocess.py")
