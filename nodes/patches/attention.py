"""Attention patches on a cloned MODEL: cross-frame attention and STEM inversion attention.

- Cross-frame attention (Pix2Video / sparse-causal / anchor-only): an ``attn1`` patch that
  swaps each frame's keys/values for other frames' tokens of the same CFG branch
  (``drive_ops.diffusion.cross_frame_attention``), switched on inside a sigma window; two
  wrappers tell it which frames of the clip the UNet batch holds, since the grid shuffle
  or context windows would make "previous" and "anchor" name wrong frames. When the grid
  wrapper runs the clip a run of frames at a time (grid_size 1, no shuffle,
  max_grids_per_call), chunks go outward from the anchor and the anchor's and
  neighbours' keys/values are carried across them (``ChunkCarry``): the result equals
  one call over the whole clip.
  On Flux transformers (:func:`attention_target` decides, the one place) the same K/V
  swap goes through ``transformer_options["optimized_attention_override"]``, which core's
  ``wrap_attn`` calls for every joint text + image attention of the double and single
  blocks: each frame keeps its own text tokens and takes its sources' image tokens
  (``joint_cross_frame_kv``); the clip then goes through the model in one call, in order.
- STEM: an ``attn1`` replacement on every self-attention layer that attends to EM bases
  of the clip's key tokens (``drive_ops.diffusion.stem``); it refuses a UNet call that holds
  part of a frame group, and the grid wrapper keeps groups whole. UNets only.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
from comfy.patcher_extension import WrappersMP

import comfy.ldm.modules.attention

from ...drive_ops.diffusion.cross_frame_attention import (ChunkCarry, batch_in_frame_order, blocks_for,
                                                          gather_context, joint_cross_frame_kv, source_frames)
from ...drive_ops.diffusion.stem import check_group_call, stem_attention, stem_memory_bytes
from .keys import (CROSS_FRAME_ANCHOR_KEY, CROSS_FRAME_STATE_KEY, CROSS_FRAME_WRAPPER_KEY, FRAME_ORDER_KEY,
                   FRAME_ORDER_REQUIRED_KEY, GRID_SPAN_KEY, JOINT_TOKENS_KEY, STEM_FRAMES_KEY, STEM_GROUP_KEY,
                   STEM_WRAPPER_KEY)

log = logging.getLogger(__name__)

FRAME_ORDER_REFUSAL = (
    "DRIVE_CrossFrameAttention needs every UNet call to see the clip's frames in order (all of them, or a run "
    "of them), but something between the sampler and the UNet re-batched them: the RAVE grid shuffle "
    "(grid_size > 1 or shuffle on), context windows or area conditioning. 'Previous' and 'anchor' frame would "
    "then name the wrong frames. Use the grid shuffle with grid_size 1 and shuffle off (max_grids_per_call may "
    "chunk the clip), or drop cross-frame attention.")


ATTENTION_OVERRIDE_KEY = "optimized_attention_override"
DIT_FRAME_ORDER_REFUSAL = (
    "DRIVE_CrossFrameAttention on a Flux transformer needs the whole clip in one model call, in frame order: use "
    "the RAVE grid with grid_size 1, shuffle off and max_grids_per_call 0 (or at least the frame count), and no "
    "context windows")
WORKS_ON = ("UNet models (SD1.x / SD2 / SDXL and flow-matching UNets) through attn1 patches, and Flux transformers "
            "(Flux.1, FLUX.2) on cores whose attention takes transformer_options['optimized_attention_override']")


def attention_target(model) -> str | None:
    """Where the pack's attention patches reach ``model``: "unet" (attn1 patches / replacements), "flux" (Flux's
    joint attention through core's attention override), or None. The one place this is decided."""
    net = model.get_model_object("diffusion_model")
    if hasattr(net, "input_blocks"):
        return "unet"
    try:
        from comfy.ldm.flux.model import Flux
    except ImportError:
        return None
    if type(net) is Flux and hasattr(comfy.ldm.modules.attention, "wrap_attn"):
        return "flux"
    return None


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


class CrossFrameStep:
    """One model evaluation of a sampling step: the sampler's frames and the carried K/V of its chunks."""

    def __init__(self, frames: torch.Tensor):
        self.frames = frames
        self.carry: ChunkCarry | None = None


