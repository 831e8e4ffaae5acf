"""DRIVE's masked edit on a video model's native latent, inside an in-process ComfyUI, on the random Wan stand-ins.

The small random Wan 2.1 VACE DiT and Wan 2.1 VAE of tools/make_random_wan.py, loaded by
ComfyUI's own detection (a Wan model: CONST sampling, latent format Wan21, 5-D latents
``[1,16,T',h,w]`` with ``T = 4(T'-1) + 1``), conditioning made directly (umt5-xxl's width).
Through the nodes: VAE Encode -> Invert Video (Euler, FireFlow, the whole clip in one model
call per step) -> Masked-CFG Sampler reconstructs with an error that falls with the steps (first
order with Euler, second with FireFlow: the stand-in's velocity depends strongly on the latent); the
cfg-1 masked edit keeps every latent element outside the reduced mask on the source trajectory
at every model call and ends on the source bit for bit; masked guidance at cfg > 1 follows
``M*cfg + (1-M)*uncond`` step by step; decode + Composite Background keeps every pixel outside
the mask. Core's Wan Context Windows (a model patch) compose with both nodes: windows holding the
whole clip change nothing, smaller ones keep both equalities; core's WanVaceToVideo conditioning
composes with the cfg-1 edit; Masked-CFG Patch works under core sampling. Random weights: the numbers mean
nothing, the code paths and the equalities are the real ones.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

from inprocess_fixtures import no_grad, pack  # noqa: F401 (fixtures)
from random_weights import WAN_FILES, provide_wan_stand_ins

pytestmark = [pytest.mark.integration, pytest.mark.min_core("0.33.0")]

H, W = 64, 64
STEPS = 4


@pytest.fixture(scope="module")
def wan(pack, tmp_path_factory):
    """(model, vae): the random Wan 2.1 VACE stand-ins, loaded the way Load Diffusion Model and Load VAE load them."""
    import comfy.sd
    import comfy.utils

    comfy_dir = Path(os.environ["COMFYUI_DIR"])
    models = comfy_dir / "models"
    if not all((models / folder / name).exists() for folder, name in WAN_FILES.values()):
        models = tmp_path_factory.mktemp("wan_models")
        for folder, _ in WAN_FILES.values():
            (models / folder).mkdir()
        provide_wan_stand_ins(models, comfy_dir)
    folder, name = WAN_FILES["vace"]
    model = comfy.sd.load_diffusion_model(str(models / folder / name))
    folder, name = WAN_FILES["vae"]
    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(models / folder / name)))
    return model, vae


def _frames(count: int, seed: int = 5) -> torch.Tensor:
    return torch.rand(count, H, W, 3, generator=torch.Generator().manual_seed(seed))


def _cond(seed: int) -> list:
    return [[torch.randn(1, 8, 4096, generator=torch.Generator().manual_seed(seed)), {}]]


def _mask(count: int) -> torch.Tensor:
    """An object that moves: a 20x20 square 3 px further right each frame (a thin edge reaches into new cells)."""
    mask = torch.zeros(count, H, W)
    for t in range(count):
        mask[t, 18:38, 10 + 3 * t:30 + 3 * t] = 1.0
    return mask


def _invert(pack, model, cond, latent: dict, steps: int = STEPS, method: str = "ddim", grid: int = 1,
            max_grids: int = 0) -> dict:
    return pack("nodes.invert").InvertVideo.execute(model, cond, latent, steps, method, 1.0, 0.05, 0.2, "after", 1.0,
                                                    grid, max_grids).args[0]


def _edit(pack, model, pos, neg, latent: dict, steps: int = STEPS, cfg: float = 1.0, cfg_start: float = -1.0,
          grid: int = 1, shuffle: bool = False, mask=None) -> dict:
    return pack("nodes.edit").MaskedCFGSampler.execute(model, pos, neg, latent, steps, cfg, cfg_start, grid, shuffle,
                                                       0, 0, "nearest", 0.5, mask).args[0]


def _reduced(pack, model, mask: torch.Tensor, shape) -> torch.Tensor:
    family = pack("nodes.patches.model_family").family_of(model)
    return pack("nodes.patches.masked_cfg_hook").latent_mask_for(mask, shape, "nearest", 0.5, family.latent_factor,
                                                                 family.temporal_stride)


def _outside(latent_mask: torch.Tensor, shape) -> torch.Tensor:
    """Where the reduced mask [T',h,w] is 0, over video latents of ``shape`` [1,C,T',h,w]: bool."""
    return (latent_mask == 0)[None, None].expand(shape)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("frames", [9, 13])
def test_wan_latents_are_flow_video_latents_with_a_temporal_stride_of_four(pack, wan, frames):
    model, vae = wan
    family = pack("nodes.patches.model_family").family_of(model)
    assert (family.kind, family.temporal_stride, family.latent_factor) == ("flow", 4, 8)
    latent = vae.encode(_frames(frames))
    assert tuple(latent.shape) == (1, 16, (frames - 1) // 4 + 1, H // 8, W // 8)
    reduced = _reduced(pack, model, _mask(frames), latent.shape)
    assert tuple(reduced.shape) == (latent.shape[2], H // 8, W // 8)
    assert tuple(vae.decode(latent).reshape(-1, H, W, 3).shape) == (frames, H, W, 3)


@pytest.mark.parametrize("method", ["ddim", "fireflow"])
def test_inverting_the_video_latent_then_sampling_at_cfg_one_reconstructs(pack, wan, method):
    model, vae = wan
    latent, cond = vae.encode(_frames(9)), _cond(1)
    calls = []

    def count(apply_model, args):
        calls.append(tuple(args["input"].shape))
        return apply_model(args["input"], args["timestep"], **args["c"])

    watched = model.clone()
    watched.set_model_unet_function_wrapper(count)
    errors = {}
    for steps in (4, 16, 64):
        calls.clear()
        inv = _invert(pack, watched, cond, {"samples": latent}, steps, method)
        assert calls == [tuple(latent.shape)] * (steps + (method == "fireflow"))   # the whole clip, one call a step
        record = inv[pack("drive_ops.diffusion.schedule").INVERSION_RECORD_KEY]
        family = pack("nodes.patches.model_family").family_of(model)
        assert (record["family"], record["shift"], record["steps"], record["method"]) == ("flow", family.shift,
                                                                                          steps, method)
        assert inv["samples"].shape == latent.shape
        rec = _edit(pack, model, cond, cond, inv, steps)
        errors[steps] = _rel(rec["samples"], latent)
    print(f"wan {method}: invert -> reconstruct relative error", {k: f"{v:.2e}" for k, v in errors.items()})
    assert errors[64] < 0.5 * errors[16] < 0.25 * errors[4], errors   # converges with the steps
    if method == "fireflow":   # second order: measured 9.5e-1, 1.7e-1, 1.2e-2 (Euler: 4.0, 1.4, 4.0e-1)
        assert errors[64] < 0.03, errors


@pytest.mark.parametrize("method", ["ddim", "fireflow"])
def test_masked_edit_at_cfg_one_keeps_every_latent_outside_the_reduced_mask_on_the_source_trajectory(pack, wan,
                                                                                                      method):
    flow = pack("drive_ops.diffusion.flow")
    model, vae = wan
    latent, cond, other, mask = vae.encode(_frames(9)), _cond(1), _cond(2), _mask(9)
    inv = _invert(pack, model, cond, {"samples": latent}, STEPS, method)
    family = pack("nodes.patches.model_family").family_of(model)
    source = family.to_model_space(latent)
    noise = flow.trajectory_noise(family.to_model_space(inv["samples"]), source, 1.0)
    seen = []

    def record_inputs(apply_model, args):
        seen.append((args["input"].clone(), args["timestep"].reshape(-1)[0]))
        return apply_model(args["input"], args["timestep"], **args["c"])

    watched = model.clone()
    watched.set_model_unet_function_wrapper(record_inputs)
    out = _edit(pack, watched, other, cond, inv, mask=mask)
    keep = _outside(_reduced(pack, model, mask, latent.shape), latent.shape)
    assert 0 < int(keep[0, 0].sum()) < keep[0, 0].numel()
    assert len(seen) == STEPS + (method == "fireflow") and all(x.shape == latent.shape for x, _ in seen)
    for x, sigma in seen:
        expected = flow.source_trajectory(source, noise, sigma)
        assert torch.equal(x[keep], expected[keep]), float(sigma)   # bit for bit at every model call
    assert torch.equal(out["samples"][keep], latent[keep])          # the source, bit for bit, at the end
    assert float((out["samples"][~keep] - latent[~keep]).abs().max()) > 1e-3


def _check_masked_guidance(pack, model, latent: torch.Tensor, mask: torch.Tensor, cfg: float = 5.0) -> dict:
    """Run the Masked-CFG Sampler at ``cfg`` with ``mask`` and check each step against ``M*cfg + (1-M)*uncond``: the
    Euler update from the recorded cond / uncond predictions gives the next model input and, at the end, the output."""
    cond, other = _cond(1), _cond(2)
    inv = _invert(pack, model, cond, {"samples": latent}, STEPS)
    family = pack("nodes.patches.model_family").family_of(model)
    m = _reduced(pack, model, mask, latent.shape)[None, None]
    seen = []

    def observe(args):
        seen.append({k: args[k].clone() for k in ("input", "cond_denoised", "uncond_denoised")})
        return args["denoised"]

    watched = model.clone()
    watched.set_model_sampler_post_cfg_function(observe)     # runs before the node's masked CFG
    out = _edit(pack, watched, other, cond, inv, cfg=cfg, mask=mask)
    sigmas = family.sampling_sigmas(STEPS)
    assert len(seen) == STEPS
    x = seen[0]["input"]
    for i, step in enumerate(seen):
        assert torch.allclose(step["input"], x, rtol=0, atol=1e-5), i
        guided = step["uncond_denoised"] + (step["cond_denoised"] - step["uncond_denoised"]) * cfg
        denoised = m * guided + (1 - m) * step["uncond_denoised"]
        x = x + (sigmas[i + 1] - sigmas[i]) * (x - denoised) / sigmas[i]
    assert torch.allclose(family.to_model_space(out["samples"]), x, rtol=0, atol=1e-5)
    plain = _edit(pack, model, other, cond, inv, cfg=cfg)
    assert float((plain["samples"] - out["samples"]).abs().max()) > 1e-3   # the mask changed the run
    return out


def test_masked_guidance_above_cfg_one_is_the_mask_blend_of_cfg_and_uncond_at_every_step(pack, wan):
    model, vae = wan
    _check_masked_guidance(pack, model, vae.encode(_frames(9)), _mask(9))


@pytest.mark.parametrize("cfg", [1.0, 5.0])
def test_decoded_edit_composited_keeps_every_pixel_outside_the_mask(pack, wan, cfg):
    model, vae = wan
    frames, mask = _frames(13), _mask(13)
    cond, other = _cond(1), _cond(2)
    inv = _invert(pack, model, cond, {"samples": vae.encode(frames)}, STEPS, "fireflow")
    edited = vae.decode(_edit(pack, model, other, cond, inv, cfg=cfg, mask=mask)["samples"]).reshape(-1, H, W, 3)
    assert edited.shape == frames.shape
    out = pack("nodes.composite").CompositeBackground.execute(edited, frames, mask, 0, 0.0, "alpha").args[0]
    outside = mask[..., None].expand_as(frames) == 0
    assert torch.equal(out[outside], frames[outside])
    assert float((out[~outside] - frames[~outside]).abs().max()) > 1e-3


def test_grid_options_on_a_video_latent_are_ignored_with_a_note(pack, wan, caplog):
    model, vae = wan
    latent, cond, other, mask = vae.encode(_frames(9)), _cond(1), _cond(2), _mask(9)
    inv = _invert(pack, model, cond, {"samples": latent})
    with caplog.at_level(logging.WARNING):
        gridded = _edit(pack, model, other, cond, inv, cfg=3.0, grid=3, shuffle=True, mask=mask)
        assert torch.equal(_invert(pack, model, cond, {"samples": latent}, grid=2, max_grids=1)["samples"],
                           inv["samples"])
    assert "grid_size 3 / shuffle True" in caplog.text and "grid_size 2" in caplog.text
    assert torch.equal(gridded["samples"], _edit(pack, model, other, cond, inv, cfg=3.0, mask=mask)["samples"])


def test_masks_of_other_frame_counts_are_refused_naming_the_fix(pack, wan):
    model, vae = wan
    latent, cond, other = vae.encode(_frames(9)), _cond(1), _cond(2)
    inv = _invert(pack, model, cond, {"samples": latent})
    for cfg in (1.0, 5.0):
        with pytest.raises(ValueError, match=r"mask has 8 frames.*3 latent frames.*trim video and mask to 9 frames"):
            _edit(pack, model, other, cond, inv, cfg=cfg, mask=_mask(8))
    one = _edit(pack, model, other, cond, inv, cfg=1.0, mask=_mask(1))   # one frame: every frame
    assert one["samples"].shape == latent.shape


def _context_windows(model, frames: int, overlap: int):
    """Core's Wan Context Windows (Manual) on ``model``: windows of ``frames`` pixel frames, pyramid fusion, FreeNoise."""
    from comfy_extras.nodes_context_windows import WanContextWindowsManualNode

    return WanContextWindowsManualNode.execute(model, frames, overlap, "standard_uniform", 1, False, "pyramid",
                                               True).args[0]


