"""The bad-input catalogue, node half: bad or edge tensors and numbers into the nodes' own ``execute``.

ComfyUI is imported in-process (its real model patcher, sampling loop and node
classes; a tiny random SD1.5-shaped UNet), so every case runs the node's full code path
in a fraction of a second. What needs a server (prompt validation, files, the output
folder, tracking with a SAM 2 file) is in test_bad_input_api.py. Each row is a Case of
tests/bad_input_catalogue.py: the error text the node must give, or a check of its output.
"""

from __future__ import annotations

import pytest
import torch

from bad_input_catalogue import Case, assert_outcome, classify
from bad_input_files import poked, random_frames

pytestmark = pytest.mark.integration

NAN, INF = float("nan"), float("inf")


def box_mask(t=4, h=16, w=16) -> torch.Tensor:
    m = torch.zeros(t, h, w)
    m[:, h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1.0
    return m


def latent(t=2, seed=2) -> dict:
    return {"samples": torch.randn(t, 4, 8, 8, generator=torch.Generator().manual_seed(seed))}


FEW_NAN = poked(poked(random_frames(), (1, 3, 3, 0), NAN), (2, 8, 8, 2), NAN)


def composite(p, edited=None, original=None, mask=None, feather=1.0, blend="laplacian"):
    return p["composite"].CompositeBackground.execute(
        edited=random_frames(seed=1) if edited is None else edited,
        original=random_frames() if original is None else original,
        mask=box_mask() if mask is None else mask, grow=1, feather=feather, blend=blend).result[0]


def align(p, edited=None, offset=0, stride=1, mask=None):
    return p["composite"].AlignEditedClip.execute(
        original=random_frames(), edited=random_frames(9, 24, 24, seed=1) if edited is None else edited,
        frame_offset=offset, frame_stride=stride, resize_policy="crop_centre", mask=mask).result


def color_filters(p, image=None, mask=None, brightness=0.2):
    return p["composite"].ColorFilters.execute(image=random_frames() if image is None else image, temperature=0.1,
                                               brightness=brightness, contrast=0.0, saturation=0.0, highlight=0.0,
                                               shadow=0.0, mask=mask).result[0]


def harmonize(p, image=None, mask=None, strength=1.0, fps=25.0):
    return p["composite"].Harmonize.execute(image=random_frames() if image is None else image,
                                            mask=box_mask() if mask is None else mask, strength=strength,
                                            temporal_smoothing=0.96, fps=fps, frames_per_batch=2).result


def preview(p, images=None, mask=None, opacity=0.5):
    return p["mask"].MaskPreview.execute(images=random_frames() if images is None else images,
                                         mask=box_mask() if mask is None else mask, color="red",
                                         opacity=opacity, outline_px=1).result[0]


def mask_tools(p, mask, threshold=0.0, feather_px=0.0):
    return p["mask"].MaskTools.execute(mask=mask, threshold=threshold, fill_holes=False, min_island_px=0,
                                       temporal_radius=0, grow_px=0, feather_px=feather_px, invert=False).result[0]


def propagate(p, images=None, mask=None, frame_index=0, threshold=0.5):
    images = random_frames() if images is None else images
    return p["mask"].PropagateMask.execute(images=images, mask=box_mask(1, *images.shape[1:3]) if mask is None
                                           else mask, frame_index=frame_index, flow_quality="fast",
                                           occlusion_check=True, threshold=threshold).result[0]


def report(p, original=None, edited=None, mask=None, dilation_px=1):
    return p["evaluate"].EditReport.execute(original=random_frames() if original is None else original,
                                            edited=random_frames(seed=1) if edited is None else edited,
                                            dilation_px=dilation_px, flow_preset="ultrafast", prompt="",
                                            mask=mask).result


def strip(p, source=None, edited=None, mask=None, which="0, -1"):
    return p["evaluate"].CompareStrip.execute(source=random_frames() if source is None else source,
                                              edited=random_frames(seed=1) if edited is None else edited, frames=which,
                                              mask=mask).result[0]


def invert(p, s, lat=None, eta=0.5, cfg=1.0, grid_size=1, model="model"):
    return p["invert"].InvertVideo.execute(model=s[model], conditioning=s["negative"],
                                           latent=latent() if lat is None else lat, steps=2, method="easyinv",
                                           eta=eta, window_start=0.0, window_length=1.0, blend="after", cfg=cfg,
                                           grid_size=grid_size, max_grids_per_call=0).result[0]


def sample(p, s, lat=None, mask=None, steps=2, cfg=5.0, cfg_start=0.0, grid_size=1, shuffle=False,
           model="model", pix2video_weight=0.0):
    return p["edit"].MaskedCFGSampler.execute(
        model=s[model], positive=s["positive"], negative=s["negative"], latent=latent() if lat is None else lat,
        steps=steps, cfg=cfg, cfg_start=cfg_start, grid_size=grid_size, shuffle=shuffle, seed=3,
        max_grids_per_call=0, mask_mode="nearest", mask_threshold=0.5, mask=mask,
        pix2video_weight=pix2video_weight).result[0]


def sample_counting(p, s, **kwargs):
    """(UNet input shapes, result) of a Masked-CFG Sampler run on the recording model."""
    s["seen"].clear()
    out = sample(p, s, model="recorded", **kwargs)
    return list(s["seen"]), out


def sample_no_unet(p, s, **kwargs):
    """Run the sampler; the UNet must not have been called when it refuses (the check is before step one)."""
    s["seen"].clear()
    try:
        return sample(p, s, model="recorded", **kwargs)
    finally:
        assert not s["seen"], f"the UNet ran {len(s['seen'])} times before the refusal"


def _core_sample(p, s, model) -> torch.Tensor:
    """ComfyUI's own sampling (what KSampler runs) of a 2-frame latent with ``model``, DDIM."""
    import comfy.sample
    import comfy.samplers

    table = s["model"].get_model_object("model_sampling").sigmas.float()
    x = latent()["samples"]
    return comfy.sample.sample_custom(model, torch.zeros_like(x), 5.0, comfy.samplers.KSAMPLER(p["inversion"].sample_ddim),
                                      p["schedule"].ddim_sampling_sigmas(table, 1), s["positive"], s["negative"], x,
                                      disable_pbar=True, seed=0)


def masked_patch_sample(p, s, mask, cfg_start=0.0):
    """Masked CFG Patch into core sampling with one step, unguided at cfg_start 0."""
    patched = p["edit"].MaskedCFGPatch.execute(model=s["model"], mask=mask, cfg_start=cfg_start, mask_mode="nearest",
                                               mask_threshold=0.5).result[0]
    return _core_sample(p, s, patched)


def grid_patch_sample(p, s, grid_size):
    """RAVE Grid Patch on the recording model into core sampling; returns the UNet input shapes."""
    patched = p["edit"].RAVEGridPatch.execute(model=s["recorded"], grid_size=grid_size, shuffle=True, seed=0,
                                              max_grids_per_call=0).result[0]
    s["seen"].clear()
    _core_sample(p, s, patched)
    return list(s["seen"])


def _inside_equals_edited(out: torch.Tensor) -> bool:
    inner = box_mask()[:, 5:11, 5:11].bool()
    return float(out.max()) <= 1.0 and torch.equal(out[:, 5:11, 5:11][inner],
                                                    random_frames(seed=1)[:, 5:11, 5:11][inner])


IMAGE_FIX = ("--fp32-vae", "--bf16-vae")
ALL_ONE_LAT = torch.ones(1, 64, 64)

CASES = [
    # Composite Background
    (Case("composite-nan-edited", "DRIVE_CompositeBackground", "2 NaN pixels in the edited frames (laplacian)",
          ("the edited input holds non-finite values (2 NaN)", *IMAGE_FIX)),
     lambda p, s: composite(p, edited=FEW_NAN)),
    (Case("composite-inf-original", "DRIVE_CompositeBackground", "+inf in the original",
          ("the original input holds non-finite values (1 +inf)",)),
     lambda p, s: composite(p, original=poked(random_frames(), (0, 1, 1, 1), INF))),
    (Case("composite-nan-mask", "DRIVE_CompositeBackground", "a NaN in the mask", ("the mask input", "1 NaN")),
     lambda p, s: composite(p, mask=poked(box_mask(), (0, 0, 0), NAN))),
    (Case("composite-mask-3", "DRIVE_CompositeBackground", "a mask of 3.0 inside the box",
          check=_inside_equals_edited),
     lambda p, s: composite(p, mask=box_mask() * 3.0, feather=0.0, blend="alpha")),
    (Case("composite-frames", "DRIVE_CompositeBackground", "3 edited frames over 4", ("3 frames but the original has 4",)),
     lambda p, s: composite(p, edited=random_frames(3))),
    (Case("composite-mask-size", "DRIVE_CompositeBackground", "a 10x10 mask on 16x16 frames",
          ("10x10 px but the frames are 16x16",)),
     lambda p, s: composite(p, mask=torch.ones(1, 10, 10))),
    (Case("composite-feather-nan", "DRIVE_CompositeBackground", "feather NaN through the API", ("feather is nan",)),
     lambda p, s: composite(p, feather=NAN)),
    (Case("composite-empty-mask", "DRIVE_CompositeBackground", "an empty mask", check=lambda r: torch.equal(r, random_frames())),
     lambda p, s: composite(p, mask=torch.zeros(16, 16))),
    (Case("composite-1x1", "DRIVE_CompositeBackground", "1-frame 1x1 clips, mask on",
          check=lambda r: torch.equal(r, random_frames(1, 1, 1, seed=1))),
     lambda p, s: composite(p, edited=random_frames(1, 1, 1, seed=1), original=random_frames(1, 1, 1),
                            mask=torch.ones(1, 1), feather=0.0, blend="alpha")),
    # Align Edited Clip
    (Case("align-nan-edited", "DRIVE_AlignEditedClip", "2 NaN pixels in the edited frames",
          ("the edited input holds non-finite values (2 NaN)",)),
     lambda p, s: align(p, edited=FEW_NAN)),
    (Case("align-stride-0", "DRIVE_AlignEditedClip", "frame_stride 0 through the API", ("frame_stride must be at least 1",)),
     lambda p, s: align(p, stride=0)),
    (Case("align-offset-past", "DRIVE_AlignEditedClip", "frame_offset 4 on a 4-frame original",
          ("frame_offset 4 is beyond the source's last frame",)),
     lambda p, s: align(p, offset=4)),
    (Case("align-before", "DRIVE_AlignEditedClip", "9 edited frames at offset -9: no overlap",
          ("the edit ends before the source starts",)),
     lambda p, s: align(p, offset=-9)),
    (Case("align-mask-size", "DRIVE_AlignEditedClip", "a 10x10 mask: neither clip's size",
          ("the mask is 10x10 px with 1 frames",)),
     lambda p, s: align(p, mask=torch.ones(1, 10, 10))),
    (Case("align-mask-3", "DRIVE_AlignEditedClip", "a mask of 3.0 (clamped): the covered mask",
          check=lambda r: torch.equal(r[1], r[2]) and tuple(r[0].shape) == (4, 16, 16, 3)),
     lambda p, s: align(p, mask=torch.full((16, 16), 3.0))),
    # Color Filters
    (Case("filters-inf", "DRIVE_ColorFilters", "+inf pixels", ("the image input holds non-finite values (1 +inf)",)),
     lambda p, s: color_filters(p, image=poked(random_frames(), (3, 2, 2, 0), INF))),
    (Case("filters-nan-arg", "DRIVE_ColorFilters", "brightness NaN", ("brightness is nan",)),
     lambda p, s: color_filters(p, brightness=NAN)),
    (Case("filters-mask-frames", "DRIVE_ColorFilters", "7 mask frames for 4", ("7 frames but the video has 4",)),
     lambda p, s: color_filters(p, mask=box_mask(7))),
    (Case("filters-empty-mask", "DRIVE_ColorFilters", "an empty mask",
          check=lambda r: torch.allclose(r, random_frames())),
     lambda p, s: color_filters(p, mask=torch.zeros(4, 16, 16))),
    (Case("filters-7x5", "DRIVE_ColorFilters", "7x5 frames without a mask",
          check=lambda r: tuple(r.shape) == (4, 5, 7, 3) and bool(torch.isfinite(r).all())),
     lambda p, s: color_filters(p, image=random_frames(4, 5, 7))),
    # Harmonize
    (Case("harmonize-nan", "DRIVE_Harmonize", "2 NaN pixels (the old Lab fallback made the whole clip NaN)",
          ("the image input holds non-finite values (2 NaN)", *IMAGE_FIX)),
     lambda p, s: harmonize(p, image=FEW_NAN)),
    (Case("harmonize-strength-nan", "DRIVE_Harmonize", "strength NaN", ("strength is nan",)),
     lambda p, s: harmonize(p, strength=NAN)),
    (Case("harmonize-fps-nan", "DRIVE_Harmonize", "fps NaN", ("fps is nan",)),
     lambda p, s: harmonize(p, fps=NAN)),
    (Case("harmonize-all-ones", "DRIVE_Harmonize", "an all-one mask (no background)",
          check=lambda r: bool(torch.isfinite(r[0]).all()) and float((r[0] - random_frames()).abs().max()) < 2e-3),
     lambda p, s: harmonize(p, mask=torch.ones(16, 16))),
    (Case("harmonize-mask-2", "DRIVE_Harmonize", "a mask of 2.0 gives what the 0..1 mask gives (clamped)",
          check=lambda r: torch.equal(r[0], r[1])),
     lambda p, s: (harmonize(p, mask=box_mask() * 2.0)[0], harmonize(p, mask=box_mask())[0])),
    # Mask Preview / Mask Tools / Propagate Mask
    (Case("preview-nan", "DRIVE_MaskPreview", "NaN frames", ("the images input holds non-finite values",)),
     lambda p, s: preview(p, images=FEW_NAN)),
    (Case("preview-mask-size", "DRIVE_MaskPreview", "a 16x8 mask on 16x16 frames", ("8x16 px but the frames are 16x16",)),
     lambda p, s: preview(p, mask=torch.ones(1, 16, 8))),
    (Case("preview-opacity-nan", "DRIVE_MaskPreview", "opacity NaN", ("opacity is nan",)),
     lambda p, s: preview(p, opacity=NAN)),
    (Case("preview-1x1", "DRIVE_MaskPreview", "a 1x1 frame and mask", check=lambda r: tuple(r.shape) == (1, 1, 1, 3)),
     lambda p, s: preview(p, images=random_frames(1, 1, 1), mask=torch.ones(1, 1))),
    (Case("tools-nan", "DRIVE_MaskTools", "a NaN mask", ("the mask input holds non-finite values",)),
     lambda p, s: mask_tools(p, poked(box_mask(), (1, 1, 1), NAN))),
    (Case("tools-over-one", "DRIVE_MaskTools", "a soft mask of 2.0 kept soft (threshold 0)",
          check=lambda r: float(r.max()) == 1.0),
     lambda p, s: mask_tools(p, box_mask() * 2.0)),
    (Case("tools-2d", "DRIVE_MaskTools", "an [H,W] mask", check=lambda r: tuple(r.shape) == (1, 16, 16)),
     lambda p, s: mask_tools(p, box_mask(1)[0], threshold=0.5)),
    (Case("tools-feather-nan", "DRIVE_MaskTools", "feather_px NaN", ("feather_px is nan",)),
     lambda p, s: mask_tools(p, box_mask(), feather_px=NAN)),
    (Case("propagate-empty", "DRIVE_PropagateMask", "an empty mask", ("the mask is empty on frame 0",)),
     lambda p, s: propagate(p, mask=torch.zeros(1, 16, 16))),
    (Case("propagate-frame-index", "DRIVE_PropagateMask", "frame_index 9 on 4 frames", ("past the clip's last frame (3)",)),
     lambda p, s: propagate(p, frame_index=9)),
    (Case("propagate-nan", "DRIVE_PropagateMask", "NaN frames", ("the images input holds non-finite values",)),
     lambda p, s: propagate(p, images=FEW_NAN)),
    (Case("propagate-one-frame", "DRIVE_PropagateMask", "a 1-frame clip",
          check=lambda r: torch.equal(r, box_mask(1))),
     lambda p, s: propagate(p, images=random_frames(1))),
    (Case("propagate-threshold-nan", "DRIVE_PropagateMask", "threshold NaN", ("threshold is nan",)),
     lambda p, s: propagate(p, threshold=NAN)),
    # Edit Report / Compare Strip
    (Case("report-nan", "DRIVE_EditReport", "NaN edited frames with a mask (was: 'the mask covers every pixel')",
          ("the edited clip holds non-finite values", *IMAGE_FIX)),
     lambda p, s: report(p, edited=FEW_NAN, mask=box_mask())),
    (Case("report-all-ones", "DRIVE_EditReport", "an all-one mask", ("covers every pixel of every frame",)),
     lambda p, s: report(p, mask=torch.ones(4, 16, 16))),
    (Case("report-frames", "DRIVE_EditReport", "4 source frames, 3 edited", ("4 frames but the edited clip has 3",)),
     lambda p, s: report(p, edited=random_frames(3))),
    (Case("report-nan-mask", "DRIVE_EditReport", "a NaN mask", ("the mask input holds non-finite values",)),
     lambda p, s: report(p, mask=poked(box_mask(), (0, 0, 0), NAN))),
    (Case("report-empty-mask", "DRIVE_EditReport", "an empty mask: the whole frame is background",
          check=lambda r: r[2] < 100 and "n/a" not in r[1].split("background PSNR")[1].splitlines()[0]),
     lambda p, s: report(p, mask=torch.zeros(4, 16, 16))),
    (Case("strip-inf", "DRIVE_CompareStrip", "+inf in the edited clip", ("the edited input holds non-finite values",)),
     lambda p, s: strip(p, edited=poked(random_frames(seed=1), (0, 0, 0, 0), INF))),
    (Case("strip-size", "DRIVE_CompareStrip", "8x8 edited frames for a 16x16 source", ("are 8x8",)),
     lambda p, s: strip(p, edited=random_frames(4, 8, 8))),
    (Case("strip-frame-range", "DRIVE_CompareStrip", 'frames "0, 99" on a 4-frame clip', ("frame 99 does not exist",)),
     lambda p, s: strip(p, which="0, 99")),
    # Invert Video / EasyInv / STEM
    (Case("invert-nan-latent", "DRIVE_InvertVideo", "a NaN latent", ("the latent input holds non-finite values",
                                                                      "--fp32-vae")),
     lambda p, s: invert(p, s, lat={"samples": poked(latent()["samples"], (0, 0, 0, 0), NAN)})),
    (Case("invert-eta-nan", "DRIVE_InvertVideo", "eta NaN", ("eta is nan",)),
     lambda p, s: invert(p, s, eta=NAN)),
    (Case("invert-cfg-no-negative", "DRIVE_InvertVideo", "cfg 2 without a negative", ("needs a `negative`",)),
     lambda p, s: invert(p, s, cfg=2.0)),
    (Case("invert-grid-capped", "DRIVE_InvertVideo", "grid_size 8 on 2 frames",
          check=lambda r: tuple(r["samples"].shape) == (2, 4, 8, 8) and bool(torch.isfinite(r["samples"]).all())),
     lambda p, s: invert(p, s, grid_size=8)),
    (Case("easyinv-nan", "DRIVE_EasyInvSampler", "window_start NaN", ("window_start is nan",)),
     lambda p, s: p["invert"].EasyInvSampler.execute(eta=0.5, window_start=NAN, window_length=0.2, blend="after")),
    (Case("stem-nan", "DRIVE_STEMAttention", "temperature NaN", ("temperature is nan",)),
     lambda p, s: p["invert"].STEMAttention.execute(model=s["model"], num_bases=4, iterations=1, temperature=NAN,
                                                    chunk_frames=0, init="gaussian", seed=0)),
    # Masked-CFG Sampler / patches
    (Case("sampler-one-unguided-step-bad-mask", "DRIVE_MaskedCFGSampler",
          "steps 1, cfg_start 0 (no guided step) and 3 mask frames for 2 latents",
          ("the mask has 3 frames but the video has 2",)),
     lambda p, s: sample_no_unet(p, s, mask=torch.ones(3, 64, 64), steps=1)),
    (Case("sampler-mask-size", "DRIVE_MaskedCFGSampler", "a 32x32 mask for 64x64 frames",
          ("32x32 px but the latents belong to frames of about 64x64",)),
     lambda p, s: sample_no_unet(p, s, mask=torch.ones(1, 32, 32), steps=1)),
    (Case("sampler-empty-mask", "DRIVE_MaskedCFGSampler", "an empty mask", ("masked CFG would edit nothing",)),
     lambda p, s: sample_no_unet(p, s, mask=torch.zeros(1, 64, 64))),
    (Case("sampler-nan-mask", "DRIVE_MaskedCFGSampler", "a NaN mask", ("the mask input holds non-finite values",)),
     lambda p, s: sample_no_unet(p, s, mask=poked(ALL_ONE_LAT, (0, 0, 0), NAN))),
    (Case("sampler-nan-latent", "DRIVE_MaskedCFGSampler", "a NaN latent", ("the latent input holds non-finite values",)),
     lambda p, s: sample_no_unet(p, s, lat={"samples": poked(latent()["samples"], (1, 2, 3, 4), NAN)})),
    (Case("sampler-cfg-nan", "DRIVE_MaskedCFGSampler", "cfg NaN", ("cfg is nan",)),
     lambda p, s: sample_no_unet(p, s, cfg=NAN)),
    (Case("sampler-grid-capped", "DRIVE_MaskedCFGSampler", "grid_size 8 on 2 frames: the UNet sees 2x2 grids",
          check=lambda r: r[0] and all(shape[-2:] == (16, 16) for shape in r[0])),
     lambda p, s: sample_counting(p, s, grid_size=8, shuffle=True)),
    (Case("sampler-all-ones", "DRIVE_MaskedCFGSampler", "an all-one mask equals the unmasked (global) edit",
          check=lambda r: torch.equal(r[0]["samples"], r[1]["samples"])),
     lambda p, s: (sample(p, s, mask=ALL_ONE_LAT), sample(p, s))),
    (Case("patch-one-unguided-step-bad-mask", "DRIVE_MaskedCFGPatch", "KSampler path, 1 unguided step, mask 32x32",
          ("32x32 px but the latents belong to frames of about 64x64",)),
     lambda p, s: masked_patch_sample(p, s, torch.ones(1, 32, 32))),
    (Case("patch-nan-mask", "DRIVE_MaskedCFGPatch", "a NaN mask", ("the mask input holds non-finite values",)),
     lambda p, s: masked_patch_sample(p, s, poked(ALL_ONE_LAT, (0, 1, 1), NAN))),
    (Case("patch-cfg-start-nan", "DRIVE_MaskedCFGPatch", "cfg_start NaN", ("cfg_start is nan",)),
     lambda p, s: masked_patch_sample(p, s, ALL_ONE_LAT, cfg_start=NAN)),
    (Case("grid-patch-capped", "DRIVE_RAVEGridPatch", "grid_size 8 on 2 frames with core sampling",
          check=lambda r: r and all(shape[-2:] == (16, 16) for shape in r)),
     lambda p, s: grid_patch_sample(p, s, 8)),
    # Cross-Frame Attention / Pix2Video
    (Case("xframe-window", "DRIVE_CrossFrameAttention", "start_percent 0.8 > end_percent 0.2",
          ("start_percent (0.8) must not exceed end_percent (0.2)",)),
     lambda p, s: p["consistency"].CrossFrameAttention.execute(model=s["model"], mode="pix2video", anchor_frame=0,
                                                               include_self=False, layers="mode default",
                                                               start_percent=0.8, end_percent=0.2)),
    (Case("xframe-nan", "DRIVE_CrossFrameAttention", "end_percent NaN", ("end_percent is nan",)),
     lambda p, s: p["consistency"].CrossFrameAttention.execute(model=s["model"], mode="pix2video", anchor_frame=0,
                                                               include_self=False, layers="mode default",
                                                               start_percent=0.0, end_percent=NAN)),
    (Case("pix2video-nan", "DRIVE_Pix2VideoSampler", "weight NaN", ("weight is nan",)),
     lambda p, s: p["consistency"].Pix2VideoSampler.execute(weight=NAN, guided_fraction=0.52, anchor_frame=0)),
]

# ComfyUI 0.3.64 does not check a V3 combo's value against its options (the type is the
# string "COMBO"), so an API prompt reaches execute with any text; each node refuses it
# first thing, before it touches its other inputs (None here).
COMBOS = [
    ("composite", "CompositeBackground", "blend", "alpha, laplacian"),
    ("composite", "AlignEditedClip", "resize_policy", "stretch, crop_centre, pad"),
    ("consistency", "CrossFrameAttention", "mode", "pix2video, sparse_causal, anchor_only"),
    ("consistency", "CrossFrameAttention", "layers", "mode default, decoder, all"),
    ("edit", "MaskedCFGSampler", "mask_mode", "nearest, area"),
    ("edit", "MaskedCFGPatch", "mask_mode", "nearest, area"),
    ("evaluate", "EditReport", "flow_preset", "ultrafast, fast, medium, fine"),
    ("invert", "InvertVideo", "method", "easyinv, ddim, stem, fireflow"),  # was run as easyinv
    ("invert", "InvertVideo", "blend", "after, before"),
    ("invert", "EasyInvSampler", "blend", "after, before"),
    ("invert", "STEMAttention", "init", "gaussian, tokens"),
    ("mask", "PropagateMask", "flow_quality", "auto, fine, medium, fast, ultrafast"),
    ("mask", "MaskPreview", "color", "red, green, blue, yellow, magenta, white"),  # was a KeyError
    ("track", "SAM2Loader", "precision", "fp32, bf16, fp16"),  # was a KeyError
    ("track", "TrackObject", "output_mode", "merged, per_object"),  # was run as merged
    ("track", "TrackObject", "bbox_format", "xyxy, xywh"),  # was read as xyxy
    ("video", "LoadVideo", "size_policy", "keep, crop_to_multiple_of_8, fit_longer_side"),
    ("video", "SaveVideo", "format", "mp4, webm, gif, png"),
]


def unknown_choice(p, module: str, node: str, name: str):
    import inspect

    execute = getattr(p[module], node).execute
    args = {arg: None for arg in inspect.signature(execute).parameters}
    return execute(**dict(args, **{name: "bogus"}))


CASES += [
    (Case(f"combo-{node}-{name}", f"DRIVE_{node}", f"{name} 'bogus' through the API (no combo check in 0.3.64)",
          (f"{name} 'bogus' is not one of its options ({options})", "pick one of them")),
     lambda p, s, m=module, n=node, c=name: unknown_choice(p, m, n, c))
    for module, node, name, options in COMBOS]


@pytest.mark.parametrize("case,run", CASES, ids=[c.id for c, _ in CASES])
def test_bad_input_node(case: Case, run, pack, sd):
    observed, detail = classify(case, lambda: run(pack, sd))
    assert_outcome(case, observed, detail)
