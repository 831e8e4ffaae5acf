#!/usr/bin/env python3
"""What can Harmonize do without harmonizer.pth? Weight-free options on the test-bed world (issue 24, item 1).

Cases (tests/harmonize_cases.py, 64 px, 8 frames): ``--perfect`` world-rendered perfect recolours
(the object already right: any change spoils it) and the six-clip colour cast of
tests/test_quality_harmonize.py (the cast alone: mean dE 41.2). For each option: the mean CIE76
Delta E over the object's pixels, to the perfect edit itself and to the clip before the cast.

- Lab match: the object's Lab mean moves ``amount`` of the way to the background's and its spread
  is rescaled (ratio limited to 0.5-2); 0.5 was the pack's fallback before issue 24;
- six filters, bounded: Harmonizer's filters with arguments ``b*tanh(p)`` fitted (Adam, 60 steps)
  to bring the object's Lab mean to the background's, the fit a regressor would stand in for;
- seam band: the Lab match only on the object's pixels within ``w`` px of the mask edge;
- pass-through: nothing changes (the pack's choice).

    python -m bench.harmonize_fallback [--perfect 24] [--bounds 0.02,0.05,0.1] [--threads 1]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from drive_ops.composite.color_filters import apply_filters
from tests.harmonize_cases import cast_clips, delta_e, perfect_edits


def _lab():
    from kornia.color import lab_to_rgb, rgb_to_lab

    return rgb_to_lab, lab_to_rgb


def lab_match(frames: torch.Tensor, mask: torch.Tensor, amount: float, where: torch.Tensor | None = None) -> torch.Tensor:
    """``[T,H,W,3]`` with the object's Lab statistics moved ``amount`` toward the background's, inside ``where``."""
    rgb_to_lab, lab_to_rgb = _lab()
    lab = rgb_to_lab(frames.movedim(-1, 1))
    m = mask[:, None]
    stats = []
    for w in (m, 1 - m):
        n = w.sum((2, 3), keepdim=True).clamp_min(1e-6)
        mean = (lab * w).sum((2, 3), keepdim=True) / n
        std = ((((lab - mean) ** 2) * w).sum((2, 3), keepdim=True) / n).sqrt()
        stats.append((mean, std))
    (fg_mean, fg_std), (bg_mean, bg_std) = stats
    ratio = (bg_std / fg_std.clamp_min(1e-3)).clamp(0.5, 2.0)
    moved = fg_mean + amount * (bg_mean - fg_mean) + (lab - fg_mean) * (1 + amount * (ratio - 1))
    out = lab_to_rgb(moved, clip=True).clamp(0, 1)
    w = m if where is None else where[:, None]
    return (out * w + frames.movedim(-1, 1) * (1 - w)).movedim(1, -1)


def seam_band(mask: torch.Tensor, width: int) -> torch.Tensor:
    """The object's pixels within ``width`` px of its edge, ``[T,H,W]``."""
    inner = -F.max_pool2d(-mask[:, None], 2 * width + 1, 1, width)[:, 0]
    return mask - inner


def bounded_filters(frames: torch.Tensor, mask: torch.Tensor, bound: float, steps: int = 60) -> torch.Tensor:
    """The six filters, arguments within ``+-bound``, fitted to move the object's Lab mean to the background's."""
    rgb_to_lab, _ = _lab()
    c, m = frames.movedim(-1, 1), mask[:, None]
    p = torch.full((c.shape[0], 6), 0.01, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    bg = (rgb_to_lab(c) * (1 - m)).sum((2, 3)) / (1 - m).sum((2, 3))
    for _ in range(steps):
        fg = (rgb_to_lab(apply_filters(c, m, bound * torch.tanh(p))) * m).sum((2, 3)) / m.sum((2, 3))
        loss = ((fg - bg) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return apply_filters(c, m, bound * torch.tanh(p)).movedim(1, -1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--perfect", type=int, default=24, help="world-rendered perfect edits")
    ap.add_argument("--bounds", default="0.02,0.05,0.1", help="argument bounds of the fitted filters")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    perfect = [(frames, frames, mask) for frames, mask, _ in perfect_edits(args.perfect)]
    casts = [(cast, ref, mask) for ref, mask, cast in cast_clips()]
    options = {"pass-through (the pack)": lambda f, m: f.clone(),
               "Lab match, amount 0.5 (old fallback)": lambda f, m: lab_match(f, m, 0.5),
               "Lab match, amount 0.1": lambda f, m: lab_match(f, m, 0.1)}
    for bound in (float(b) for b in args.bounds.split(",")):
        options[f"six filters fitted, bound {bound:g}"] = lambda f, m, b=bound: bounded_filters(f, m, b)
    for width in (1, 2, 3):
        options[f"seam band {width} px, Lab match 0.5"] = lambda f, m, w=width: lab_match(f, m, 0.5, seam_band(m, w))
    print(f"mean CIE76 dE over the object: {len(perfect)} perfect edits (0 = untouched), {len(casts)} casts "
          f"(cast alone: {np.mean([delta_e(c, r, m) for c, r, m in casts]):.1f})")
    print(f"{'option':<40}{'perfect edits':>14}{'cast':>8}   cast per clip")
    for name, fn in options.items():
        moved = [delta_e(fn(f, m), r, m) for f, r, m in perfect]
        cast = [delta_e(fn(f, m), r, m) for f, r, m in casts]
        print(f"{name:<40}{np.mean(moved):>14.1f}{np.mean(cast):>8.1f}   {[round(x, 1) for x in cast]}")


if __name__ == "__main__":
    main()
