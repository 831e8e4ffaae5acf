"""Alternative consistency and inversion methods as ComfyUI patches: cross-frame attention
(Pix2Video / sparse-causal / anchor-only), Pix2Video's latent guidance as a SAMPLER, and STEM
inversion attention. The maths lives in drive_ops; these nodes only attach it to a cloned MODEL.
"""

from __future__ import annotations

import logging

import torch
from comfy_api.latest import io

from ..drive_ops.diffusion.cross_frame_attention import (LAYER_CHOICES, MODES, batch_in_frame_order, blocks_for, gather_context,
                                               source_frames)
from ..drive_ops.diffusion.pix2video import sample_pix2video
from ..drive_ops.diffusion.stem import INITS, stem_attention, stem_memory_bytes

log = logging.getLogger(__name__)

WRAPPER_KEY = "drive_cross_frame"
FRAME_ORDER_KEY = "drive_frame_order"
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


class CrossFrameAttention(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_CrossFrameAttention",
            display_name="Cross-Frame Attention (DRIVE)",
            category="DRIVE/consistency",
            description="Self-attention keys/values taken from other frames of the batch, per CFG branch: "
                        "pix2video (anchor + previous frame, decoder only), sparse_causal (first + previous frame, "
                        "every layer, as Tune-A-Video / FateZero) or anchor_only. Patches a clone of the MODEL; "
                        "works with core KSampler and the DRIVE samplers. The RAVE grid shuffle reorders frames "
                        "into grids, so with grid_size > 1 or shuffle on the run stops with an error (grid_size 1 "
                        "without shuffle keeps frame order and works).",
            inputs=[
                io.Model.Input("model", tooltip="The model to patch (it is cloned, never changed)."),
                io.Combo.Input("mode", options=list(MODES), default="pix2video",
                               tooltip="Which frames feed each frame's keys/values: pix2video = anchor + previous, "
                                       "sparse_causal = first (the anchor) + previous, anchor_only = the anchor."),
                io.Int.Input("anchor_frame", default=0, min=0, max=4096,
                             tooltip="Index of the anchor frame in the batch; 'previous' means the neighbour "
                                     "toward the anchor."),
                io.Boolean.Input("include_self", default=False,
                                 tooltip="Also keep the frame's own tokens in its keys/values (Text2Video-Zero "
                                         "style). Off reproduces Pix2Video and Tune-A-Video."),
                io.Combo.Input("layers", options=list(LAYER_CHOICES), default="mode default",
                               tooltip="Self-attention layers to patch: the mode's default (decoder for pix2video, "
                                       "all for the others), the decoder only, or all."),
                io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Sampling progress at which the patch switches on."),
                io.Float.Input("end_percent", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Sampling progress at which the patch switches off."),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model, mode, anchor_frame, include_self, layers, start_percent, end_percent) -> io.NodeOutput:
        from comfy.patcher_extension import WrappersMP

        sigma_start, sigma_end = _sigma_window(model, start_percent, end_percent)
        patched = model.clone()
        patched.set_model_attn1_patch(make_cross_frame_patch(mode, anchor_frame, include_self,
                                                             blocks_for(mode, layers), sigma_start, sigma_end))
        predict_noise, apply_model = make_frame_order_wrappers()
        patched.add_wrapper_with_key(WrappersMP.PREDICT_NOISE, WRAPPER_KEY, predict_noise)
        patched.add_wrapper_with_key(WrappersMP.APPLY_MODEL, WRAPPER_KEY, apply_model)
        return io.NodeOutput(patched)


class Pix2VideoSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_Pix2VideoSampler",
            display_name="Pix2Video Sampler (DRIVE)",
            category="DRIVE/consistency",
            description="Deterministic DDIM sampler with Pix2Video's guided latent update: for the first part of "
                        "the steps each frame's latent is nudged toward the previous frame's predicted x0 "
                        "(step 2*weight/(C*H*W), rescaled to ComfyUI's sigma space). Plug into "
                        "SamplerCustomAdvanced; pair with DRIVE_CrossFrameAttention for full Pix2Video.",
            inputs=[
                io.Float.Input("weight", default=100.0, min=0.0, max=10000.0, step=1.0,
                               tooltip="Pix2Video's per_step_weight (100): the MSE-gradient scale. The step per "
                                       "element is 2*weight/(C*H*W), so it grows at small latents."),
                io.Float.Input("guided_fraction", default=0.52, min=0.0, max=1.0, step=0.01,
                               tooltip="Share of the first steps that get the update (Pix2Video: 26 of 50)."),
                io.Int.Input("anchor_frame", default=0, min=0, max=4096,
                             tooltip="The frame that is never nudged; the others follow their neighbour toward it."),
            ],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, weight, guided_fraction, anchor_frame) -> io.NodeOutput:
        import comfy.samplers

        return io.NodeOutput(comfy.samplers.KSAMPLER(
            sample_pix2video, extra_options={"weight": weight, "guided_fraction": guided_fraction,
                                             "anchor": anchor_frame}))


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


class STEMAttention(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_STEMAttention",
            display_name="STEM Inversion Attention (DRIVE)",
            category="DRIVE/invert",
            description="STEM inversion ('A Video is Worth 256 Bases'): every self-attention layer attends to a "
                        "compact basis set estimated by EM over the key tokens of the whole clip (or of chunks of "
                        "frames), giving spatio-temporal context at linear cost. Use the patched MODEL only for "
                        "inversion / reconstruction (cfg 1, source prompt), then edit with the unpatched MODEL. "
                        "Logs its memory estimate per layer size.",
            inputs=[
                io.Model.Input("model", tooltip="The model to patch (it is cloned, never changed)."),
                io.Int.Input("num_bases", default=256, min=1, max=8192,
                             tooltip="Bases per head (paper: 256). Never more than the tokens of a frame group."),
                io.Int.Input("iterations", default=5, min=1, max=50, tooltip="EM iterations per layer call (5)."),
                io.Float.Input("temperature", default=0.01, min=0.0001, max=10.0, step=0.0001,
                               tooltip="Softmax temperature of the E-step (0.01: nearly hard assignments)."),
                io.Int.Input("chunk_frames", default=0, min=0, max=4096,
                             tooltip="Frames sharing one basis set; 0 = the whole batch (paper), 8 = the official "
                                     "code. Smaller chunks bound the memory."),
                io.Combo.Input("init", options=list(INITS), default="gaussian",
                               tooltip="Initial bases: gaussian = Normal(mean, std) of the keys (official code); "
                                       "tokens = a random subset of the keys."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1,
                             tooltip="Seed of the base initialisation (the same draw at every layer call)."),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model, num_bases, iterations, temperature, chunk_frames, init, seed) -> io.NodeOutput:
        return io.NodeOutput(apply_stem_patch(model, num_bases, iterations, temperature, chunk_frames, init, seed))


NODES: list[type[io.ComfyNode]] = [CrossFrameAttention, Pix2VideoSampler, STEMAttention]
