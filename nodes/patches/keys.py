"""Every key the pack sets on a MODEL or in a run's options, in one place, and how the patches combine.

| patch | ComfyUI mechanism | key | stacks with |
|---|---|---|---|
| RAVE grid shuffle | ``WrappersMP.CALC_COND_BATCH`` wrapper (+ a ``PREDICT_NOISE`` step guard with shuffle on) | ``GRID_WRAPPER_KEY`` | one per MODEL: a second grid patch replaces the first (``remove_wrappers_with_key`` first); other packs' wrappers under other keys stay |
| masked CFG | ``set_model_sampler_post_cfg_function`` | none (a list) | every other post-CFG function, in the order they were added |
| masked CFG's cfg-1 gate | ``WrappersMP.PREDICT_NOISE`` wrapper setting ``disable_cfg1_optimization`` per call, only at steps that read uncond | ``MASKED_CFG_WRAPPER_KEY`` | one per masked-CFG patch (each only turns the shortcut off); a static ``disable_cfg1_optimization`` set by another patch stays in force |
| masked CFG's step guard and background prompt | ``PREDICT_NOISE`` (step guard, background hand-over) + ``OUTER_SAMPLE`` (background among the guider's conds) wrappers | ``MASKED_CFG_GUARD_KEY``, ``MASKED_CFG_BACKGROUND_KEY`` | one per MODEL: a later masked-CFG patch's replace an earlier one's (one background per MODEL) |
| cross-frame attention | ``set_model_attn1_patch`` + ``WrappersMP.PREDICT_NOISE`` / ``APPLY_MODEL`` wrappers | ``CROSS_FRAME_WRAPPER_KEY`` | other attn1 patches (they run in turn); refuses a UNet batch that is not the clip, or a run of it, in frame order (the grid shuffle with grid_size > 1 or shuffle, context windows) |
| cross-frame attention on Flux | ``transformer_options["optimized_attention_override"]`` (core's ``wrap_attn``) + the same wrappers + an ``APPLY_MODEL`` wrapper setting ``JOINT_TOKENS_KEY`` + ``FRAME_ORDER_REQUIRED_KEY`` | ``CROSS_FRAME_WRAPPER_KEY`` | another pack's attention override (it still runs, on the new K/V); refuses the grid shuffle, chunked or re-batched calls |
| STEM attention | ``set_model_attn1_replace`` on every self-attention block + a ``PREDICT_NOISE`` wrapper | ``STEM_WRAPPER_KEY`` | replaces any earlier attn1 replacement of those blocks (the last one set wins) |
| Tune-A-Video temporal layers | ``add_object_patch`` of every transformer block (the same block plus ``TEMPORAL_MODULE``) + the frame-order wrappers | ``TEMPORAL_WRAPPER_KEY`` | every patch of the blocks' own layers (same parameter names); refuses a re-batched UNet call like cross-frame attention |
| frame-order requirement | ``transformer_options[FRAME_ORDER_REQUIRED_KEY]`` = the refusal message, read by the grid wrapper before it grids or chunks | ``FRAME_ORDER_REQUIRED_KEY`` | - |
| tuned weights | ``set_attachments`` (what Save Tuned Video Model writes) | ``TUNED_ATTACHMENT_KEY`` | one per MODEL; a MODEL that has one cannot be tuned or loaded onto again |

Values the patches put into ``transformer_options`` (set in place on the run's own copy and
restored afterwards, never by copying the dict: ComfyUI copies nested dicts on merging, so
per-run state lives in objects, not dicts):

| key | set by | read by | value |
|---|---|---|---|
| ``GRID_SPAN_KEY`` | the grid wrapper, per UNet call | cross-frame attention, STEM | :class:`GridSpan` of the call |
| ``CROSS_FRAME_ANCHOR_KEY`` | the cross-frame patch (on the MODEL) | the grid wrapper, to run chunks outward from the anchor | anchor frame |
| ``CROSS_FRAME_STATE_KEY`` | the cross-frame PREDICT_NOISE wrapper, per step | its APPLY_MODEL wrapper and attn1 patch | the sampler's frames and the K/V carried across chunks |
| ``FRAME_ORDER_KEY`` | the cross-frame APPLY_MODEL wrapper, per UNet call | its attn1 patch | first frame of the call, None when not in frame order |
| ``JOINT_TOKENS_KEY`` | the Flux cross-frame APPLY_MODEL wrapper, per model call | its attention override | (text tokens, image tokens) of the call |
| ``STEM_GROUP_KEY`` | the STEM patch (on the MODEL) | the grid wrapper, to keep STEM's frame groups whole | ``chunk_frames`` (0 = the whole clip) |
| ``STEM_FRAMES_KEY`` | the STEM PREDICT_NOISE wrapper, per step | its attn1 replacement | frames the sampler holds |
| ``GRID_STEPS_KEY``, ``MASKED_CFG_STEPS_KEY`` | the step guards, per run | themselves | the last step evaluated |
| ``BACKGROUND_CONDS_KEY`` | the masked-CFG wrappers (guider conds, then model_options) | the post-CFG function | the processed background conditioning |

The samplers (``patches.samplers``) are KSAMPLER objects and set nothing on the MODEL.
"""

from __future__ import annotations

from typing import NamedTuple

GRID_WRAPPER_KEY = "drive_rave_grid"
MASKED_CFG_WRAPPER_KEY = "drive_masked_cfg"
MASKED_CFG_GUARD_KEY = "drive_masked_cfg_guard"
MASKED_CFG_BACKGROUND_KEY = "drive_masked_cfg_background"
CROSS_FRAME_WRAPPER_KEY = "drive_cross_frame"
STEM_WRAPPER_KEY = "drive_stem"

GRID_SPAN_KEY = "drive_grid_span"
CROSS_FRAME_ANCHOR_KEY = "drive_cross_frame_anchor"
CROSS_FRAME_STATE_KEY = "drive_cross_frame_state"
FRAME_ORDER_KEY = "drive_frame_order"
TEMPORAL_WRAPPER_KEY = "drive_temporal"
FRAME_ORDER_REQUIRED_KEY = "drive_frame_order_required"
TUNED_ATTACHMENT_KEY = "drive_tuned_video"
JOINT_TOKENS_KEY = "drive_joint_tokens"
TEMPORAL_MODULE = "attn_temp"
STEM_GROUP_KEY = "drive_stem_group"
STEM_FRAMES_KEY = "drive_stem_frames"
GRID_STEPS_KEY = "drive_grid_steps"
MASKED_CFG_STEPS_KEY = "drive_masked_cfg_steps"
BACKGROUND_CONDS_KEY = "drive_background"


class GridSpan(NamedTuple):
    """Which grids one UNet call of the grid wrapper holds: ``start:stop`` of ``total``, made from ``frames``
    frames; ``in_frame_order`` when the grids are the frames themselves in order (grid_size 1, no shuffle)."""

    start: int
    stop: int
    total: int
    frames: int
    in_frame_order: bool
