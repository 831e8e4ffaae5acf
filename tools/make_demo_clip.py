#!/usr/bin/env python3
"""Write the demo clip the README's main command edits, the mask of its first frame and its mask video.

    python -m tools.make_demo_clip            # from the repository root: workflows/inputs/

A synthetic scene made here (so the pack can ship it under its own licence): an orange
ball rolling left to right over a still, textured field with a grey stone, 512x512,
36 frames at 12 fps. ``drive_demo_mask.png`` is the ball on frame 0 (white on black, the
frame's size), what ``patch_nodes_ksampler`` propagates through the clip; ``drive_demo_mask.mp4`` is the
ball on every frame, what the runner's ``--mask`` puts in place of tracking. The ball's
centre on frame 0 is ``BALL_POINT``: the point the main command clicks. Deterministic:
a re-run writes the same frames.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from drive_ops.video.encode import encode_video

SIZE, FRAMES, FPS = 512, 36, 12.0
RADIUS = 56
BALL_POINT = (120, 300)
OUT_DIR = Path(__file__).resolve().parent.parent / "workflows" / "inputs"
CLIP_NAME, MASK_NAME, MASK_VIDEO_NAME = "drive_demo.mp4", "drive_demo_mask.png", "drive_demo_mask.mp4"


def ball_centre(t: int) -> tuple[float, float]:
    """(x, y) of the ball on frame ``t``: it rolls right and bounces once."""
    x0, y0 = BALL_POINT
    x = x0 + 270.0 * t / (FRAMES - 1)
    y = y0 - 70.0 * abs(math.sin(math.pi * t / (FRAMES - 1)))
    return x, y


def background() -> torch.Tensor:
    """The still field ``[H,W,3]``: sky over grass, low-frequency texture, a grey stone."""
    gen = torch.Generator().manual_seed(17)
    yy = torch.linspace(0, 1, SIZE)[:, None].expand(SIZE, SIZE)
    sky = torch.tensor([0.55, 0.72, 0.92]) * (1 - 0.3 * yy[..., None])
    grass = torch.tensor([0.30, 0.55, 0.22]) * (1.1 - 0.4 * yy[..., None])
    horizon = (yy > 0.42).float()[..., None]
    img = sky * (1 - horizon) + grass * horizon
    noise = torch.rand(1, 3, 16, 16, generator=gen)
    texture = torch.nn.functional.interpolate(noise, size=(SIZE, SIZE), mode="bicubic", align_corners=False)
    img = img + 0.08 * (texture[0].permute(1, 2, 0) - 0.5) * horizon
    xx = torch.arange(SIZE)[None, :].float()
    stone = (((xx - 400) / 60) ** 2 + ((torch.arange(SIZE)[:, None].float() - 420) / 30) ** 2) < 1
    img[stone] = torch.tensor([0.52, 0.50, 0.48])
    return img.clamp(0, 1)


def ball_mask(t: int) -> torch.Tensor:
    """The ball's disc on frame ``t``, ``[H,W]`` bool."""
    cx, cy = ball_centre(t)
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= RADIUS ** 2


def frames() -> torch.Tensor:
    """The clip ``[T,H,W,3]`` float 0..1: the shaded ball over the background."""
    field = background()
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    out = field.expand(FRAMES, SIZE, SIZE, 3).clone()
    for t in range(FRAMES):
        cx, cy = ball_centre(t)
        inside = ball_mask(t)
        light = 1.0 - 0.45 * (((xx - cx + 20) ** 2 + (yy - cy + 20) ** 2).sqrt() / (RADIUS * 1.6)).clamp(0, 1)
        ball = torch.tensor([0.95, 0.50, 0.10]) * light[..., None]
        out[t][inside] = ball[inside]
    return out


def write_mask_video(path: Path) -> None:
    """The ball's mask on every frame, white on black, as a lossless (crf 0) mp4 the clip's length and rate."""
    path.unlink(missing_ok=True)
    masks = torch.stack([ball_mask(t) for t in range(FRAMES)]).float()
    encode_video(masks[..., None].expand(-1, -1, -1, 3), FPS, str(path), "mp4", crf=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the clip and the mask")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    clip = args.out / CLIP_NAME
    clip.unlink(missing_ok=True)
    encode_video(frames(), FPS, str(clip), "mp4", crf=18)
    mask = ball_mask(0).numpy().astype(np.uint8) * 255
    Image.fromarray(mask).save(args.out / MASK_NAME)
    write_mask_video(args.out / MASK_VIDEO_NAME)
    print(f"wrote {clip} ({clip.stat().st_size // 1024} KiB), {args.out / MASK_NAME} and "
          f"{args.out / MASK_VIDEO_NAME}; ball at {BALL_POINT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
