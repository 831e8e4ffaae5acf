"""DRIVE claim 5 on the test-bed world: a colour cast put on the object is reduced by Harmonize.

Six held-out one-object clips (HELDOUT_START + 21..26), 8 frames at 64 px. The cast is the pack's own
white-box filters (temperature 0.6, brightness 0.3) applied inside the object's mask; the reference
is the clip before the cast; the number is the mean CIE76 Delta E over the object's pixels.

Measured (per clip 21..26, mean):
    cast                        65.0 / 30.0 / 28.9 / 23.9 / 76.1 / 23.2   41.2
    Lab fallback (no weights)   83.9 / 26.8 / 36.7 / 38.3 / 81.8 / 38.4   51.0   WORSE on 5 of 6
    six filters, fitted         14.5 / 21.2 /  8.5 /  0.9 / 39.0 /  0.7   14.1

The Lab fallback moves the object's Lab statistics half-way toward the background's: on this world
(vivid objects on muted backgrounds) that paints the object toward the background, so the claim
does not hold for the fallback. The Harmonizer regressor's weights are not available here, so the
filters are given arguments fitted to the reference by gradient descent (an oracle for the
regressor): the filter family can undo the cast. Temperature's gradient is zero at 0, so only the
other five filters move. Asserted: what holds, with margin.
"""

from __future__ import annotations

import pytest
import torch

from drive_ops.composite.color_filters import apply_filters
from drive_ops.composite.harmonize import harmonize_video, lab_statistics

SEEDS = (21, 22, 23, 24, 25, 26)
CAST = (0.6, 0.3, 0.0, 0.0, 0.0, 0.0)   # temperature, brightness, contrast, saturation, highlight, shadow


def delta_e(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean CIE76 Delta E over ``mask`` of two IMAGE batches ``[T,H,W,3]``."""
    from kornia.color import rgb_to_lab

    d = ((rgb_to_lab(a.movedim(-1, 1)) - rgb_to_lab(b.movedim(-1, 1))) ** 2).sum(1).sqrt()
    return float(d[mask > 0.5].mean())


def fitted_filters(cast: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor, steps: int = 100) -> torch.Tensor:
    """The six filters with per-frame arguments fitted (Adam, RGB MSE in the mask) to bring ``cast`` to ``reference``."""
    args = torch.zeros(cast.shape[0], 6, requires_grad=True)
    opt = torch.optim.Adam([args], lr=0.05)
    c, r, m = cast.movedim(-1, 1), reference.movedim(-1, 1), mask[:, None]
    for _ in range(steps):
        loss = (((apply_filters(c, m, args) - r) ** 2).sum(1, keepdim=True) * m).sum() / m.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return apply_filters(c, m, args).movedim(1, -1)


@pytest.fixture(scope="module")
def clips():
    from testbed import world

    torch.manual_seed(0)
    out = []
    for seed in SEEDS:
        clip = world.make_clip(world.HELDOUT_START + seed, frames=8, n_objects=1)
        ref, mask = torch.from_numpy(clip.frames), torch.from_numpy(clip.masks[0]).float()
        cast = apply_filters(ref.movedim(-1, 1), mask[:, None], torch.tensor([CAST]).expand(8, 6)).movedim(1, -1)
        out.append((ref, mask, cast))
    return out


def test_filters_can_undo_a_cast_on_the_object(clips):
    """Fitted filters: Delta E 41.2 -> 14.1 (mean); asserted below half the cast's, and lower on every clip."""
    before, after = [], []
    for ref, mask, cast in clips:
        before.append(delta_e(cast, ref, mask))
        after.append(delta_e(fitted_filters(cast, ref, mask), ref, mask))
        assert after[-1] < before[-1]
    assert sum(after) < 0.5 * sum(before), (before, after)


def test_lab_fallback_moves_the_object_toward_the_background(clips):
    """The Lab fallback does what it is built to do (object Lab mean toward the background's, background bit
    for bit unchanged) - and on this world that RAISES Delta E to the reference (41.2 -> 51.0, measured), so
    claim 5 does not hold for the fallback (reported, not asserted)."""
    for ref, mask, cast in clips:
        out, report = harmonize_video(cast, mask)
        assert report["mode"] == "lab_match"
        assert torch.equal(out[mask <= 0.5], cast[mask <= 0.5])
        s0 = lab_statistics(cast.movedim(-1, 1), mask[:, None])
        s1 = lab_statistics(out.movedim(-1, 1), mask[:, None])
        gap0 = (s0[:, :3] - s0[:, 6:9]).norm(dim=1)
        gap1 = (s1[:, :3] - s1[:, 6:9]).norm(dim=1)
        assert bool((gap1 < gap0).all())
