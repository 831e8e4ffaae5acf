"""Undo the loader's crop/resize rule: put working-size frames back onto the source canvas.

The edit runs at the loader's working size (``frame_plan.plan_frame_size``), but the
background to keep may be the full-resolution original. This finds the plan that
maps the original's size to the edited size and inverts it, so each edited pixel
lands exactly where it came from; the few border pixels the plan cropped away are
reported as not covered (the caller keeps the original there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .frame_plan import MULTIPLE, FramePlan, apply_frame_plan, plan_frame_size


def find_frame_plan(src_h: int, src_w: int, out_h: int, out_w: int) -> FramePlan | None:
    """The loader plan (keep, crop to 8, or fit the longer side) taking ``src`` to ``out``; None if none does."""
    candidates = [("keep", 0), ("crop_to_multiple_of_8", 0)]
    longest = max(out_h, out_w)
    candidates += [("fit_longer_side", side) for side in range(longest, longest + MULTIPLE)]
    for policy, side in candidates:
        try:
            plan = plan_frame_size(src_h, src_w, policy, longer_side=max(side, MULTIPLE))
        except ValueError:
            continue
        if (plan.out_h, plan.out_w) == (out_h, out_w):
            return plan
    return None


def cover_plan(src_h: int, src_w: int, out_h: int, out_w: int) -> FramePlan:
    """Scale to cover ``out`` keeping the aspect ratio, then centre-crop: the rule for unrelated sizes."""
    scale = max(out_h / src_h, out_w / src_w)
    resize_h = max(out_h, round(src_h * scale))
    resize_w = max(out_w, round(src_w * scale))
    return FramePlan(src_h, src_w, resize_h, resize_w, (resize_h - out_h) // 2, (resize_w - out_w) // 2,
                     out_h, out_w)


def _covered(plan: FramePlan, device: torch.device) -> torch.Tensor:
    """``[src_h,src_w]`` bool: source pixels whose centre maps inside the plan's crop."""
    def axis(src: int, resized: int, start: int, length: int) -> torch.Tensor:
        centres = (torch.arange(src, device=device, dtype=torch.float32) + 0.5) * resized / src - 0.5
        return (centres >= start - 0.5) & (centres <= start + length - 0.5)

    rows = axis(plan.src_h, plan.resize_h, plan.top, plan.out_h)
    cols = axis(plan.src_w, plan.resize_w, plan.left, plan.out_w)
    return rows[:, None] & cols[None, :]


def undo_frame_plan(frames: torch.Tensor, plan: FramePlan) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``[T,out_h,out_w,C]`` (or masks ``[T,out_h,out_w]``) -> source size, plus coverage.

    Returns ``(frames at [T,src_h,src_w(,C)], covered [src_h,src_w] bool)``. The crop
    margins are filled by edge replication before resizing back (so resampling near the
    crop edge sees no black), and marked not covered.
    """
    is_mask = frames.dim() == 3
    if tuple(frames.shape[1:3]) != (plan.out_h, plan.out_w):
        raise ValueError(f"frames of shape {tuple(frames.shape)} are not the plan's output size "
                         f"{plan.out_h}x{plan.out_w}")
    chw = (frames.unsqueeze(1) if is_mask else frames.movedim(-1, 1)).float()
    pads = (plan.left, plan.resize_w - plan.left - plan.out_w, plan.top, plan.resize_h - plan.top - plan.out_h)
    if any(pads):
        chw = F.pad(chw, pads, mode="replicate")
    if plan.resizes:
        chw = F.interpolate(chw, size=(plan.src_h, plan.src_w), mode="bilinear", align_corners=False,
                            antialias=True)
    out = chw.squeeze(1) if is_mask else chw.movedim(1, -1).contiguous()
    return out.to(frames.dtype), _covered(plan, frames.device)


def fit_to_canvas(frames: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring ``[T,h,w(,C)]`` to ``height x width``: invert the loader plan that made them, else cover-crop.

    Returns ``(frames [T,height,width(,C)], covered [height,width] bool)``.
    """
    h, w = frames.shape[1:3]
    if (h, w) == (height, width):
        return frames, torch.ones(height, width, dtype=torch.bool, device=frames.device)
    plan = find_frame_plan(height, width, h, w)
    if plan is not None:
        return undo_frame_plan(frames, plan)
    resized = apply_frame_plan(frames, cover_plan(h, w, height, width))
    return resized, torch.ones(height, width, dtype=torch.bool, device=frames.device)
