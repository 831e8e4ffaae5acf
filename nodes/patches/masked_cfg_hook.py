"""DRIVE's masked CFG as a post-CFG function on a cloned MODEL.

ComfyUI calls the function with the CFG result and the uncond prediction in denoised
space; the blend ``M*cfg + (1-M)*uncond`` and DRIVE's guidance schedule come from
``drive_ops.diffusion.masked_cfg``.
"""

from __future__ import annotations

import torch

from ...drive_ops.core.mask_frames import match_mask_frames
from ...drive_ops.core.validate import check_mask
from ...drive_ops.diffusion import masked_cfg, schedule


def latent_mask_for(mask: torch.Tensor, shape: torch.Size | tuple, mode: str, threshold: float) -> torch.Tensor:
    """The binary latent mask ``[T,h,w]`` for latents of ``shape`` ``[T,C,h,w]``; refuses an empty one.

    Raises the ValueError that names the fix for a frame count or size that does not fit,
    and for a mask with nothing left inside (nothing would be edited).
    """
    frames = match_mask_frames(mask, shape[0], what="mask")
    latent = masked_cfg.mask_to_latent(frames, shape[-2], shape[-1], mode, threshold)
    if not bool(latent.any()):
        raise ValueError(f"the mask is empty at latent size in every frame (binarised at mask_threshold {threshold:g} "
                         f"with mask_mode {mode}), so masked CFG would edit nothing: check the mask (tracking lost "
                         "the object?), lower mask_threshold, or use mask_mode area for thin objects")
    return latent


def make_masked_cfg(mask: torch.Tensor | None, cfg_start: float, mode: str, threshold: float):
    """The post-CFG function: DRIVE's guidance schedule, then ``M*cfg + (1-M)*uncond`` (a closure, so
    clones share the mask instead of deep-copying it). The mask is fitted to the latents at the
    first call, before the guidance schedule is looked at, so a bad mask fails on step one
    whatever ``cfg_start`` says."""
    cache: dict[tuple, torch.Tensor] = {}

    def latent_mask(shape: torch.Size) -> torch.Tensor:
        key = (shape[0], shape[-2], shape[-1])
        if key not in cache:
            cache[key] = latent_mask_for(mask, shape, mode, threshold)
        return cache[key]

    def post_cfg(args: dict) -> torch.Tensor:
        denoised, uncond = args["denoised"], args["uncond_denoised"]
        m = None if mask is None else latent_mask(denoised.shape)
        if uncond is None:
            raise ValueError("masked CFG needs the uncond prediction; the patch disables ComfyUI's cfg=1 "
                             "shortcut, so another node must have removed that setting")
        sigmas = args["model_options"].get("transformer_options", {}).get("sample_sigmas")
        if sigmas is not None:
            step = schedule.step_index(sigmas, args["sigma"])
            if not masked_cfg.guidance_active(step, len(sigmas) - 1, cfg_start):
                return uncond
        return denoised if m is None else masked_cfg.masked_cfg_blend(denoised, uncond, m)

    return post_cfg


def apply_masked_cfg_patch(model, mask: torch.Tensor | None, cfg_start: float, mode: str, threshold: float,
                           latent_shape: tuple | None = None):
    """A clone of ``model`` with DRIVE's masked CFG as a post-CFG function.

    The mask is checked here (a MASK, finite); with ``latent_shape`` (the latents to be
    sampled) it is also fitted to them now, so a mismatch fails before the first step.
    """
    if mask is not None:
        check_mask(mask)
        if latent_shape is not None:
            latent_mask_for(mask, latent_shape, mode, threshold)
    patched = model.clone()
    patched.set_model_sampler_post_cfg_function(make_masked_cfg(mask, cfg_start, mode, threshold),
                                                disable_cfg1_optimization=True)
    return patched
