"""The RAVE grid shuffle as a ``CALC_COND_BATCH`` wrapper on a cloned MODEL.

Inside every model call the frames (in frame order outside) are tiled into g x g grids
with the step's permutation, the ControlNet hints and conditioning masks with the same
one, the UNet runs a chunk of grids at a time, and the outputs come back in frame order.
The gridding maths is ``drive_ops.diffusion.rave_grid`` and ``cond_grid``; what is
ComfyUI's own here is the hint preparation and the memory estimate. A MODEL whose layers
need the frames in order (``FRAME_ORDER_REQUIRED_KEY``, Tune-A-Video's temporal layers)
gets all frames in one call, and the shuffle, grids or a chunk cap are refused up front.
"""

from __future__ import annotations

import logging

import comfy.controlnet
import comfy.model_management
import comfy.patcher_extension
import comfy.utils
import torch

from ...drive_ops.core.chunking import chunk_slices, chunks_outward
from ...drive_ops.diffusion import cond_grid, rave_grid, schedule
from ...drive_ops.diffusion.stem import group_aligned_chunk
from .keys import (CROSS_FRAME_ANCHOR_KEY, FRAME_ORDER_REQUIRED_KEY, GRID_SPAN_KEY, GRID_STEPS_KEY, GRID_WRAPPER_KEY,
                   STEM_GROUP_KEY, GridSpan)
from .step_guard import make_step_guard

log = logging.getLogger(__name__)

MEMORY_SAFETY = 1.5
MAX_GRIDS = dict(default=0, min=0, max=4096)
MAX_GRIDS_TIP = ("Grids per UNet call (cond and uncond together); 0 sizes it from free memory. Lower it if you "
                 "run out of VRAM: memory then stays flat in the frame count.")