def test_context_windows_holding_the_whole_clip_change_nothing(pack, wan):
    model, vae = wan
    latent, cond, other, mask = vae.encode(_frames(9)), _cond(1), _cond(2), _mask(9)

    def runs(m) -> list[dict]:
        inv = _invert(pack, m, cond, {"samples": latent}, STEPS, "fireflow")
        return [inv] + [_edit(pack, m, other, cond, inv, cfg=cfg, mask=mask) for cfg in (1.0, 5.0)]

    plain, windowed = runs(model), runs(_context_windows(model, 81, 30))
    assert all(torch.equal(a["samples"], b["samples"]) for a, b in zip(plain, windowed))


def test_context_windows_compose_with_inversion_and_both_masked_edits(pack, wan):
    """33 frames (9 latent frames) in windows of 17 frames overlapping by 8 (5 and 2 latent frames): the model sees
    windows; the cfg-1 edit still ends on the source bit for bit outside the mask; masked guidance at cfg 5 is still
    the formula on the fused predictions; the reconstruction is as close as without windows."""
    model, vae = wan
    latent, cond, other, mask = vae.encode(_frames(33)), _cond(1), _cond(2), _mask(33)
    shapes = []

    def record(apply_model, args):
        shapes.append(args["input"].shape[2])
        return apply_model(args["input"], args["timestep"], **args["c"])

    windowed = _context_windows(model, 17, 8)
    watched = windowed.clone()
    watched.set_model_unet_function_wrapper(record)
    errors = {}
    for name, m in (("whole clip", model), ("windows", watched)):
        inv = _invert(pack, m, cond, {"samples": latent}, 8, "fireflow")
        errors[name] = _rel(_edit(pack, m, cond, cond, inv, 8)["samples"], latent)
        gated = _edit(pack, m, other, cond, inv, 8, mask=mask)
        keep = _outside(_reduced(pack, model, mask, latent.shape), latent.shape)
        assert torch.equal(gated["samples"][keep], latent[keep]), name
    assert shapes and max(shapes) < latent.shape[2]
    print("FireFlow 8 steps, 33 frames: reconstruction relative error", {k: f"{v:.3e}" for k, v in errors.items()})
    assert errors["windows"] < 1.05 * errors["whole clip"], errors   # measured 4.525e-01 vs 4.528e-01
    _check_masked_guidance(pack, windowed, latent, mask)