def make_cross_frame_patch(mode: str, anchor: int, include_self: bool, blocks: tuple[str, ...],
                           sigma_start: float, sigma_end: float):
    """attn1_patch returning K/V gathered from other frames of each CFG branch (across chunks when chunked)."""
    tables: dict[int, torch.Tensor] = {}

    def table_for(frames: int) -> torch.Tensor:
        if frames not in tables:
            if anchor >= frames:
                raise ValueError(f"anchor_frame {anchor} is outside the batch of {frames} frames the sampler sends "
                                 f"(context windows or batch splitting shrink it); lower anchor_frame")
            tables[frames] = source_frames(frames, mode, anchor, include_self)
        return tables[frames]

    def patch(n, context_attn1, value_attn1, extra_options):
        block = extra_options.get("block")
        if block is None or block[0] not in blocks or not _active(extra_options, sigma_start, sigma_end):
            return n, context_attn1, value_attn1
        start = extra_options.get(FRAME_ORDER_KEY, 0)
        if start is None:
            raise RuntimeError(FRAME_ORDER_REFUSAL)
        chunks = len(extra_options.get("cond_or_uncond") or [0])
        batch = n.shape[0] // chunks
        step = extra_options.get(CROSS_FRAME_STATE_KEY)
        total = batch if step is None else step.frames.shape[0]
        index = table_for(total)
        if batch == total:
            return n, gather_context(context_attn1, chunks, index), gather_context(value_attn1, chunks, index)
        if step.carry is None:
            step.carry = ChunkCarry(index)
        uuids = extra_options.get("uuids") or list(range(chunks))
        layer = (block, extra_options.get("block_index", 0))
        pairs = []
        for j in range(chunks):
            rows = slice(j * batch, (j + 1) * batch)
            keys = context_attn1[rows]
            values = keys if value_attn1 is context_attn1 else value_attn1[rows]
            pairs.append(step.carry.gather((layer, uuids[j]), keys, values, start))
        return n, torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])

    return patch


def _frame_start(x: torch.Tensor, transformer_options: dict, frames: torch.Tensor) -> int | None:
    """First frame of the clip this UNet batch holds, in order, per CFG branch; None when it is re-batched."""
    chunks = len(transformer_options.get("cond_or_uncond") or [0])
    span = transformer_options.get(GRID_SPAN_KEY)
    if span is None:
        return 0 if batch_in_frame_order(x, frames, chunks) else None
    if not span.in_frame_order or span.frames != frames.shape[0]:
        return None
    return span.start if batch_in_frame_order(x, frames[span.start:span.stop], chunks) else None


@contextmanager
def _transformer_option(model_options: dict, key: str, value):
    """``transformer_options[key] = value`` for the duration of one sampler call; what was there before comes
    back after, and a key that was absent is removed again."""
    options = model_options.setdefault("transformer_options", {})
    outer = options.get(key)
    options[key] = value
    try:
        yield
    finally:
        options[key] = outer
        if outer is None:
            del options[key]


def make_frame_order_wrappers():
    """(predict_noise wrapper, apply_model wrapper) that tell the attention patch which frames the UNet batch
    holds: the first records the sampler's frames for the step, the second compares the batch with them."""
    def predict_noise(executor, x, timestep, model_options, *args, **kwargs):
        with _transformer_option(model_options, CROSS_FRAME_STATE_KEY, CrossFrameStep(x)):
            return executor(x, timestep, model_options, *args, **kwargs)

    def apply_model(executor, x, t, c_concat, c_crossattn, control, transformer_options, *args, **kwargs):
        step = transformer_options.get(CROSS_FRAME_STATE_KEY)
        if step is not None:
            transformer_options[FRAME_ORDER_KEY] = _frame_start(x, transformer_options, step.frames)
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, *args, **kwargs)

    return predict_noise, apply_model