def _frame_hint(control, frames: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """The control's hint in frame order ``[T,C,h*r,w*r]``, as ComfyUI's ``ControlNet.get_control`` prepares it.

    Pixel-hint ControlNets (SD1.x / SDXL, XLabs' and Mistoline's Flux ones) get the hint at ``r`` =
    their compression ratio (8); latent-hint ones (SD3 / SD3.5, InstantX Flux and its Union, Qwen)
    get it VAE-encoded per frame in the model's latent format (``r`` = 1), with the inpainting mask
    channel where the ControlNet takes one. Per frame, so that tiling the result into grids puts
    each frame's hint under that frame's latent (a Union's control type is per call, not per frame).
    """
    if not isinstance(control, comfy.controlnet.ControlNet):
        raise ValueError(f"{type(control).__name__} hints cannot follow the DRIVE grid shuffle (ControlNets can; "
                         "T2I adapters and other control types cannot); remove it or use grid_size 1 without shuffle")
    ratio = control.compression_ratio
    if control.vae is not None:
        ratio *= control.vae.spacial_compression_encode()
    elif control.latent_format is not None:
        raise ValueError(f"this ControlNet ({type(control.control_model).__name__}) takes VAE-encoded hints but none "
                         "was given: use Apply ControlNet with its vae input connected")
    hint = comfy.utils.common_upscale(control.cond_hint_original, w * ratio, h * ratio,
                                      control.upscale_algorithm, "center")
    hint = control.preprocess_image(hint)
    if hint.shape[0] not in (1, frames):
        raise ValueError(f"a ControlNet hint has {hint.shape[0]} frames but the video has {frames}; "
                         "apply the ControlNet with one hint image per frame (or a single image)")
    if control.vae is not None:
        loaded = comfy.model_management.loaded_models(only_currently_used=True)
        hint = control.vae.encode(hint.movedim(1, -1))
        comfy.model_management.load_models_gpu(loaded)
    if control.latent_format is not None:
        hint = control.latent_format.process_in(hint)
    extras = []
    for extra in control.extra_concat_orig:
        extra = comfy.utils.common_upscale(extra.to(hint.device), hint.shape[-1], hint.shape[-2],
                                           control.upscale_algorithm, "center")
        if extra.shape[0] not in (1, frames):
            raise ValueError(f"a ControlNet's mask input has {extra.shape[0]} frames but the video has {frames}; "
                             "give one mask per frame (or a single one)")
        extras.append(extra.expand(frames, -1, -1, -1))
    hint = torch.cat([hint.expand(frames, -1, -1, -1)] + extras, dim=1)
    dtype = control.manual_cast_dtype if control.manual_cast_dtype is not None else control.control_model.dtype
    return hint.to(device=device, dtype=dtype)


def free_memory_for_batching(model, device: torch.device) -> int:
    """The free memory core's own cond batching sizes its calls by: from 0.16 on the patcher's figure (which
    adds what the dynamic loader can reclaim), before that ComfyUI's global one."""
    patcher = getattr(model, "current_patcher", None)
    if patcher is not None and hasattr(patcher, "get_free_memory"):
        return patcher.get_free_memory(device)
    return comfy.model_management.get_free_memory(device)


def _grids_per_call(model, x_in: torch.Tensor, conds: list, n_grids: int, grid_size: int,
                    max_grids_per_call: int) -> int:
    """Grids per UNet call: the user's cap, or as many as ComfyUI's memory estimate says fit now."""
    if max_grids_per_call > 0:
        return min(max_grids_per_call, n_grids)
    entries = max(1, sum(len(c) for c in conds if c is not None))
    _, channels, h, w = x_in.shape
    free = free_memory_for_batching(model, x_in.device)
    return rave_grid.largest_fitting(
        n_grids, lambda k: model.memory_required([k * entries, channels, h * grid_size, w * grid_size])
        * MEMORY_SAFETY, free)


def _chunks(options: dict, n_grids: int, per_call: int, in_frame_order: bool, max_grids_per_call: int) -> list[slice]:
    """The calls' grid ranges, in the order to run them.

    STEM on the MODEL: calls hold whole STEM frame groups (its bases then do not depend on
    the chunking). Cross-frame attention on the MODEL with frames in order: chunks run
    outward from its anchor, so the K/V it carries across chunks are always ready.
    """
    stem_group = options.get(STEM_GROUP_KEY)
    if stem_group is not None:
        per_call = group_aligned_chunk(per_call, n_grids, stem_group, max_grids_per_call)
    anchor = options.get(CROSS_FRAME_ANCHOR_KEY)
    if anchor is not None and in_frame_order:
        return chunks_outward(n_grids, per_call, anchor)
    return chunk_slices(n_grids, per_call)


def make_grid_wrapper(requested_grid: int, shuffle: bool, seed: int, max_grids_per_call: int):
    """The CALC_COND_BATCH wrapper: frames in, grids through the UNet (chunked), frames out.

    A grid larger than the clip is capped to the smallest one that holds it (``fitted_grid_size``), with a note.
    """
    noted: set[str] = set()

    def grid_wrapper(executor, model, conds, x_in, timestep, model_options, *args, **kwargs):
        if x_in.dim() != 4:
            raise ValueError(f"the DRIVE grid works on image-model latents [T,C,h,w], got {tuple(x_in.shape)}")
        options = model_options.setdefault("transformer_options", {})
        step = 0
        if shuffle:
            sigmas = options.get("sample_sigmas")
            if sigmas is None:
                raise ValueError("the DRIVE grid shuffle needs ComfyUI's sampling loop (sample_sigmas is missing)")
            step = schedule.step_index(sigmas, timestep)
        frames, _, h, w = x_in.shape
        grid_size, note = rave_grid.fitted_grid_size(frames, requested_grid)
        if note and note not in noted:
            noted.add(note)
            log.warning("DRIVE grid: %s", note)
        perm = rave_grid.grid_permutation(frames, grid_size, seed, step, shuffle)
        n_grids = perm.numel() // (grid_size * grid_size)
        in_frame_order = grid_size == 1 and not shuffle
        required = options.get(FRAME_ORDER_REQUIRED_KEY)
        if required and (not in_frame_order or 0 < max_grids_per_call < n_grids):
            raise ValueError(required)
        per_call = n_grids if required else _grids_per_call(model, x_in, conds, n_grids, grid_size,
                                                              max_grids_per_call)
        parts = _chunks(options, n_grids, per_call, in_frame_order, max_grids_per_call)
        controls = cond_grid.control_chain(conds)
        hint_grids = {id(c): rave_grid.compose_grids(_frame_hint(c, frames, h, w, x_in.device), perm, grid_size)
                      for c in controls}
        grid_masks = cond_grid.grid_cond_masks(conds, perm, grid_size, frames)
        saved = [(c, c.cond_hint) for c in controls]
        outer_span = options.get(GRID_SPAN_KEY)

        def run_chunk(grids: torch.Tensor, part: slice) -> list:
            for control in controls:
                control.cond_hint = hint_grids[id(control)][part]
            chunk_conds = cond_grid.conds_for_chunk(conds, grid_masks, part)
            options[GRID_SPAN_KEY] = GridSpan(part.start, part.stop, n_grids, frames, in_frame_order)
            return executor(model, chunk_conds, grids, timestep[:1].expand(grids.shape[0]), model_options, *args,
                            **kwargs)

        try:
            return rave_grid.run_on_grids(run_chunk, x_in, perm, grid_size, per_call, parts)
        finally:
            for control, hint in saved:
                control.cond_hint = hint
            options[GRID_SPAN_KEY] = outer_span
            if outer_span is None:
                del options[GRID_SPAN_KEY]

    return grid_wrapper


def apply_grid_patch(model, grid_size: int, shuffle: bool, seed: int, max_grids_per_call: int):
    """A clone of ``model`` with the RAVE grid wrapper (replacing any earlier one).

    With shuffle on, the permutation depends on the step, so a PREDICT_NOISE guard refuses
    samplers that evaluate the model twice per step.
    """
    patched = model.clone()
    wrappers = comfy.patcher_extension.WrappersMP
    patched.remove_wrappers_with_key(wrappers.CALC_COND_BATCH, GRID_WRAPPER_KEY)
    patched.remove_wrappers_with_key(wrappers.PREDICT_NOISE, GRID_WRAPPER_KEY)
    patched.add_wrapper_with_key(wrappers.CALC_COND_BATCH, GRID_WRAPPER_KEY,
                                 make_grid_wrapper(grid_size, shuffle, seed, max_grids_per_call))
    if shuffle:
        patched.add_wrapper_with_key(wrappers.PREDICT_NOISE, GRID_WRAPPER_KEY,
                                     make_step_guard(GRID_STEPS_KEY, "the DRIVE grid shuffle"))
    return patched
