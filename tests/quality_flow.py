"""DRIVE edits of test-bed clips on the flow test bed through drive_ops, and the numbers that judge them.

Shared by tests/test_quality_flow.py and ``python -m bench.flow_quality``. The path is the
nodes' on a flow model, without ComfyUI: invert the AE latents with the empty prompt
(Euler on the velocity, Euler with EasyInv's blend, or FireFlow) along SD3-shifted sigmas,
then sample back (cfg 1, empty prompt: reconstruction) or edit: masked CFG with
``masked_cfg.guided_denoiser`` at cfg > 1 (RAVE grids optional), or the cfg-1 masked edit,
either the source trajectory kept outside the mask (``flow.masked_sampler``, the nodes'
choice) or masked FlowEdit (``flow.sample_masked_flowedit``). Clips and the recolour
target are tests/quality_edit.py's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from drive_ops.composite.compositing import composite_video
from drive_ops.core.mask_morphology import grow_mask
from drive_ops.diffusion import flow, inversion, masked_cfg
from drive_ops.evaluate.metrics import psnr
from tests.quality_edit import BG_GROW_PX, Case, background_psnr, latent_mask, object_flicker, object_warp_error, \
    success

INVERSIONS = ("euler", "easyinv", "fireflow")


def invert(ftb, z0: torch.Tensor, method: str, steps: int) -> torch.Tensor:
    """Empty-prompt inversion of UNet-unit latents [T,4,h,w] to sigma 1 (EasyInv: SD1.x's 0.5 in 0.05-0.25)."""
    model = ftb.denoiser(ftb.base.text_context("")[0])
    up = ftb.sampling_sigmas(steps).flip(0)
    if method == "fireflow":
        return flow.sample_fireflow(model, z0, flow.with_midpoints(up))
    if method == "easyinv":
        return flow.sample_flow_inversion(model, z0, up, eta=0.5, window_start=0.05, window_length=0.2)
    return flow.sample_flow_inversion(model, z0, up)


def sample(ftb, model, x: torch.Tensor, method: str, steps: int) -> torch.Tensor:
    """Sample ``x`` from sigma 1 to 0 with the solver that matches ``method``'s inversion."""
    down = ftb.sampling_sigmas(steps)
    return solver(method)(model, x, flow.with_midpoints(down) if method == "fireflow" else down)


def reconstruction_psnr(ftb, case: Case, method: str, steps: int) -> tuple[float, float]:
    """(PSNR of invert -> sample back at cfg 1 vs the frames, PSNR of the AE round trip), dB, per-frame mean."""
    z0 = ftb.base.encode(case.frames) * ftb.base.latent_scale
    noise = invert(ftb, z0, method, steps)
    recon = ftb.base.decode(sample(ftb, ftb.denoiser(ftb.base.text_context("")[0]), noise, method, steps)
                            / ftb.base.latent_scale)
    roundtrip = ftb.base.decode(z0 / ftb.base.latent_scale)
    return float(psnr(case.frames, recon).mean()), float(psnr(case.frames, roundtrip).mean())


@dataclass
class FlowEdit:
    """One edit's decoded frames, before and after Composite, and its numbers."""
    edited: torch.Tensor
    composited: torch.Tensor
    numbers: dict


def edit(ftb, case: Case, mode: str, steps: int = 20, cfg: float = 1.0, method: str = "euler", grid: int = 1,
         shuffle: bool = False, seed: int = 0) -> FlowEdit:
    """Recolour ``case``'s object on the flow test bed.

    ``mode``: "masked_cfg" (M*guided + (1-M)*uncond), "trajectory" (the source's trajectory
    outside the mask; the nodes' edit at cfg 1) or "flowedit" (masked FlowEdit: source prompt =
    the clip's caption, seeded noise; needs no inversion). For the last two ``cfg`` guides
    the prompts' velocities against the empty prompt (FlowEdit guides both).
    """
    base = ftb.base
    z0 = base.encode(case.frames) * base.latent_scale
    m = latent_mask(case, tuple(z0.shape[-2:]))
    target = base.text_context(case.target_caption)[0]
    if mode == "flowedit":
        noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed))
        source = base.text_context(case.clip.caption)[0]
        out = flow.sample_masked_flowedit(ftb.denoiser(source, cfg=cfg), ftb.denoiser(target, cfg=cfg), z0,
                                          ftb.sampling_sigmas(steps), m, noise)
    else:
        inverted = invert(ftb, z0, method, steps)
        down = ftb.sampling_sigmas(steps)
        sigmas = flow.with_midpoints(down) if method == "fireflow" else down
        if mode == "trajectory":
            model = masked_cfg.guided_denoiser(ftb.branch_denoiser(target), sigmas, cfg, cfg_start=-1.0,
                                               grid_size=grid, shuffle=shuffle, seed=seed)
            out = flow.masked_sampler(solver(method), z0, m)(model, inverted, sigmas)
        elif mode == "masked_cfg":
            model = masked_cfg.guided_denoiser(ftb.branch_denoiser(target), sigmas, cfg, mask=m, cfg_start=-1.0,
                                               grid_size=grid, shuffle=shuffle, seed=seed)
            out = solver(method)(model, inverted, sigmas)
        else:
            raise ValueError(f"unknown mode {mode!r}")
    edited = base.decode(out / base.latent_scale)
    roundtrip = base.decode(z0 / base.latent_scale)
    comp = composite_video(edited, case.frames, case.mask, grow=BG_GROW_PX)
    ok, share = success(case, edited)
    outside = (grow_mask(case.mask.float(), BG_GROW_PX) <= 0)[..., None].expand_as(case.frames)
    numbers = dict(success=ok, share=share, bg_psnr=background_psnr(roundtrip, edited, case.mask),
                   bg_exact_after_composite=bool(torch.equal(comp[outside], case.frames[outside])),
                   warp=object_warp_error(edited, case.clip), flicker=object_flicker(case, edited))
    return FlowEdit(edited, comp, numbers)


def solver(method: str):
    """The k-diffusion sampling function that undoes ``method``'s inversion (FireFlow's sigmas carry midpoints)."""
    return flow.sample_fireflow if method == "fireflow" else inversion.sample_ddim