def make_joint_cross_frame_override(mode: str, anchor: int, include_self: bool, sigma_start: float,
                                    sigma_end: float, previous=None):
    """An ``optimized_attention_override`` giving each frame's joint attention its sources' image K/V.

    Core calls it as ``override(func, q, k, v, heads, skip_reshape=True, mask=..., transformer_options=...)``
    with q/k/v [B, H, L, D]; ``previous`` (another pack's override) still runs, on the new K/V.
    """
    tables: dict[int, torch.Tensor] = {}

    def attend(func, q, k, v, heads, *args, **kwargs):
        run = func if previous is None else (lambda *a, **kw: previous(func, *a, **kw))
        options = kwargs.get("transformer_options") or {}
        tokens = options.get(JOINT_TOKENS_KEY)
        if tokens is None or not _active(options, sigma_start, sigma_end):
            return run(q, k, v, heads, *args, **kwargs)
        if not kwargs.get("skip_reshape") or q.dim() != 4:
            raise RuntimeError("DRIVE cross-frame attention expected Flux's attention inputs [B, heads, tokens, dim]")
        if kwargs.get("mask") is not None:
            raise ValueError("DRIVE cross-frame attention on Flux does not combine with attention masks; "
                             "remove the masking patch or cross-frame attention")
        text, image = tokens
        if k.shape[2] != text + image:
            raise ValueError(f"DRIVE cross-frame attention on Flux: the attention holds {k.shape[2]} tokens, not "
                             f"{text} text + {image} image tokens of the frame (reference latents, as Kontext "
                             "adds, are not supported); remove the reference images or cross-frame attention")
        if options.get(FRAME_ORDER_KEY, 0) != 0:
            raise RuntimeError(DIT_FRAME_ORDER_REFUSAL)
        chunks = len(options.get("cond_or_uncond") or [0])
        batch = k.shape[0] // chunks
        step = options.get(CROSS_FRAME_STATE_KEY)
        if step is not None and step.frames.shape[0] != batch:
            raise RuntimeError(DIT_FRAME_ORDER_REFUSAL)
        if batch not in tables:
            if anchor >= batch:
                raise ValueError(f"anchor_frame {anchor} is outside the batch of {batch} frames; lower anchor_frame")
            tables[batch] = source_frames(batch, mode, anchor, include_self)
        k, v = joint_cross_frame_kv(k, v, chunks, tables[batch], text)
        return run(q, k, v, heads, *args, **kwargs)

    return attend


