"""DRIVE claims 2-4 on the trained test bed, through drive_ops (the nodes' step model).

Three held-out one-object clips (world seeds HELDOUT_START + 21, 22, 23), 8 frames at 64 px,
20 DDIM steps, cfg 7.5, seed 0, the true object mask; the object is recoloured to the first
of green / red / blue that is neither its colour nor the background's. Numbers measured on
these weights are in each test's docstring; thresholds keep a margin below them.

Measured (means over the 3 clips; success per clip in brackets):

    variant                      success            share  bg PSNR  warp e-3  flicker
    masked CFG (the pack)        0.46 [0.38 0 1]    0.39   23.9     30.5      1.98
    plain CFG (no mask)          0.75 [1 0.25 1]    0.51   21.0      7.8      1.25
    RAVE grid 2 + shuffle        0.33 [0 0 1]       0.38   23.9      8.0      1.24
    Pix2Video guidance 30        0.54               0.32   23.3     23.8      6.66
    cross-frame attn (pix2video) 0.46               0.39   24.1     25.7      1.87

DRIVE's ">= 90% of frames blue" claim does NOT hold on this world (0.46 with the mask);
the tests assert what does hold, and the report carries the numbers.
"""

from __future__ import annotations

import pytest
import torch
from quality_edit import (BG_GROW_PX, CLIP_SEEDS, Variant, latent_mask, make_case, run_edit, success,
                          load_testbed_or_skip)

from drive_ops.core.mask_morphology import grow_mask

PER_FRAME = Variant("per-frame")                      # grid 1: every frame edited on its own
VARIANTS = {"masked": Variant(), "plain": Variant("plain", mask=False),
            "rave": Variant("rave", grid=2, shuffle=True),
            "pix2video": Variant("pix2video", pix2video=30.0),
            "xframe": Variant("xframe", cross_frame="pix2video")}


@pytest.fixture(scope="module")
def tb():
    return load_testbed_or_skip()


@pytest.fixture(scope="module")
def results(tb):
    cases = [make_case(s) for s in CLIP_SEEDS[:3]]
    inverted: dict = {}
    return {name: [run_edit(tb, c, v, 0, inverted) for c in cases] for name, v in VARIANTS.items()}


def mean(results, key):
    return sum(r.numbers[key] for r in results) / len(results)


def test_object_takes_the_new_colour_in_some_frames(results):
    """Claim 2a. DRIVE: the object has the new colour in >= 90% of frames. Measured 0.46 (frames whose
    object median is the new colour; 0.38 / 0 / 1 per clip), share of mask pixels 0.39; the source has 0.
    The claim does not hold here; this asserts the edit does move the object (floor 0.3 and 0.25)."""
    for r in results["masked"]:
        assert success(r.case, r.case.frames) == (0.0, 0.0)
    assert mean(results["masked"], "success") >= 0.3
    assert mean(results["masked"], "share") >= 0.25


def test_composite_keeps_every_pixel_outside_the_grown_mask(results):
    """Claim 2b: after composition every pixel outside the grown mask equals the input, bit for bit."""
    for r in results["masked"] + results["plain"]:
        outside = grow_mask(r.case.mask, BG_GROW_PX) <= 0
        assert torch.equal(r.composited[outside], r.case.frames[outside])
        assert not torch.equal(r.composited, r.case.frames)


def test_masked_cfg_keeps_the_background_better_than_plain_cfg(results):
    """Claim 2c: before composition, background PSNR (vs the AE round trip, outside the mask grown by 2 px)
    with masked CFG is clearly above plain CFG. Measured 23.9 vs 21.0 dB (+2.9 dB); asserted +1.5 dB,
    and per clip above. Plain CFG recolours more (0.75 vs 0.46): the mask costs edit strength here."""
    for masked, plain in zip(results["masked"], results["plain"]):
        assert masked.numbers["bg_psnr"] > plain.numbers["bg_psnr"]
    assert mean(results["masked"], "bg_psnr") >= mean(results["plain"], "bg_psnr") + 1.5


def test_no_seam_ring_when_the_composite_uses_the_sampler_mask(results):
    """Claim 3. The sampler edits whole latent cells (the mask at 8x8, nearest, threshold 0.5); the composite
    uses the pixel mask. Composited with the sampler's own mask upsampled, the two are the same by
    construction: every pixel outside it is the original's. With the true pixel mask (grow 0, the node's
    default) the claim does NOT hold: a ring of object pixels lies outside the latent cells (measured 29%, 34%
    and 51% of the object's pixels on clips 22 / 21 / 23; 2.7-5.6% of the frame) and the composite shows there
    the sampler's decode - not the original (7.4-9.7 dB PSNR vs the source) and not guided by the mask
    either. Asserted: the construction facts; the ring's size is reported, not asserted."""
    from drive_ops.composite.compositing import composite_video

    for r in results["masked"]:
        cells = latent_mask(r.case, (8, 8))
        sampler_mask = cells.repeat_interleave(8, 1).repeat_interleave(8, 2)
        comp = composite_video(r.edited, r.case.frames, sampler_mask)
        outside = sampler_mask <= 0
        assert torch.equal(comp[outside], r.case.frames[outside])
        ring = (r.case.mask > 0) & outside                      # edited by the composite, not by the sampler
        pixel_comp = composite_video(r.edited, r.case.frames, r.case.mask)
        assert torch.equal(pixel_comp[ring], r.edited[ring])    # the ring shows the sampler's decode


def test_rave_shuffle_is_steadier_than_per_frame_editing(results):
    """Claim 4. Object warp error (true motion) and flicker with RAVE grid 2 + shuffle vs per-frame editing
    at the same seed: measured 8.0e-3 vs 30.5e-3 and 1.24 vs 1.98. Holds, with the caveat that the grid run
    recolours less (success 0.33 vs 0.46): a steadier object is partly a less edited one."""
    rave, single = results["rave"], results["masked"]
    assert mean(rave, "warp") < 0.5 * mean(single, "warp")
    assert mean(rave, "flicker") < mean(single, "flicker") - 0.3


def test_pix2video_and_cross_frame_attention_measured_the_same_way(results):
    """Claim 4, alternatives. Pix2Video latent guidance (weight 30): warp 23.8e-3 (below per-frame 30.5e-3)
    but flicker 6.66 (above 1.98); cross-frame attention (pix2video layers): warp 25.7e-3, flicker 1.87,
    both slightly below per-frame. Asserted: both lower the warp error and cross-frame attention does not
    raise the flicker; Pix2Video's higher flicker is a reported failure on this world, not asserted."""
    single = mean(results["masked"], "warp")
    assert mean(results["pix2video"], "warp") < single
    assert mean(results["xframe"], "warp") < single
    assert mean(results["xframe"], "flicker") < mean(results["masked"], "flicker") + 0.3
