"""DRIVE's masked CFG as a post-CFG function on a cloned MODEL, with an optional background prompt
and the gate that keeps ComfyUI's cfg-1 shortcut.

ComfyUI calls the function with the CFG result and the uncond prediction in denoised
space; the blend ``M*cfg + (1-M)*outside`` and DRIVE's guidance schedule come from
``drive_ops.diffusion.masked_cfg``. ``outside`` is the uncond (negative) prediction, as in
DRIVE, unless a *background* conditioning is given: then the area outside the mask
follows that prompt alone (no CFG) and the negative prompt only steers CFG inside.

The background needs a third model evaluation per step, with conditioning ComfyUI has
prepared like the positive and negative (model conds, ControlNet, areas). An
OUTER_SAMPLE wrapper adds it to the guider's conds before ComfyUI processes them, a
PREDICT_NOISE wrapper hands the processed entries to the post-CFG function, which
evaluates them with ``calc_cond_batch`` (so the grid shuffle and every other
CALC_COND_BATCH wrapper apply to it too). Hooks set on the background conditioning
itself (Set CLIP Hooks) are not registered.

At cfg 1 ComfyUI skips the uncond UNet pass unless ``disable_cfg1_optimization`` is set; a
PREDICT_NOISE wrapper sets it only for the steps whose result reads uncond
(``masked_cfg.uncond_needed``), so a reconstruction without a mask costs one pass per step,
as with KSampler.
"""

from __future__ import annotations

import comfy.sampler_helpers
import comfy.samplers
import torch
from comfy.patcher_extension import WrappersMP

from ...drive_ops.core.mask_frames import match_mask_frames
from ...drive_ops.core.validate import check_mask
from ...drive_ops.diffusion import masked_cfg, schedule
from ...drive_ops.diffusion.video_mask import video_mask_to_latent
from .keys import BACKGROUND_CONDS_KEY, MASKED_CFG_BACKGROUND_KEY, MASKED_CFG_GUARD_KEY, MASKED_CFG_STEPS_KEY, \
    MASKED_CFG_WRAPPER_KEY
from .model_family import latent_factor_of, temporal_stride_of
from .step_guard import make_step_guard

NO_UNCOND = ("masked CFG needs the negative prompt's prediction at this step, but the sampler ran no uncond pass "
             "(a guider without a negative prompt, or a node that removed DRIVE's cfg-1 gate); use KSampler / "
             "CFGGuider with a negative prompt")


def _step(model_options: dict, sigma: torch.Tensor) -> tuple[int, int] | None:
    """(step, steps) of this model call in the sampling loop, or None outside one."""
    sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
    if sigmas is None:
        return None
    return schedule.step_index(sigmas, sigma), len(sigmas) - 1


def latent_mask_for(mask: torch.Tensor, shape: torch.Size | tuple, mode: str, threshold: float,
                    factor: int = 8, stride: int | None = 1) -> torch.Tensor:
    """The binary latent mask ``[T,h,w]`` for latents of ``shape`` ``[T,C,h,w]`` whose cells cover ``factor`` pixels
    along each side (the model's latent format: model_family.latent_factor_of); refuses an empty one.

    Video latents ``[B,C,T',h,w]`` (``stride`` pixel frames per latent frame: model_family.temporal_stride_of) get
    ``[T',h,w]`` covering every object pixel (``video_mask.video_mask_to_latent``; ``mode`` does not apply).
    Raises the ValueError that names the fix for a frame count or size that does not fit,
    and for a mask with nothing left inside (nothing would be edited).
    """
    if len(shape) == 5:
        if stride is None:
            raise ValueError("this ComfyUI does not say how many frames a latent frame of this video model covers, so "
                             "a pixel mask cannot be reduced to its latent; update ComfyUI")
        latent = video_mask_to_latent(_as_frames(mask), shape[2], shape[-2], shape[-1], stride, factor, threshold)
    else:
        frames = match_mask_frames(mask, shape[0], what="mask")
        latent = masked_cfg.mask_to_latent(frames, shape[-2], shape[-1], mode, threshold, factor)
    if not bool(latent.any()):
        raise ValueError(f"the mask is empty at latent size in every frame (binarised at mask_threshold {threshold:g} "
                         f"with mask_mode {mode}), so masked CFG would edit nothing: check the mask (tracking lost "
                         "the object?), lower mask_threshold, or use mask_mode area for thin objects")
    return latent


def _as_frames(mask: torch.Tensor) -> torch.Tensor:
    """A MASK ``[H,W]``, ``[T,H,W]`` or ``[T,H,W,1]`` as ``[T,H,W]``."""
    if mask.dim() == 2:
        return mask.unsqueeze(0)
    if mask.dim() == 4 and mask.shape[-1] == 1:
        return mask[..., 0]
    if mask.dim() != 3:
        raise ValueError(f"the mask has shape {tuple(mask.shape)}; expected [T,H,W] or [H,W]")
    return mask


