"""Harmonize on the test-bed world: it never spoils a good edit, and the filter family can undo a cast.

Cases in tests/harmonize_cases.py (64 px, 8 frames; mean CIE76 Delta E over the object's pixels).

Measured (python -m bench.harmonize_fallback), 24 world-rendered perfect recolours / the six-clip cast
(the cast alone: 65.0 / 30.0 / 28.9 / 23.9 / 76.1 / 23.2, mean 41.2):

    weight-free option                         perfect edits   cast
    Lab match halfway to the background (old)  46.3            51.0   worse on 5 of 6 (the old node, EMA on)
    Lab match, a tenth of the way               9.2            39.1
    six filters fitted toward the bg, +-0.02    6.2            40.9
    six filters fitted toward the bg, +-0.1    25.2            41.4
    seam band (1 / 3 px), Lab match halfway    10.2 / 26.6     42.6 / 46.5
    pass through (the pack, issue 24)           0.0            41.2
    six filters fitted to the reference        (oracle)        14.1

No weight-free rule here tells a cast from a correct edit: the options that move the cast move perfect edits
as much. So without harmonizer.pth Harmonize passes the frames through (asserted: bit for bit, so a perfect
edit changes by 0 <= 2 and nothing outside the mask changes); the claim that a cast is reduced by at least
half holds only for the filters with good arguments (the oracle fit standing in for the regressor, whose
weights are not available here) and does NOT hold without weights (reported, not asserted).
"""

from __future__ import annotations

import pytest
import torch
from harmonize_cases import cast_clips, delta_e, perfect_edits

from drive_ops.composite.color_filters import apply_filters
from drive_ops.composite.harmonize import harmonize_video

PERFECT_EDITS = 24


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
    return cast_clips()


def test_without_weights_a_perfect_edit_is_not_spoiled():
    """24 world-rendered recolours: the old Lab match moved the object by dE 46.3 (29-63 per clip); now <= 2, and
    nothing outside the mask changes."""
    shifts = []
    for frames, mask, name in perfect_edits(PERFECT_EDITS):
        out, report = harmonize_video(frames, mask)
        assert report["mode"] == "pass_through"
        assert torch.equal(out[mask <= 0.5], frames[mask <= 0.5]), name
        shifts.append(delta_e(out, frames, mask))
    assert sum(shifts) / len(shifts) <= 2.0, shifts


def test_filters_can_undo_a_cast_on_the_object(clips):
    """Fitted filters: Delta E 41.2 -> 14.1 (mean); asserted below half the cast's, and lower on every clip."""
    before, after = [], []
    for ref, mask, cast in clips:
        before.append(delta_e(cast, ref, mask))
        after.append(delta_e(fitted_filters(cast, ref, mask), ref, mask))
        assert after[-1] < before[-1]
    assert sum(after) < 0.5 * sum(before), (before, after)


def test_without_weights_a_cast_is_left_as_it_is(clips):
    """Pass-through leaves the cast (41.2 before and after) instead of raising it (the old Lab match: 51.0)."""
    for ref, mask, cast in clips:
        out, _ = harmonize_video(cast, mask)
        assert torch.equal(out, cast)
        assert delta_e(out, ref, mask) == pytest.approx(delta_e(cast, ref, mask))
