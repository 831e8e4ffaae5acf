#!/usr/bin/env python3
"""The README's object-removal strip: a red disc taken out of a panning clip by Fill Background.

    python -m tools.make_fill_strip [--out workflows/remove_object_strip.png]      # from the repository root

A synthetic clip (tests/fill_scenes.py: a camera panning over a textured background, a
disc moving across it), because its background is known: the tool prints the PSNR of
the fill against it, where some frame shows the background and where none does. The
weight-free path, as the node runs without a model: background carried in along the
completed flow, what no frame shows invented once by OpenCV on a keyframe and carried
along. Columns: source | disc removed | the invented area (red) on the source.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from drive_ops.composite.fill_background import fill_background
from drive_ops.evaluate.compare_strip import compare_strip, parse_frame_indices
from drive_ops.evaluate.metrics import psnr_from_mse
from tests.fill_scenes import scaled_scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("workflows/remove_object_strip.png"))
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--show", default="0, 12, -1")
    args = ap.parse_args()
    scene = scaled_scene(args.frames, args.size, args.size * 4 // 3, with_truth=True)
    filled, unrecovered = fill_background(scene.frames, scene.masks, grow=0)
    strip = compare_strip(scene.frames, filled, unrecovered, parse_frame_indices(args.show, args.frames))
    Image.fromarray((strip[0].clamp(0, 1) * 255 + 0.5).byte().numpy().astype(np.uint8)).save(args.out, optimize=True)
    hole = scene.masks > 0.5
    shown, invented = hole & ~scene.unseen, unrecovered > 0.5
    score = {name: float(psnr_from_mse((filled - scene.background)[region].pow(2).mean()))
             for name, region in (("shown by some frame", shown), ("invented", invented))}
    print(f"wrote {args.out} ({args.frames} frames, {scene.frames.shape[2]}x{args.size}); "
          f"invented {float(invented.sum() / hole.sum()):.0%} of the hole; PSNR vs the true background: "
          + ", ".join(f"{name} {value:.1f} dB" for name, value in score.items()))


if __name__ == "__main__":
    main()
