"""Attention patches on a cloned MODEL: cross-frame attention and STEM inversion attention.

- Cross-frame attention (Pix2Video / sparse-causal / anchor-only): an ``attn1`` patch that
  swaps each frame's keys/values for other frames' tokens of the same CFG branch
  (``drive_ops.diffusion.cross_frame_attention``), switched on inside a sigma window; two
  wrappers tell it whether the UNet batch is still the clip in frame order, since the
  grid shuffle or context windows would make "previous" and "anchor" name wrong frames.
- STEM: an ``attn1`` replacement on every self-attention layer that attends to EM bases
  of the clip's key tokens (``drive_ops.diffusion.stem``).
"""

from __future__ import annotations

import logging

import torch
from comfy.patcher_extension import WrappersMP

from ...drive_ops.diffusion.cross_frame_attention import (batch_in_frame_order, blocks_for, gather_context,
                                                          source_frames)
from ...drive_ops.diffusion.stem import stem_attention, stem_memory_bytes
from .keys import CROSS_FRAME_WRAPPER_KEY, FRAME_ORDER_KEY

log = logging.getLogger(__name__)

FRAME_ORDER_REFUSAL = (
    "DRIVE_CrossFrameAttention needs every UNet call to see the clip's frames in order, but something between "
    "the sampler and the UNet re-batched them: the RAVE grid shuffle (grid_size > 1 or shuffle on), chunked "
    "grid calls, context windows or area conditioning. 'Previous' and 'anchor' frame would then name the wrong "
    "frames. Use the grid shuffle with grid_size 1, shuffle off and max_grids_per_call 0 (or drop it), or drop "
    "cross-frame attention.")


def _sigma_window(model, start_percent: float, end_percent: float) -> tuple[float, float]:
    """(sigma at start_percent, sigma at end_percent): the patch acts while sigma lies between them."""
    if start_percent > end_percent:
        raise ValueError(f"start_percent ({start_percent}) must not exceed end_percent ({end_percent})")
    sampling = model.get_model_object("model_sampling")
    return float(sampling.percent_to_sigma(start_percent)), float(sampling.percent_to_sigma(end_percent))


def _active(extra_options: dict, sigma_start: float, sigma_end: float) -> bool:
    """Whether this UNet call's sigma is inside the window (always, outside a sampling loop)."""
    sigmas = extra_options.get("sigmas")
    if sigmas is None:
        return True
    sigma = float(sigmas.max())
    return sigma_end <= sigma <= sigma_start


def make_cross_frame_patch(mode: str, anchor: int, include_self: bool, blocks: tuple[str, ...],
                           sigma_start: float, sigma_end: float):
    """attn1_patch returning K/V gathered from other frames of each CFG branch."""
    tables: dict[int, torch.Tensor] = {}

    def patch(n, context_attn1, value_attn1, extra_options):
        block = extra_options.get("block")
        if block is None or block[0] not in blocks or not _active(extra_options, sigma_start, sigma_end):
            return n, context_attn1, value_attn1
        if not extra_options.get(FRAME_ORDER_KEY, True):
            raise RuntimeError(FRAME_ORDER_REFUSAL)
        chunks = len(extra_options.get("cond_or_uncond") or [0])
        frames = n.shape[0] // chunks
        if frames not in tables:
            if anchor >= frames:
                raise ValueError(f"anchor_frame {anchor} is outside the batch of {frames} frames the sampler sends "
                                 f"(context windows or batch splitting shrink it); lower anchor_frame")
            tables[frames] = source_frames(frames, mode, anchor, include_self)
        index = tables[frames]
        return n, gather_context(context_attn1, chunks, index), gather_context(value_attn1, chunks, index)

    return patch


