"""DRIVE's masked CFG as a post-CFG function on a cloned MODEL, and the gate that keeps ComfyUI's cfg-1 shortcut.

ComfyUI calls the function with the CFG result and the uncond prediction in denoised
space; the blend ``M*cfg + (1-M)*uncond`` and DRIVE's guidance schedule come from
``drive_ops.diffusion.masked_cfg``. At cfg 1 ComfyUI skips the uncond UNet pass unless
``disable_cfg1_optimization`` is set; a PREDICT_NOISE wrapper sets it only for the steps whose
result reads uncond (``masked_cfg.uncond_needed``), so a reconstruction without a mask costs
one pass per step, as with KSampler.
"""

from __future__ import annotations

import torch
from comfy.patcher_extension import WrappersMP

from ...drive_ops.core.mask_frames import match_mask_frames
from ...drive_ops.diffusion import masked_cfg, schedule
from .keys import MASKED_CFG_WRAPPER_KEY

NO_UNCOND = ("masked CFG needs the negative prompt's prediction at this step, but the sampler ran no uncond pass "
             "(a guider without a negative prompt, or a node that removed DRIVE's cfg-1 gate); use KSampler / "
             "CFGGuider with a negative prompt")


def _step(model_options: dict, sigma: torch.Tensor) -> tuple[int, int] | None:
    """(step, steps) of this model call in the sampling loop, or None outside one."""
    sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
    if sigmas is None:
        return None
    return schedule.step_index(sigmas, sigma), len(sigmas) - 1


def make_masked_cfg(mask: torch.Tensor | None, cfg_start: float, mode: str, threshold: float):
    """The post-CFG function: DRIVE's guidance schedule, then ``M*cfg + (1-M)*uncond`` (a closure, so
    clones share the mask instead of deep-copying it)."""
    cache: dict[tuple, torch.Tensor] = {}

    def latent_mask(shape: torch.Size) -> torch.Tensor:
        key = (shape[0], shape[-2], shape[-1])
        if key not in cache:
            frames = match_mask_frames(mask, shape[0], what="mask")
            cache[key] = masked_cfg.mask_to_latent(frames, shape[-2], shape[-1], mode, threshold)
        return cache[key]

    def post_cfg(args: dict) -> torch.Tensor:
        denoised, uncond = args["denoised"], args["uncond_denoised"]
        skipped = args.get("uncond") is None  # ComfyUI ran no uncond pass (cfg-1 shortcut, or no negative)
        where = _step(args["model_options"], args["sigma"])
        if where is not None and not masked_cfg.guidance_active(where[0], where[1], cfg_start):
            if skipped:
                raise ValueError(NO_UNCOND)
            return uncond
        if mask is None:
            return denoised
        if skipped:
            raise ValueError(NO_UNCOND)
        return masked_cfg.masked_cfg_blend(denoised, uncond, latent_mask(denoised.shape))

    return post_cfg


def make_cfg1_gate(has_mask: bool, cfg_start: float):
    """PREDICT_NOISE wrapper: ComfyUI's cfg-1 shortcut stays on except at steps whose result reads uncond.

    It only ever turns the shortcut off (for one call, on a shallow copy of the options);
    another patch that disabled it keeps it disabled. At cfg other than 1 the flag is unused.
    """
    def gate(executor, x, timestep, model_options, seed):
        if not model_options.get("disable_cfg1_optimization", False):
            where = _step(model_options, timestep)
            if where is None or masked_cfg.uncond_needed(where[0], where[1], cfg_start, has_mask):
                model_options = {**model_options, "disable_cfg1_optimization": True}
        return executor(x, timestep, model_options, seed)

    return gate


def apply_masked_cfg_patch(model, mask: torch.Tensor | None, cfg_start: float, mode: str, threshold: float):
    """A clone of ``model`` with DRIVE's masked CFG as a post-CFG function and its cfg-1 gate.

    A second patch adds a second function and gate: each gate can only turn the shortcut off,
    so every function still gets the uncond prediction at the steps it needs it.
    """
    patched = model.clone()
    patched.set_model_sampler_post_cfg_function(make_masked_cfg(mask, cfg_start, mode, threshold))
    patched.add_wrapper_with_key(WrappersMP.PREDICT_NOISE, MASKED_CFG_WRAPPER_KEY,
                                 make_cfg1_gate(mask is not None, cfg_start))
    return patched