def make_joint_tokens_wrapper(patch_size: int):
    """APPLY_MODEL wrapper recording a Flux call's (text tokens, image tokens) for the attention override."""
    def apply_model(executor, x, t, c_concat, c_crossattn, control, transformer_options, *args, **kwargs):
        h, w = x.shape[-2:]
        image = ((h + patch_size // 2) // patch_size) * ((w + patch_size // 2) // patch_size)
        transformer_options[JOINT_TOKENS_KEY] = (c_crossattn.shape[1], image)
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, *args, **kwargs)

    return apply_model


def apply_cross_frame_patch(model, mode: str, anchor: int, include_self: bool, layers: str, start_percent: float,
                            end_percent: float):
    """A clone of ``model`` whose self-attention takes K/V from other frames, with the frame-order check.

    UNets: an attn1 patch on the chosen blocks; the anchor is also left in the MODEL's
    transformer options, so the grid wrapper can run chunks outward from it. Flux: an
    attention override on every double and single block ("decoder" has no meaning there),
    and the MODEL asks the grid wrapper for the whole clip in one call.
    """
    target = attention_target(model)
    if target is None:
        net = model.get_model_object("diffusion_model")
        raise ValueError(f"cross-frame attention patches {WORKS_ON}; {type(net).__name__} is neither (or this "
                         "ComfyUI is too old to patch its attention): leave cross-frame attention off for it "
                         "(the RAVE grid shuffle still applies)")
    blocks = blocks_for(mode, layers)
    sigma_start, sigma_end = _sigma_window(model, start_percent, end_percent)
    patched = model.clone()
    options = patched.model_options.setdefault("transformer_options", {})
    predict_noise, apply_model = make_frame_order_wrappers()
    patched.remove_wrappers_with_key(WrappersMP.PREDICT_NOISE, CROSS_FRAME_WRAPPER_KEY)
    patched.remove_wrappers_with_key(WrappersMP.APPLY_MODEL, CROSS_FRAME_WRAPPER_KEY)
    patched.add_wrapper_with_key(WrappersMP.PREDICT_NOISE, CROSS_FRAME_WRAPPER_KEY, predict_noise)
    patched.add_wrapper_with_key(WrappersMP.APPLY_MODEL, CROSS_FRAME_WRAPPER_KEY, apply_model)
    if target == "flux":
        if layers == "decoder":
            raise ValueError("a Flux transformer has no decoder blocks: use layers 'all' or 'mode default' (both patch "
                             "every double and single block)")
        net = model.get_model_object("diffusion_model")
        options[ATTENTION_OVERRIDE_KEY] = make_joint_cross_frame_override(
            mode, anchor, include_self, sigma_start, sigma_end, options.get(ATTENTION_OVERRIDE_KEY))
        options[FRAME_ORDER_REQUIRED_KEY] = DIT_FRAME_ORDER_REFUSAL
        patched.add_wrapper_with_key(WrappersMP.APPLY_MODEL, CROSS_FRAME_WRAPPER_KEY,
                                     make_joint_tokens_wrapper(net.patch_size))
        return patched
    patched.set_model_attn1_patch(make_cross_frame_patch(mode, anchor, include_self, blocks, sigma_start, sigma_end))
    options[CROSS_FRAME_ANCHOR_KEY] = anchor
    return patched


def self_attention_keys(model) -> list[tuple[str, int, int]]:
    """(block, id, transformer index) of every self-attention layer of a ComfyUI UNet."""
    unet = model.get_model_object("diffusion_model")
    if attention_target(model) != "unet":
        raise ValueError(f"STEM attention patches UNet models (SD1.x / SD2 / SDXL and flow-matching UNets); "
                         f"{type(unet).__name__} has no input/middle/output blocks. On a transformer STEM is not "
                         "offered: its EM bases summarise the clip's image tokens per layer, and a DiT's joint "
                         "attention puts each frame's text tokens into the same softmax. Invert with method ddim or "
                         "fireflow (cross-frame attention does work on Flux)")
    groups = [("input", list(unet.input_blocks)), ("middle", [unet.middle_block]), ("output", list(unet.output_blocks))]
    keys = []
    for name, blocks in groups:
        for number, block in enumerate(blocks):
            for layer in block:
                for index in range(len(getattr(layer, "transformer_blocks", []))):
                    keys.append((name, number, index))
    return keys


def make_stem_replace(num_bases: int, iterations: int, temperature: float, chunk_frames: int, init: str, seed: int):
    """attn1_replace running STEM attention; logs the memory estimate once per token count.

    Inside a sampling run it checks which frames of the clip the call holds (the grid
    wrapper's span, the sampler's frame count): a call holding part of a frame group is
    refused, so the bases never depend on how the batch was split.
    """
    reported: set[tuple[int, int]] = set()

    def replace(q, k, v, extra_options):
        heads = extra_options["n_heads"]
        chunks = len(extra_options.get("cond_or_uncond") or [0])
        frames, tokens = q.shape[0] // chunks, q.shape[1]
        span = extra_options.get(GRID_SPAN_KEY)
        clip = extra_options.get(STEM_FRAMES_KEY)
        start, total = 0, frames if clip is None else clip
        if span is not None:
            if clip is not None and span.frames != clip:
                check_group_call(0, span.frames, clip, chunk_frames)
            start, total = span.start, span.total
        check_group_call(start, frames, total, chunk_frames)
        if (frames, tokens) not in reported:
            reported.add((frames, tokens))
            est = stem_memory_bytes(frames, tokens, heads, extra_options["dim_head"], num_bases, chunk_frames,
                                    dtype_bytes=q.element_size())
            log.info("DRIVE STEM: %d frames x %d tokens, %d bases over %d-frame groups: ~%.0f MiB per layer call "
                     "(full spatio-temporal attention: ~%.1f GiB)", frames, tokens, est["bases"],
                     est["frames_per_group"], est["stem_bytes"] / 2**20, est["full_attention_bytes"] / 2**30)
        return stem_attention(q, k, v, heads, chunks, chunk_frames, num_bases, iterations, temperature, init, seed,
                              frame_offset=start)

    return replace


def make_stem_frames_wrapper():
    """PREDICT_NOISE wrapper recording how many frames the sampler holds, for the STEM call check."""
    def predict_noise(executor, x, timestep, model_options, *args, **kwargs):
        with _transformer_option(model_options, STEM_FRAMES_KEY, x.shape[0]):
            return executor(x, timestep, model_options, *args, **kwargs)

    return predict_noise


def apply_stem_patch(model, num_bases: int = 256, iterations: int = 5, temperature: float = 0.01,
                     chunk_frames: int = 0, init: str = "gaussian", seed: int = 0):
    """A clone of ``model`` whose every self-attention runs STEM (also DRIVE_InvertVideo's method "stem").

    ``chunk_frames`` is also left in the MODEL's transformer options, so the grid wrapper
    sizes its calls to whole frame groups.
    """
    patched = model.clone()
    replace = make_stem_replace(num_bases, iterations, temperature, chunk_frames, init, seed)
    for block, number, index in self_attention_keys(model):
        patched.set_model_attn1_replace(replace, block, number, index)
    patched.model_options.setdefault("transformer_options", {})[STEM_GROUP_KEY] = chunk_frames
    patched.remove_wrappers_with_key(WrappersMP.PREDICT_NOISE, STEM_WRAPPER_KEY)
    patched.add_wrapper_with_key(WrappersMP.PREDICT_NOISE, STEM_WRAPPER_KEY, make_stem_frames_wrapper())
    return patched