def make_frame_order_wrappers():
    """(predict_noise wrapper, apply_model wrapper) that tell the attention patch whether the UNet batch is in
    frame order: the first sees the sampler's frames, the second the batch the UNet is called with."""
    seen: dict[str, torch.Tensor | None] = {"frames": None}

    def predict_noise(executor, x, timestep, model_options, seed):
        seen["frames"] = x
        try:
            return executor(x, timestep, model_options, seed)
        finally:
            seen["frames"] = None

    def apply_model(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        frames = seen["frames"]
        if frames is not None:
            chunks = len(transformer_options.get("cond_or_uncond") or [0])
            transformer_options[FRAME_ORDER_KEY] = batch_in_frame_order(x, frames, chunks)
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

    return predict_noise, apply_model


def apply_cross_frame_patch(model, mode: str, anchor: int, include_self: bool, layers: str, start_percent: float,
                            end_percent: float):
    """A clone of ``model`` whose self-attention takes K/V from other frames, with the frame-order check."""
    sigma_start, sigma_end = _sigma_window(model, start_percent, end_percent)
    patched = model.clone()
    patched.set_model_attn1_patch(make_cross_frame_patch(mode, anchor, include_self, blocks_for(mode, layers),
                                                         sigma_start, sigma_end))
    predict_noise, apply_model = make_frame_order_wrappers()
    patched.add_wrapper_with_key(WrappersMP.PREDICT_NOISE, CROSS_FRAME_WRAPPER_KEY, predict_noise)
    patched.add_wrapper_with_key(WrappersMP.APPLY_MODEL, CROSS_FRAME_WRAPPER_KEY, apply_model)
    return patched


def self_attention_keys(model) -> list[tuple[str, int, int]]:
    """(block, id, transformer index) of every self-attention layer of a ComfyUI UNet."""
    unet = model.get_model_object("diffusion_model")
    if not hasattr(unet, "input_blocks"):
        raise ValueError(f"STEM attention patches UNet models (SD1.x / SD2 / SDXL); "
                         f"{type(unet).__name__} has no input/middle/output blocks")
    groups = [("input", list(unet.input_blocks)), ("middle", [unet.middle_block]), ("output", list(unet.output_blocks))]
    keys = []
    for name, blocks in groups:
        for number, block in enumerate(blocks):
            for layer in block:
                for index in range(len(getattr(layer, "transformer_blocks", []))):
                    keys.append((name, number, index))
    return keys


def make_stem_replace(num_bases: int, iterations: int, temperature: float, chunk_frames: int, init: str, seed: int):
    """attn1_replace running STEM attention; logs the memory estimate once per token count."""
    reported: set[tuple[int, int]] = set()

    def replace(q, k, v, extra_options):
        heads = extra_options["n_heads"]
        chunks = len(extra_options.get("cond_or_uncond") or [0])
        frames, tokens = q.shape[0] // chunks, q.shape[1]
        if (frames, tokens) not in reported:
            reported.add((frames, tokens))
            est = stem_memory_bytes(frames, tokens, heads, extra_options["dim_head"], num_bases, chunk_frames,
                                    dtype_bytes=q.element_size())
            log.info("DRIVE STEM: %d frames x %d tokens, %d bases over %d-frame groups: ~%.0f MiB per layer call "
                     "(full spatio-temporal attention: ~%.1f GiB)", frames, tokens, est["bases"],
                     est["frames_per_group"], est["stem_bytes"] / 2**20, est["full_attention_bytes"] / 2**30)
        return stem_attention(q, k, v, heads, chunks, chunk_frames, num_bases, iterations, temperature, init, seed)

    return replace


def apply_stem_patch(model, num_bases: int = 256, iterations: int = 5, temperature: float = 0.01,
                     chunk_frames: int = 0, init: str = "gaussian", seed: int = 0):
    """A clone of ``model`` whose every self-attention runs STEM (also DRIVE_InvertVideo's method "stem")."""
    patched = model.clone()
    replace = make_stem_replace(num_bases, iterations, temperature, chunk_frames, init, seed)
    for block, number, index in self_attention_keys(model):
        patched.set_model_attn1_replace(replace, block, number, index)
    return patched
