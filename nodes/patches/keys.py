"""Every key the pack sets on a MODEL, in one place, and how the patches combine.

| patch | ComfyUI mechanism | key | stacks with |
|---|---|---|---|
| RAVE grid shuffle | ``WrappersMP.CALC_COND_BATCH`` wrapper | ``GRID_WRAPPER_KEY`` | one per MODEL: a second grid patch replaces the first (``remove_wrappers_with_key`` first); other packs' wrappers under other keys stay |
| masked CFG | ``set_model_sampler_post_cfg_function`` | none (a list) | every other post-CFG function, in the order they were added |
| masked CFG's cfg-1 gate | ``WrappersMP.PREDICT_NOISE`` wrapper setting ``disable_cfg1_optimization`` per call, only at steps that read uncond | ``MASKED_CFG_WRAPPER_KEY`` | one per masked-CFG patch (each only turns the shortcut off); a static ``disable_cfg1_optimization`` set by another patch stays in force |
| cross-frame attention | ``set_model_attn1_patch`` + ``WrappersMP.PREDICT_NOISE`` / ``APPLY_MODEL`` wrappers | ``CROSS_FRAME_WRAPPER_KEY`` | other attn1 patches (they run in turn); refuses a re-batched UNet call (the grid shuffle with grid_size > 1 or shuffle, context windows) |
| frame-order flag | ``transformer_options[FRAME_ORDER_KEY]``, set per UNet call by the APPLY_MODEL wrapper, read by the attn1 patch | ``FRAME_ORDER_KEY`` | - |
| STEM attention | ``set_model_attn1_replace`` on every self-attention block | none (per block) | replaces any earlier attn1 replacement of those blocks (the last one set wins) |

The samplers (``patches.samplers``) are KSAMPLER objects and set nothing on the MODEL.
"""

GRID_WRAPPER_KEY = "drive_rave_grid"
MASKED_CFG_WRAPPER_KEY = "drive_masked_cfg"
CROSS_FRAME_WRAPPER_KEY = "drive_cross_frame"
FRAME_ORDER_KEY = "drive_frame_order"