def test_vace_conditioning_composes_with_the_masked_edit(pack, wan):
    """Core's WanVaceToVideo (control video grey inside the mask, VACE's mask) gives the prompts; inverted with the
    source prompt's VACE conditioning, the cfg-1 edit still ends on the source outside DRIVE's mask, bit for bit."""
    from comfy_extras.nodes_wan import WanVaceToVideo

    model, vae = wan
    frames, mask = _frames(9), _mask(9)
    control = torch.where(mask[..., None] > 0.5, torch.full_like(frames, 0.5), frames)
    positive, negative, empty, trim = WanVaceToVideo.execute(_cond(2), _cond(1), vae, W, H, 9, 1, 1.0,
                                                             control_video=control, control_masks=mask).args
    latent = vae.encode(frames)
    assert tuple(empty["samples"].shape) == tuple(latent.shape) and trim == 0
    inv = _invert(pack, model, negative, {"samples": latent}, STEPS, "fireflow")
    gated = _edit(pack, model, positive, negative, inv, mask=mask)
    guided = _edit(pack, model, positive, negative, inv, cfg=5.0, mask=mask)
    keep = _outside(_reduced(pack, model, mask, latent.shape), latent.shape)
    assert torch.equal(gated["samples"][keep], latent[keep])
    assert float((gated["samples"][~keep] - latent[~keep]).abs().max()) > 1e-3
    assert bool(torch.isfinite(guided["samples"]).all())