def make_masked_cfg(mask: torch.Tensor | None, cfg_start: float, mode: str, threshold: float,
                    schedule_steps: int | None = None, factor: int = 8, stride: int | None = 1):
    """The post-CFG function: DRIVE's guidance schedule, then ``M*cfg + (1-M)*outside`` (a closure, so
    clones share the mask instead of deep-copying it). ``schedule_steps``: the full schedule a
    partial edit is the tail of, which ``cfg_start`` is measured on. The mask is fitted to the
    latents at the first call, before the guidance schedule is looked at, so a bad mask fails on
    step one whatever ``cfg_start`` says."""
    cache: dict[tuple, torch.Tensor] = {}

    def latent_mask(shape: torch.Size) -> torch.Tensor:
        key = (shape[0], *shape[2:])
        if key not in cache:
            cache[key] = latent_mask_for(mask, shape, mode, threshold, factor, stride)
        return cache[key]

    def post_cfg(args: dict) -> torch.Tensor:
        denoised, uncond = args["denoised"], args["uncond_denoised"]
        m = None if mask is None else latent_mask(denoised.shape)
        skipped = args.get("uncond") is None  # ComfyUI ran no uncond pass (cfg-1 shortcut, or no negative)
        options = args["model_options"]
        where = _step(options, args["sigma"])
        if where is not None and not masked_cfg.guidance_active(where[0], where[1], cfg_start, schedule_steps):
            if skipped:
                raise ValueError(NO_UNCOND)
            denoised = uncond
        if m is None:
            return denoised
        if skipped:
            raise ValueError(NO_UNCOND)
        outside = uncond
        background = options.get(BACKGROUND_CONDS_KEY)
        if background is not None:
            outside = comfy.samplers.calc_cond_batch(args["model"], [background], args["input"], args["sigma"],
                                                     options)[0]
        return masked_cfg.masked_cfg_blend(denoised, outside, m)

    return post_cfg


def make_cfg1_gate(has_mask: bool, cfg_start: float, schedule_steps: int | None = None):
    """PREDICT_NOISE wrapper: ComfyUI's cfg-1 shortcut stays on except at steps whose result reads uncond.

    It only ever turns the shortcut off (for one call, on a shallow copy of the options);
    another patch that disabled it keeps it disabled. At cfg other than 1 the flag is unused.
    """
    def gate(executor, x, timestep, model_options, *args, **kwargs):
        if not model_options.get("disable_cfg1_optimization", False):
            where = _step(model_options, timestep)
            if where is None or masked_cfg.uncond_needed(where[0], where[1], cfg_start, has_mask, schedule_steps):
                model_options = {**model_options, "disable_cfg1_optimization": True}
        return executor(x, timestep, model_options, *args, **kwargs)

    return gate


def make_background_wrappers(background: list):
    """(OUTER_SAMPLE, PREDICT_NOISE) wrappers that put ``background`` among the guider's conds and hand the
    processed entries to the post-CFG function."""
    def outer_sample(executor, *args, **kwargs):
        guider = executor.class_obj
        guider.conds[BACKGROUND_CONDS_KEY] = [c.copy() for c in comfy.sampler_helpers.convert_cond(background)]
        return executor(*args, **kwargs)

    def predict_noise(executor, x, timestep, model_options, *args, **kwargs):
        conds = getattr(executor.class_obj, "conds", {}).get(BACKGROUND_CONDS_KEY)
        return executor(x, timestep, dict(model_options, **{BACKGROUND_CONDS_KEY: conds}), *args, **kwargs)

    return outer_sample, predict_noise


def apply_masked_cfg_patch(model, mask: torch.Tensor | None, cfg_start: float, mode: str, threshold: float,
                           background: list | None = None, schedule_steps: int | None = None,
                           latent_shape: tuple | None = None):
    """A clone of ``model`` with DRIVE's masked CFG as a post-CFG function, its cfg-1 gate, and the
    background prompt's wrappers.

    A second patch adds a second function and gate: each gate can only turn the shortcut off,
    so every function still gets the uncond prediction at the steps it needs it. With
    ``cfg_start`` >= 0 the guidance depends on the step, so samplers that evaluate the model
    twice per step are refused (``step_guard``); the guard and the background are one per MODEL.
    The mask is checked here (a MASK, finite); with ``latent_shape`` (the latents to be
    sampled) it is also fitted to them now, so a mismatch fails before the first step.
    """
    factor, stride = latent_factor_of(model), temporal_stride_of(model)
    if mask is not None:
        check_mask(mask)
        if latent_shape is not None:
            latent_mask_for(mask, latent_shape, mode, threshold, factor, stride)
    patched = model.clone()
    patched.set_model_sampler_post_cfg_function(make_masked_cfg(mask, cfg_start, mode, threshold, schedule_steps,
                                                                factor, stride))
    patched.add_wrapper_with_key(WrappersMP.PREDICT_NOISE, MASKED_CFG_WRAPPER_KEY,
                                 make_cfg1_gate(mask is not None, cfg_start, schedule_steps))
    patched.remove_wrappers_with_key(WrappersMP.PREDICT_NOISE, MASKED_CFG_GUARD_KEY)
    patched.remove_wrappers_with_key(WrappersMP.OUTER_SAMPLE, MASKED_CFG_BACKGROUND_KEY)
    patched.remove_wrappers_with_key(WrappersMP.PREDICT_NOISE, MASKED_CFG_BACKGROUND_KEY)
    if cfg_start >= 0:
        patched.add_wrapper_with_key(WrappersMP.PREDICT_NOISE, MASKED_CFG_GUARD_KEY,
                                     make_step_guard(MASKED_CFG_STEPS_KEY, "masked CFG's cfg_start schedule"))
    if background is not None and mask is not None:
        outer_sample, predict_noise = make_background_wrappers(background)
        patched.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, MASKED_CFG_BACKGROUND_KEY, outer_sample)
        patched.add_wrapper_with_key(WrappersMP.PREDICT_NOISE, MASKED_CFG_BACKGROUND_KEY, predict_noise)
    return patched
