"""Temporal-consistency nodes (DRIVE/consistency): cross-frame attention and Pix2Video's latent guidance.

Cross-frame attention (Pix2Video / sparse-causal / anchor-only) is an attention patch on a
cloned MODEL and Pix2Video's guidance a SAMPLER, both from ``nodes/patches``; the maths is
in ``drive_ops.diffusion`` (cross_frame_attention, pix2video).
"""

from __future__ import annotations

from comfy_api.latest import io

from ..drive_ops.core.validate import check_numbers
from ..drive_ops.diffusion.cross_frame_attention import LAYER_CHOICES, MODES
from ..drive_ops.diffusion.pix2video import GUIDED_FRACTION
from .checks import check_options, combo_answer
from .patches.attention import apply_cross_frame_patch
from .patches.samplers import pix2video_sampler


class CrossFrameAttention(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_CrossFrameAttention",
            display_name="Cross-Frame Attention (DRIVE)",
            category="DRIVE/consistency",
            description="Self-attention keys/values taken from other frames of the batch, per CFG branch: "
                        "pix2video (anchor + previous frame, decoder only), sparse_causal (first + previous frame, "
                        "every layer, as Tune-A-Video / FateZero) or anchor_only (Text2Video-Zero: the first "
                        "frame only). Patches a clone of the MODEL; works with core KSampler and the DRIVE "
                        "samplers. The RAVE grid shuffle reorders frames into grids, so with grid_size > 1 or "
                        "shuffle on the run stops with an error; grid_size 1 without shuffle keeps frame order and "
                        "works, also chunked by max_grids_per_call (frames run outward from the anchor, its and "
                        "the previous frame's keys/values carried across chunks: the same result as one call).",
            inputs=[
                io.Model.Input("model", tooltip="The model to patch (it is cloned, never changed)."),
                io.Combo.Input("mode", options=list(MODES), default="pix2video",
                               tooltip="Which frames feed each frame's keys/values: pix2video = anchor + previous, "
                                       "sparse_causal = first (the anchor) + previous, anchor_only = the anchor "
                                       "(Text2Video-Zero with anchor 0 and include_self off)."),
                io.Int.Input("anchor_frame", default=0, min=0, max=4096,
                             tooltip="Index of the anchor frame in the batch; 'previous' means the neighbour "
                                     "toward the anchor."),
                io.Boolean.Input("include_self", default=False,
                                 tooltip="Also keep the frame's own tokens in its keys/values. Off reproduces "
                                         "Pix2Video, Tune-A-Video and Text2Video-Zero (which attends to the first "
                                         "frame only)."),
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
    def validate_inputs(cls, mode, layers) -> bool | str:
        return combo_answer(cls, mode=mode, layers=layers)

    @classmethod
    def execute(cls, model, mode, anchor_frame, include_self, layers, start_percent, end_percent) -> io.NodeOutput:
        check_options(cls, mode=mode, layers=layers)
        check_numbers(start_percent=start_percent, end_percent=end_percent)
        return io.NodeOutput(apply_cross_frame_patch(model, mode, anchor_frame, include_self, layers, start_percent,
                                                     end_percent))


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
                io.Float.Input("guided_fraction", default=GUIDED_FRACTION, min=0.0, max=1.0, step=0.01,
                               tooltip="Share of the first steps that get the update (Pix2Video: 26 of 50)."),
                io.Int.Input("anchor_frame", default=0, min=0, max=4096,
                             tooltip="The frame that is never nudged; the others follow their neighbour toward it."),
            ],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, weight, guided_fraction, anchor_frame) -> io.NodeOutput:
        check_numbers(weight=weight, guided_fraction=guided_fraction)
        return io.NodeOutput(pix2video_sampler(weight, guided_fraction, anchor_frame))


NODES: list[type[io.ComfyNode]] = [CrossFrameAttention, Pix2VideoSampler]
