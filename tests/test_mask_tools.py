"""Invariants of the mask clean-up tools."""

from __future__ import annotations

import torch

from drive_ops.masks.mask_ops import fill_holes, refine_mask, remove_small_regions, temporal_smooth


def _ring() -> torch.Tensor:
    m = torch.zeros(2, 30, 30)
    m[:, 5:25, 5:25] = 1
    m[:, 10:15, 10:15] = 0          # a hole
    m[:, 0:3, 27:30] = 1            # a 9-px island touching the border
    return m


def test_fill_holes_fills_only_enclosed_background():
    m = _ring()
    f = fill_holes(m)
    assert torch.equal(f[:, 5:25, 5:25], torch.ones(2, 20, 20))
    assert torch.equal(f * m, m)                           # never removes foreground
    assert float(f.sum() - m.sum()) == 2 * 25              # exactly the hole
    assert torch.equal(fill_holes(f), f)                   # idempotent
    assert torch.equal(fill_holes(torch.zeros(1, 8, 8)), torch.zeros(1, 8, 8))


def test_remove_small_regions():
    m = _ring()
    r = remove_small_regions(m, 10)
    assert float(r[:, 0:3, 27:30].sum()) == 0
    assert torch.equal(r[:, 5:25, 5:25], m[:, 5:25, 5:25])
    assert torch.equal(remove_small_regions(m, 9), m)      # an island of exactly min_area stays
    assert torch.equal(remove_small_regions(m, 0), m)


def test_temporal_smoothing_removes_single_frame_blips_and_keeps_constants():
    m = torch.zeros(7, 4, 4)
    m[:, 1, 1] = 1
    m[3, 2, 2] = 1                                         # one-frame blip
    m[3, 1, 1] = 0                                         # one-frame dropout
    s = (temporal_smooth(m, 1) > 0.5).float()
    assert float(s[:, 2, 2].sum()) == 0 and float(s[:, 1, 1].sum()) == 7
    c = torch.full((5, 3, 3), 0.3)
    torch.testing.assert_close(temporal_smooth(c, 2), c)
    assert torch.equal(temporal_smooth(m, 0), m)


def test_refine_chain():
    m = _ring() * 0.8
    before = m.clone()
    out = refine_mask(m, threshold=0.5, fill=True, min_area=10)
    assert torch.equal(m, before)
    assert out.dtype == torch.float32 and set(out.unique().tolist()) == {0.0, 1.0}
    assert float(out.sum()) == 2 * 400
    torch.testing.assert_close(refine_mask(m, invert=True), 1 - m)
    assert torch.equal(refine_mask(m, threshold=0.9), torch.zeros_like(m))
    grown = refine_mask(m, threshold=0.5, grow=2)
    assert torch.equal(grown * (m > 0.5), (m > 0.5).float())   # growing keeps every pixel
    soft = refine_mask(m, threshold=0.5, feather=3)
    assert float(soft.min()) >= 0 and float(soft.max()) <= 1 and bool(((soft > 0.05) & (soft < 0.95)).any())


def test_overlay_tints_only_the_mask():
    from drive_ops.core.mask_morphology import overlay_mask

    frames = torch.rand(2, 30, 30, 3, generator=torch.Generator().manual_seed(0))
    m = _ring()
    assert torch.equal(overlay_mask(frames, torch.zeros(2, 30, 30)), frames)
    torch.testing.assert_close(overlay_mask(frames, m, opacity=0.0, outline=0), frames)
    out = overlay_mask(frames, m, color=(1.0, 0.0, 0.0), opacity=1.0, outline=0)
    assert torch.equal(out[m > 0.5], torch.tensor([1.0, 0.0, 0.0]).expand(int((m > 0.5).sum()), 3))
    assert torch.equal(out[m < 0.5], frames[m < 0.5])
