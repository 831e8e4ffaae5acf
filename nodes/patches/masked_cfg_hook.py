"""DRIVE's masked CFG as a post-CFG function on a cloned MODEL.

ComfyUI calls the function with the CFG result and the uncond prediction in denoised
space; the blend ``M*cfg + (1-M)*uncond`` and DRIVE's guidance schedule come from
``drive_ops.diffusion.masked_cfg``.
"""

from __future__ import annotations

import torch

from ...drive_ops.core.mask_frames import match_mask_frames
from ...drive_ops.diffusion import masked_cfg, schedule


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
        if uncond is None:
            raise ValueError("masked CFG needs the uncond prediction; the patch disables ComfyUI's cfg=1 "
                             "shortcut, so another node must have removed that setting")
        sigmas = args["model_options"].get("transformer_options", {}).get("sample_sigmas")
        if sigmas is not None:
            step = schedule.step_index(sigmas, args["sigma"])
            if not masked_cfg.guidance_active(step, len(sigmas) - 1, cfg_start):
                return uncond
        if mask is None:
            return denoised
        return masked_cfg.masked_cfg_blend(denoised, uncond, latent_mask(denoised.shape))

    return post_cfg


def apply_masked_cfg_patch(model, mask: torch.Tensor | None, cfg_start: float, mode: str, threshold: float):
    """A clone of ``model`` with DRIVE's masked CFG as a post-CFG function."""
    patched = model.clone()
    patched.set_model_sampler_post_cfg_function(make_masked_cfg(mask, cfg_start, mode, threshold),
                                                disable_cfg1_optimization=True)
    return patched
