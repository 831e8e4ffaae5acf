"""Build SAM 2 / 2.1 video models from the ``sam2`` package's modules, without hydra.

The ``sam2`` package is optional: ``sam2_predictor.import_sam2`` imports it when a model
is built, and a missing install raises an error with the exact recipe. The
variant (tiny / small / base+ / large) and version (2 / 2.1) are read off a state
dict's keys and shapes, and the model is constructed directly with the values of the
package's ``configs/sam2*/sam2*_hiera_*.yaml`` files: no hydra compose, no global
config state, and any ``image_size`` (tests run at 256; checkpoints are trained at 1024).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from ..core.weights import WeightFileError, load_weight_file
from .sam2_predictor import SamuraiVideoPredictor, import_sam2

SAM2_FILES = ("sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large")

# Hiera trunk per size (configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml; sam2 shares them)
_TRUNKS = {
    "tiny": dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
                 window_pos_embed_bkg_spatial_size=(7, 7), window_spec=(8, 4, 14, 7)),
    "small": dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13),
                  window_pos_embed_bkg_spatial_size=(7, 7), window_spec=(8, 4, 14, 7)),
    "base_plus": dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3), global_att_blocks=(12, 16, 20),
                      window_pos_embed_bkg_spatial_size=(14, 14), window_spec=(8, 4, 14, 7)),
    "large": dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4), global_att_blocks=(23, 33, 43),
                  window_pos_embed_bkg_spatial_size=(14, 14), window_spec=(8, 4, 16, 8)),
}
SAM2_SIZES = tuple(_TRUNKS)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Sam2Variant:
    """Which SAM 2 checkpoint a state dict is: ``version`` "2" or "2.1", ``size`` in SAM2_SIZES."""

    version: str
    size: str

    @property
    def label(self) -> str:
        return f"sam{self.version}_hiera_{self.size}"


def detect_sam2_variant(state_dict: dict[str, torch.Tensor]) -> Sam2Variant:
    """Read version and size from a SAM 2 state dict (only keys and shapes are looked at)."""
    key = "image_encoder.trunk.patch_embed.proj.weight"
    if key not in state_dict:
        raise WeightFileError(f"this file holds no SAM 2 image encoder (image_encoder.trunk.patch_embed), so it "
                              f"is not a SAM 2 checkpoint. It should be {SAM2_CHECKPOINT}. {GET_SAM2}")
    embed_dim = int(state_dict[key].shape[0])
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))}
    depth = max(blocks) + 1 if blocks else 0
    size = next((name for name, t in _TRUNKS.items()
                 if t["embed_dim"] == embed_dim and sum(t["stages"]) == depth), None)
    if size is None:
        raise WeightFileError(f"unknown SAM 2 trunk: embed_dim {embed_dim}, {depth} blocks (known: tiny, small, "
                              f"base+, large). It should be {SAM2_CHECKPOINT}. {GET_SAM2}")
    version = "2.1" if "no_obj_embed_spatial" in state_dict else "2"
    return Sam2Variant(version, size)


def check_image_size(image_size: int) -> None:
    """Refuse an ``image_size`` that is not a positive multiple of 32 (the trunk's total stride)."""
    if image_size < 32 or image_size % 32:
        low = max(32, image_size // 32 * 32)
        raise ValueError(f"image_size {image_size} must be a multiple of 32 (the stride of SAM 2's image encoder): "
                         f"use {low} or {low + 32}")


def build_sam2_video_model(variant: Sam2Variant, image_size: int = 1024, device: torch.device | str | None = None):
    """Construct a ``SamuraiVideoPredictor`` (SAM2VideoPredictor + our SAMURAI hooks), random weights.

    ``image_size`` must be a multiple of 32 (the trunk's total stride); SAM 2 is trained
    at 1024. ``device`` is where the parameters are created.
    """
    import_sam2()
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
    from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
    from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine
    from sam2.modeling.sam.transformer import RoPEAttention


    check_image_size(image_size)
    t = _TRUNKS[variant.size]
    e = t["embed_dim"]
    feat = image_size // 16
    sam21 = variant.version == "2.1"
    with torch.device(device or "cpu"):
        trunk = Hiera(embed_dim=e, num_heads=t["num_heads"], stages=t["stages"],
                      global_att_blocks=t["global_att_blocks"],
                      window_pos_embed_bkg_spatial_size=t["window_pos_embed_bkg_spatial_size"],
                      window_spec=t["window_spec"])
        neck = FpnNeck(position_encoding=PositionEmbeddingSine(num_pos_feats=256, normalize=True, scale=None,
                                                               temperature=10000),
                       d_model=256, backbone_channel_list=[8 * e, 4 * e, 2 * e, e], fpn_top_down_levels=[2, 3],
                       fpn_interp_model="nearest")
        image_encoder = ImageEncoder(trunk=trunk, neck=neck, scalp=1)
        rope = dict(rope_theta=10000.0, feat_sizes=[feat, feat], embedding_dim=256, num_heads=1,
                    downsample_rate=1, dropout=0.1)
        layer = MemoryAttentionLayer(activation="relu", dim_feedforward=2048, dropout=0.1, pos_enc_at_attn=False,
                                     self_attention=RoPEAttention(**rope), d_model=256,
                                     pos_enc_at_cross_attn_keys=True, pos_enc_at_cross_attn_queries=False,
                                     cross_attention=RoPEAttention(**rope, rope_k_repeat=True, kv_in_dim=64))
        memory_attention = MemoryAttention(d_model=256, pos_enc_at_input=True, layer=layer, num_layers=4)
        memory_encoder = MemoryEncoder(
            out_dim=64,
            position_encoding=PositionEmbeddingSine(num_pos_feats=64, normalize=True, scale=None, temperature=10000),
            mask_downsampler=MaskDownSampler(kernel_size=3, stride=2, padding=1),
            fuser=Fuser(CXBlock(dim=256, kernel_size=7, padding=3, layer_scale_init_value=1e-6, use_dwconv=True),
                        num_layers=2))
        model = SamuraiVideoPredictor(
            image_encoder=image_encoder, memory_attention=memory_attention, memory_encoder=memory_encoder,
            num_maskmem=7, image_size=image_size, sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0,
            use_mask_input_as_output_without_sam=True, directly_add_no_mem_embed=True,
            no_obj_embed_spatial=sam21, use_high_res_features_in_sam=True, multimask_output_in_sam=True,
            iou_prediction_use_sigmoid=True, use_obj_ptrs_in_encoder=True, add_tpos_enc_to_obj_ptrs=sam21,
            proj_tpos_enc_in_obj_ptrs=sam21, use_signed_tpos_enc_to_obj_ptrs=sam21,
            only_obj_ptrs_in_the_past_for_eval=True, pred_obj_scores=True, pred_obj_scores_mlp=True,
            fixed_no_obj_ptr=True, multimask_output_for_tracking=True, use_multimask_token_for_obj_ptr=True,
            multimask_min_pt_num=0, multimask_max_pt_num=1, use_mlp_for_obj_ptr_proj=True,
            compile_image_encoder=False,
            # the video predictor's post-processing (build_sam2_video_predictor); hole filling
            # needs sam2's CUDA extension, which this install recipe leaves out
            sam_mask_decoder_extra_args=dict(dynamic_multimask_via_stability=True,
                                             dynamic_multimask_stability_delta=0.05,
                                             dynamic_multimask_stability_thresh=0.98),
            binarize_mask_from_pts_for_mem_enc=True, fill_hole_area=0)
    return model.eval()


SAM2_CHECKPOINT = ("a SAM 2 / 2.1 checkpoint: one of " + ", ".join(f + ".pt" for f in SAM2_FILES)
                   + " (or SAM 2.0's, or their .safetensors conversions)")
GET_SAM2 = ("Download it again from the facebookresearch/sam2 repository's checkpoint links (or its Hugging Face "
            "pages) into models/sam2.")


def load_sam2_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a SAM 2 checkpoint: ``.pt`` (its ``model`` key, weights_only) or ``.safetensors``.

    Raises ``core.weights.WeightFileError`` naming the file, the fault and how to get a good one.
    """
    ckpt = load_weight_file(path, SAM2_CHECKPOINT, GET_SAM2)
    if isinstance(ckpt.get("model"), dict):
        ckpt = ckpt["model"]
    return ckpt


def load_sam2_model(path: str | os.PathLike, precision: str = "fp32", image_size: int = 1024):
    """Checkpoint file -> eval-mode SAM 2 video model on the CPU.

    ``precision`` (fp32/bf16/fp16) is the autocast dtype tracking runs in, kept on the
    model as ``autocast_dtype``; the weights stay float32, as in SAM 2's and SAMURAI's
    own demos, because sam2 feeds float32 frames and masks into some layers that
    autocast does not cover on every device. Returns ``(model, variant)``. The load is strict: a file of another architecture
    raises a ValueError naming the detected variant.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
    check_image_size(image_size)
    state_dict = load_sam2_state_dict(path)
    variant = detect_sam2_variant(state_dict)
    model = build_sam2_video_model(variant, image_size=image_size)
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as err:  # a tensor of another shape
        missing, unexpected = [str(err).splitlines()[-1].strip()[:200]], []
    if missing or unexpected:
        raise WeightFileError(f"{os.path.basename(path)} looks like {variant.label} but does not fit it: "
                              f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}. It should be "
                              f"{SAM2_CHECKPOINT}. {GET_SAM2}")
    model.autocast_dtype = PRECISIONS[precision]
    return model, variant
