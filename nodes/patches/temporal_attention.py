"""Tune-A-Video's temporal layers on a cloned MODEL, as object patches of every transformer block.

ComfyUI's ``BasicTransformerBlock`` has no patch point after its feed-forward, where
Tune-A-Video's temporal attention goes, so each block is swapped (``add_object_patch``,
applied only while the clone is loaded) for a :class:`TemporalTransformerBlock`: the same
block, sharing the original's sub-modules, with the temporal layer
(``drive_ops.diffusion.temporal_attention``) as one more child, ``attn_temp``. The
parameter names of the block's own layers do not change, so weight patches (the tuned
to_q, LoRAs) and ModelPatcher's device moves reach them as before, and the new layer
moves with the model.

The layer needs the clip's frames in order in every UNet call, per CFG branch: the
cross-frame attention's frame-order wrappers (``patches.attention``) flag re-batched
calls, and ``FRAME_ORDER_REQUIRED_KEY`` lets the grid wrapper refuse the shuffle before it
runs.
"""

from __future__ import annotations

import torch
from comfy.ldm.modules.attention import BasicTransformerBlock
from comfy.patcher_extension import WrappersMP

from ...drive_ops.diffusion.temporal_attention import TemporalAttention
from .attention import make_frame_order_wrappers
from .keys import FRAME_ORDER_KEY, FRAME_ORDER_REQUIRED_KEY, TEMPORAL_MODULE, TEMPORAL_WRAPPER_KEY

TEMPORAL_REFUSAL = (
    "This MODEL carries Tune-A-Video temporal layers (from DRIVE_TuneAVideo or DRIVE_LoadTunedVideoModel): they "
    "attend across the clip's frames, in order, inside every UNet call, but the frames were re-batched: the RAVE "
    "grid shuffle (grid_size > 1 or shuffle on), max_grids_per_call below the frame count, context windows or "
    "area conditioning. Set grid_size 1, shuffle off and max_grids_per_call 0 in Invert Video and the Masked-CFG "
    "Sampler (or sample with core KSampler).")


class TemporalTransformerBlock(BasicTransformerBlock):
    """A transformer block followed by a temporal layer: ``block(x)``, then attention over the frames."""

    def __init__(self, block: BasicTransformerBlock, temporal: TemporalAttention):
        torch.nn.Module.__init__(self)
        for name, value in vars(block).items():
            if not name.startswith("_"):
                setattr(self, name, value)
        for name, child in block.named_children():
            self.add_module(name, child)
        self.add_module(TEMPORAL_MODULE, temporal)

    @property
    def temporal(self) -> TemporalAttention:
        return getattr(self, TEMPORAL_MODULE)

    def forward(self, x, context=None, transformer_options={}):
        x = super().forward(x, context=context, transformer_options=transformer_options)
        # the frame-order wrappers give the first frame of the call, None when re-batched; the grid wrapper
        # never splits the clip for this MODEL, so only a call that starts at frame 0 holds it whole
        if transformer_options.get(FRAME_ORDER_KEY, 0) != 0:
            raise RuntimeError(TEMPORAL_REFUSAL)
        return self.temporal(x, len(transformer_options.get("cond_or_uncond") or [0]))


def transformer_block_paths(model) -> list[str]:
    """``diffusion_model.<path>`` of every transformer block of a ComfyUI UNet, in module order."""
    unet = model.get_model_object("diffusion_model")
    if not hasattr(unet, "input_blocks"):
        raise ValueError(f"Tune-A-Video tunes UNet models (SD1.x / SD2 / SDXL); {type(unet).__name__} has no "
                         "input/middle/output blocks")
    paths = [f"diffusion_model.{name}" for name, module in unet.named_modules()
             if isinstance(module, BasicTransformerBlock)]
    if not paths:
        raise ValueError("this UNet has no transformer blocks to add temporal layers to")
    return paths


def original_block(model, path: str) -> BasicTransformerBlock:
    """The clone's own block at ``path`` (not one another loaded clone has swapped in); refuses a tuned one."""
    block = model.get_model_object(path)
    if isinstance(block, TemporalTransformerBlock):
        raise ValueError("this MODEL already has Tune-A-Video temporal layers (it was tuned or loaded with tuned "
                         "weights); connect the base checkpoint's MODEL instead")
    return block


def new_temporal_layers(model, seed: int) -> dict[str, TemporalAttention]:
    """A fresh temporal layer (fp32, CPU, zero output) per transformer block, shaped like the block's attention."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    layers = {}
    with torch.inference_mode(False):
        for path in transformer_block_paths(model):
            block = original_block(model, path)
            layers[path] = TemporalAttention(block.norm1.normalized_shape[0], block.n_heads, block.d_head, generator)
    return layers


def has_temporal_layers(model) -> bool:
    return any(isinstance(obj, TemporalTransformerBlock) for obj in model.object_patches.values())


def apply_temporal_layers(model, layers: dict[str, TemporalAttention]):
    """A clone of ``model`` whose transformer blocks run ``layers`` after them, with the frame-order checks."""
    patched = model.clone()
    for path, layer in layers.items():
        patched.add_object_patch(path, TemporalTransformerBlock(original_block(model, path), layer))
    patched.model_options["transformer_options"][FRAME_ORDER_REQUIRED_KEY] = TEMPORAL_REFUSAL
    predict_noise, apply_model = make_frame_order_wrappers()
    for kind, wrapper in ((WrappersMP.PREDICT_NOISE, predict_noise), (WrappersMP.APPLY_MODEL, apply_model)):
        patched.remove_wrappers_with_key(kind, TEMPORAL_WRAPPER_KEY)
        patched.add_wrapper_with_key(kind, TEMPORAL_WRAPPER_KEY, wrapper)
    return patched
