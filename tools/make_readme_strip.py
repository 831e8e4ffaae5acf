#!/usr/bin/env python3
"""The README's before/after strip, made by the pack's own weight-free path on a real clip.

    python -m tools.make_readme_strip [--out workflows/wolf_strip.png]      # from the repository root

No diffusion weights can be had where this project is built, so the "after" column is
not a diffusion edit: it is the wolf recoloured by the Color Filters (a cold, desaturated
"silver" look) inside the mask that Propagate Mask carried from frame 0 of
../shared/data/wolf-1_binary_mask.mp4 through the clip (cleaned up as Mask Tools does: holes filled, small islands dropped), composited over the original and
then through Harmonize without weights (which passes it through): the same drive_ops calls the nodes make.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from drive_ops.composite.color_filters import apply_filters
from drive_ops.composite.compositing import composite_background
from drive_ops.composite.harmonize import harmonize_video
from drive_ops.evaluate.compare_strip import compare_strip, parse_frame_indices
from drive_ops.masks.mask_ops import refine_mask
from drive_ops.masks.propagation import propagate_mask
from drive_ops.video.decode import load_video

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SILVER = torch.tensor([[-0.7, 0.15, 0.3, -0.9, 0.4, 0.1]])  # temperature .. shadow, Harmonizer's order


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("workflows/wolf_strip.png"))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", default="0, 13, -1")
    args = ap.parse_args()
    clip = load_video(str(DATA / "wolf-1_original.mp4"), size_policy="fit_longer_side", longer_side=args.size,
                      with_audio=False).frames
    truth = load_video(str(DATA / "wolf-1_binary_mask.mp4"), frame_load_cap=1, size_policy="fit_longer_side",
                       longer_side=args.size, with_audio=False).frames[0, ..., 0]
    mask = refine_mask(propagate_mask(clip, (truth > 0.5).float(), frame_index=0), fill=True, min_area=64)
    recoloured = apply_filters(clip.movedim(-1, 1), mask.unsqueeze(1), SILVER.expand(clip.shape[0], -1))
    composite = composite_background(recoloured.movedim(1, -1), clip, mask, grow=2, feather=2.0)
    edited, _ = harmonize_video(composite, mask)
    strip = compare_strip(clip, edited, mask, parse_frame_indices(args.frames, clip.shape[0]))
    Image.fromarray((strip[0].clamp(0, 1) * 255 + 0.5).byte().numpy().astype(np.uint8)).save(args.out, optimize=True)
    print(f"wrote {args.out} ({clip.shape[0]} frames, {args.size}px)")


if __name__ == "__main__":
    main()
