"""Background composition: exact outside the grown mask, sizes brought back, clear errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from drive_ops.composite.compositing import (composite_alpha, composite_background, composite_video, laplacian_blend,
                                   mask_on_canvas)
from drive_ops.core.frame_plan import apply_frame_plan, plan_frame_size
from drive_ops.core.frame_plan_inverse import find_frame_plan, fit_to_canvas, undo_frame_plan
from drive_ops.core.mask_morphology import grow_mask


def _clip(t: int, h: int, w: int, seed: int) -> torch.Tensor:
    return torch.rand(t, h, w, 3, generator=torch.Generator().manual_seed(seed))


def _blob_mask(t: int, h: int, w: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    masks = []
    for i in range(t):
        cy, cx = h * 0.5 + 3 * i, w * 0.45 + 2 * i
        masks.append((((yy - cy) / (h * 0.25)) ** 2 + ((xx - cx) / (w * 0.2)) ** 2 <= 1).float())
    return torch.stack(masks)


@pytest.mark.parametrize("grow,feather,blend", list(itertools.product((-2, 0, 4), (0.0, 3.0), ("alpha", "laplacian"))))
def test_outside_the_grown_mask_is_the_original_bit_for_bit(grow, feather, blend):
    original = _clip(3, 48, 64, 0)
    edited = _clip(3, 48, 64, 1)
    mask = _blob_mask(3, 48, 64)
    before = original.clone()
    out = composite_background(edited, original, mask, grow=grow, feather=feather, blend=blend)
    outside = (grow_mask(mask, grow) <= 0).unsqueeze(-1).expand_as(out)
    assert outside.any() and torch.equal(out[outside], original[outside])
    assert torch.equal(original, before), "the input was mutated"
    inside = ~outside
    assert not torch.equal(out[inside], original[inside])


def test_hard_mask_without_feather_pastes_the_edit():
    original, edited = _clip(2, 32, 40, 2), _clip(2, 32, 40, 3)
    mask = _blob_mask(2, 32, 40)
    out = composite_background(edited, original, mask)
    sel = mask.bool().unsqueeze(-1).expand_as(out)
    assert torch.equal(out[sel], edited[sel])


@pytest.mark.parametrize("policy,side", [("crop_to_multiple_of_8", 0), ("fit_longer_side", 48)])
def test_working_size_edit_goes_back_where_it_came_from(policy, side):
    coarse = _clip(2, 8, 10, 4).movedim(-1, 1)
    original = torch.nn.functional.interpolate(coarse, size=(75, 101), mode="bicubic").clamp(0, 1).movedim(1, -1)
    plan = plan_frame_size(75, 101, policy, longer_side=side or 512)
    edited = apply_frame_plan(original, plan).clone()               # a "perfect" edit: nothing changed
    assert find_frame_plan(75, 101, plan.out_h, plan.out_w) == plan
    mask_small = torch.ones(1, plan.out_h, plan.out_w)             # mask at the working size, one frame
    out = composite_background(edited, original, mask_small)
    assert out.shape == original.shape
    _, covered = undo_frame_plan(edited, plan)
    assert covered.float().mean() > 0.85
    err = (out - original).abs()[:, covered]
    if policy == "crop_to_multiple_of_8":
        assert torch.equal(out, original)
    else:
        shifted = (out[:, 4:] - original[:, :-4]).abs().mean()    # a 4 px misregistration, for scale
        assert err.mean() < 0.02 and err.mean() < shifted / 3      # resampled back: aligned, not exact
    assert torch.equal(out[:, ~covered], original[:, ~covered])


def test_unrelated_size_is_cover_resized():
    edited = _clip(1, 20, 20, 5)
    frames, covered = fit_to_canvas(edited, 30, 60)
    assert frames.shape == (1, 30, 60, 3) and covered.all()


def test_single_mask_frame_broadcasts_and_mismatches_are_errors():
    original, edited = _clip(3, 16, 16, 6), _clip(3, 16, 16, 7)
    one = _blob_mask(1, 16, 16)
    out = composite_background(edited, original, one)
    torch.testing.assert_close(out, composite_background(edited, original, one.expand(3, -1, -1)))
    with pytest.raises(ValueError, match="frames"):
        composite_background(edited, original, _blob_mask(2, 16, 16))
    with pytest.raises(ValueError, match="frames"):
        composite_background(edited[:2], original, one)
    with pytest.raises(ValueError, match="blend"):
        composite_background(edited, original, one, blend="poisson")


def test_feather_stays_inside_and_is_soft():
    mask = _blob_mask(1, 64, 64)
    alpha, region = composite_alpha(mask, grow=0, feather=4.0)
    assert torch.equal(region, mask > 0)
    assert (alpha[~region] == 0).all()
    assert ((alpha > 0.05) & (alpha < 0.95)).sum() > 20


def test_laplacian_blend_reconstructs_with_constant_alpha():
    a, b = torch.rand(1, 3, 40, 56), torch.rand(1, 3, 40, 56)
    torch.testing.assert_close(laplacian_blend(a, b, torch.ones(1, 1, 40, 56)), a, atol=1e-5, rtol=0)
    torch.testing.assert_close(laplacian_blend(a, b, torch.zeros(1, 1, 40, 56)), b, atol=1e-5, rtol=0)


def test_chunked_video_matches_one_batch_and_checks_counts_first():
    original, edited = _clip(5, 24, 24, 8), _clip(5, 24, 24, 9)
    mask = _blob_mask(5, 24, 24)
    calls = []
    out = composite_video(edited, original, mask, grow=2, feather=2.0, chunk=2,
                          progress=lambda d, n: calls.append((d, n)))
    torch.testing.assert_close(out, composite_background(edited, original, mask, grow=2, feather=2.0), atol=1e-6, rtol=0)
    assert calls == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(ValueError, match="frames"):
        composite_video(edited[:4], original, mask, chunk=2)
    with pytest.raises(ValueError, match="frames"):
        composite_video(edited, original, mask[:3], chunk=2)


def test_mask_at_a_working_size_is_mapped_back_onto_the_canvas():
    plan = plan_frame_size(75, 101, "fit_longer_side", longer_side=48)
    small = torch.zeros(1, plan.out_h, plan.out_w)
    small[:, 8:20, 10:30] = 1.0
    full = mask_on_canvas(small, 3, 75, 101)
    assert full.shape == (3, 75, 101)
    ys, xs = torch.nonzero(full[0] > 0.5, as_tuple=True)
    scale = 101 / plan.resize_w
    assert abs(ys.float().mean() - (14 + plan.top) * scale) < 2 and abs(xs.float().mean() - (20 + plan.left) * scale) < 2
    with pytest.raises(ValueError, match="size policy"):
        mask_on_canvas(torch.zeros(1, 20, 20), 3, 75, 101)


def _shrinking_edit(feather_px: int = 0):
    """Original: a big red disc on a textured background; the edit (sampled over the filled clip): a small blue disc."""
    ys, xs = torch.meshgrid(torch.arange(48), torch.arange(64), indexing="ij")
    clean = (_clip(2, 48, 64, 10)[..., :1] * 0.5 + 0.2).expand(-1, -1, -1, 3).contiguous()   # grey: no red in it
    big = ((ys - 24) ** 2 + (xs - 32) ** 2 < 15 ** 2).float().expand(2, -1, -1)
    small = ((ys - 24) ** 2 + (xs - 32) ** 2 < 6 ** 2).float().expand(2, -1, -1)
    red, blue = torch.tensor([0.95, 0.1, 0.1]), torch.tensor([0.1, 0.1, 0.95])
    original = torch.where(big[..., None] > 0, red, clean)
    edited = torch.where(small[..., None] > 0, blue, clean + 0.01)   # the edit's own (VAE-ish) copy of the background
    return original, edited, clean, big


@pytest.mark.parametrize("blend", ["alpha", "laplacian"])
def test_a_filled_background_leaves_no_trace_of_the_old_object(blend):
    original, edited, clean, big = _shrinking_edit()
    redness = lambda x: x[..., 0] - x[..., 1]                          # noqa: E731
    without = composite_background(edited, original, big, feather=4.0, blend=blend)
    assert redness(without).max() > 0.3, "the feathered rim shows the old red object"
    out = composite_background(edited, original, big, feather=4.0, blend=blend, background=clean)
    assert redness(out).abs().max() < 0.02
    outside = big == 0
    assert torch.equal(out[outside], original[outside])
    rim = (big > 0) & (composite_alpha(big, 0, 4.0)[0] < 0.5)          # the feathered rim: mostly the base
    assert rim.any() and (out[rim] - clean[rim]).abs().max() < 0.02


def test_the_background_may_come_at_the_working_size_and_must_match_the_frames():
    original, edited, clean, big = _shrinking_edit()
    torch.testing.assert_close(
        composite_video(edited, original, big, feather=2.0, background=clean, chunk=1),
        composite_background(edited, original, big, feather=2.0, background=clean), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="the background has 1 frames but the original has 2"):
        composite_video(edited, original, big, background=clean[:1])
    with pytest.raises(ValueError, match="background frames have 1 channels"):
        composite_background(edited, original, big, background=clean[..., :1])