def test_vace_conditioning_of_another_length_is_refused_naming_the_fix(pack, wan):
    """Wan VACE To Video with a reference_image prepends a latent frame the inverted source lacks (and a length that is
    not the clip's gives other frames): the sampler refuses before any model call, naming the reference image."""
    from comfy_extras.nodes_wan import WanVaceToVideo

    model, vae = wan
    frames, mask = _frames(9), _mask(9)
    latent = vae.encode(frames)
    inv = _invert(pack, model, _cond(1), {"samples": latent}, STEPS, "fireflow")
    positive, negative, _, trim = WanVaceToVideo.execute(_cond(2), _cond(1), vae, W, H, 9, 1, 1.0, control_video=frames,
                                                         control_masks=mask, reference_image=frames[:1]).args
    assert trim == 1
    with pytest.raises(ValueError, match="vace_frames spans 4 latent frames but the latent has 3.*reference_image"):
        _edit(pack, model, positive, negative, inv, mask=mask)
    longer = WanVaceToVideo.execute(_cond(2), _cond(1), vae, W, H, 13, 1, 1.0).args
    with pytest.raises(ValueError, match="spans 4 latent frames but the latent has 3.*batch_size"):
        _edit(pack, model, longer[0], longer[1], inv, mask=mask)


def test_the_masked_cfg_patch_with_core_sampling_on_a_video_latent(pack, wan):
    """Masked-CFG Patch (DRIVE) + core euler / simple from noise (KSampler's call): the mask reduced to the video latent
    at every step; the patch changes the run."""
    import comfy.sample

    model, vae = wan
    patched = pack("nodes.edit").MaskedCFGPatch.execute(model, _mask(9), -1.0, "nearest", 0.5).args[0]
    latent = torch.zeros(1, 16, 3, H // 8, W // 8)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(3))
    runs = [comfy.sample.sample(m, noise, STEPS, 5.0, "euler", "simple", _cond(2), _cond(1), latent, seed=0,
                                disable_pbar=True) for m in (patched, model)]
    assert runs[0].shape == latent.shape and bool(torch.isfinite(runs[0]).all())
    assert float((runs[0] - runs[1]).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="trim video and mask to 9 frames"):
        bad = pack("nodes.edit").MaskedCFGPatch.execute(model, _mask(8), -1.0, "nearest", 0.5).args[0]
        comfy.sample.sample(bad, noise, STEPS, 5.0, "euler", "simple", _cond(2), _cond(1), latent, seed=0,
                            disable_pbar=True)
