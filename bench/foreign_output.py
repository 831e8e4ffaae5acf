"""DRIVE's finish on another model's output: the background before and after Align Edited Clip + Composite.

A foreign output is simulated as a Wan VACE template makes one: the source fitted to 720x720 under a
resize policy, padded to a 4n+1 segment and tinted (a model's colour shift, as Wan's); nothing else
of the model is simulated, so the numbers measure the background the template would have saved, not
an edit. For each policy it prints the background PSNR (dB, outside the object mask dilated by 7 px,
on the frames the edit covers) of the aligned foreign output, without and with the tint, then after
Composite Background (grow 2, feather 1.5): its PSNR and the largest change of any pixel outside the
grown mask, and of any pixel of the frames the edit does not cover. "wrong policy" aligns with
stretch what was made with another policy: the object lands in the wrong place.

    python -m bench.foreign_output [--clip wolf-1_original.mp4 --mask wolf-1_binary_mask.mp4]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from drive_ops.composite.align import RESIZE_POLICIES, align_edited_clip, place
from drive_ops.composite.compositing import composite_video
from drive_ops.core.mask_morphology import grow_mask
from drive_ops.evaluate.metrics import background_preservation

from .common import DATA

SIDE = 720
TINT = torch.tensor([0.92, 1.0, 1.06])
GROW, FEATHER, DILATION = 2, 1.5, 7


def _resize(frames: torch.Tensor, h: int, w: int) -> torch.Tensor:
    chw = F.interpolate(frames.movedim(-1, 1), size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return chw.movedim(1, -1)


def foreign(source: torch.Tensor, policy: str, frames: int, tint: bool) -> torch.Tensor:
    """The source fitted to SIDE x SIDE under ``policy`` (the geometry of core's resize nodes), padded with
    black frames to ``frames``, optionally tinted."""
    placed = place(source.shape[1], source.shape[2], SIDE, SIDE, policy)
    top, left, h, w = placed.source_box
    content = _resize(source[:, top:top + h, left:left + w], *placed.edit_box[2:])
    out = torch.zeros(frames, SIDE, SIDE, 3)
    et, el, eh, ew = placed.edit_box
    out[:source.shape[0], et:et + eh, el:el + ew] = content
    return (out * TINT).clamp(0, 1) if tint else out


def _bg_psnr(source: torch.Tensor, clip: torch.Tensor, mask: torch.Tensor) -> float:
    scores = background_preservation(source, clip, mask, DILATION).psnr
    return float(scores.mean())


def measure(name: str, source: torch.Tensor, mask: torch.Tensor, offset: int, segment: int) -> None:
    covered_frames = source[offset:]
    for policy in RESIZE_POLICIES:
        row = {}
        for tint in (False, True):
            vace = foreign(covered_frames, policy, segment, tint)
            aligned = align_edited_clip(source, vace, offset=offset, policy=policy, mask=mask)
            part = slice(offset, None)
            row["tint" if tint else "no tint"] = _bg_psnr(source[part], aligned.image[part], mask[part])
        out = composite_video(aligned.image, source, aligned.mask, grow=GROW, feather=FEATHER)
        outside = grow_mask(aligned.mask, GROW) <= 0
        change = float((out - source).abs()[outside].max())
        untouched = float((out[:offset] - source[:offset]).abs().max()) if offset else 0.0
        after = _bg_psnr(source, out, mask)
        wrong = "n/a"
        if policy != "stretch":
            misplaced = align_edited_clip(source, vace, offset=offset, policy="stretch").image
            wrong = f"{_bg_psnr(source[offset:], misplaced[offset:], mask[offset:]):6.2f}"
        print(f"| {name} | {policy} | {row['no tint']:6.2f} | {row['tint']:6.2f} | {after} | {change:g} | "
              f"{untouched:g} | {wrong} |")


def _synthetic(frames: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(frames, 3, height // 8 + 2, width // 8 + 2, generator=gen)
    clip = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
    mask = torch.zeros(frames, height, width)
    mask[:, height // 3: height // 3 + height // 4, width // 4: width // 4 + width // 3] = 1.0
    return clip.movedim(1, -1).contiguous(), mask


def _real(clip: str, mask: str, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A square clip and its binary-mask video, centre-cropped to 9:16 (``width`` x the full height)."""
    from drive_ops.video.decode import load_video

    frames = load_video(str(DATA / clip), with_audio=False).frames
    masks = load_video(str(DATA / mask), with_audio=False).frames[..., 0] > 0.5
    left = (frames.shape[2] - width) // 2
    return frames[:, :, left:left + width].contiguous(), masks[:, :, left:left + width].float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="wolf-1_original.mp4")
    parser.add_argument("--mask", default="wolf-1_binary_mask.mp4")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    print("| source | policy | aligned, no tint (dB) | aligned, tinted (dB) | after Composite (dB) | "
          "max change outside | max change, uncovered frames | wrong policy (dB) |")
    print("|---|---|---|---|---|---|---|---|")
    synthetic, box = _synthetic(79, 128, 72)
    measure("synthetic 72x128, 79 frames -> 81 @720 from frame 2", synthetic, box, offset=2, segment=81)
    if (DATA / args.clip).is_file() and (DATA / args.mask).is_file():
        real, mask = _real(args.clip, args.mask, 288)
        segment = 4 * -(-(real.shape[0] - 1) // 4) + 1          # the next 4n+1 frame count
        measure(f"{args.clip} 288x512 (9:16 crop), {real.shape[0]} frames -> {segment} @720", real, mask,
                offset=0, segment=segment)
    else:
        print(f"({DATA / args.clip} or its mask is absent: the real clip's rows are left out)")


if __name__ == "__main__":
    main()
