#!/usr/bin/env python3
"""A red ball replaced by a smaller one, with Fill Background, both wirings, on the trained test bed.

    python -m bench.shrink_edit [--clips 3] [--colours yellow] [--shrink 4] [--steps 20]

For each held-out clip (world seeds ``heldout_seeds(n, 100)``, 16 frames at 64 px) and
each wiring of ``tests.quality_edit.shrink_edit``: the share of the new object's pixels
(the old mask shrunk by ``--shrink`` px) and of the old object's pixels the judge calls
the new colour, the most red pixels on a frame outside the new object, and, for
"composite over the fill", the same composite over the original instead (the old ball's
ring). The numbers README's "Removing or shrinking an object" quotes.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from drive_ops.composite.compositing import composite_video
from drive_ops.core.mask_morphology import grow_mask
from testbed import judge, world
from tests.quality_edit import SHRINK_WIRINGS, load_testbed_or_skip, red_pixels, shrink_edit


def share(images: torch.Tensor, mask: torch.Tensor, colour: str) -> float:
    """Mean over frames of the share of ``mask``'s pixels the judge calls ``colour``."""
    inside = mask.numpy() > 0.5
    return float(np.mean([judge.colour_fraction(images[t].numpy(), inside[t], colour, erode_px=0)
                          for t in range(len(images))]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--colours", nargs="+", default=["yellow"])
    parser.add_argument("--shrink", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    tb = load_testbed_or_skip()
    print(f"{'seed':>10} {'colour':>7} {'wiring':>24} {'new/old area':>12} {'colour of new':>13} "
          f"{'of old':>6} {'red px outside new':>18} {'ring red px over the original (fewest)':>38}")
    for seed in world.heldout_seeds(args.clips, 100):
        for colour in args.colours:
            for wiring in SHRINK_WIRINGS:
                r = shrink_edit(tb, seed, wiring, colour, args.shrink, steps=args.steps)
                outside = grow_mask(r.new, 1) <= 0.5
                ring = ""
                if wiring == "composite over the fill":
                    ring = str(min(red_pixels(composite_video(r.edited, r.frames, r.new), outside & (r.old > 0.5))))
                print(f"{seed:>10} {colour:>7} {wiring:>24} {float(r.new.sum() / r.old.sum()):>12.2f} "
                      f"{share(r.out, r.new, colour):>13.2f} {share(r.out, r.old, colour):>6.2f} "
                      f"{max(red_pixels(r.out, outside)):>18} {ring:>38}", flush=True)


if __name__ == "__main__":
    main()
