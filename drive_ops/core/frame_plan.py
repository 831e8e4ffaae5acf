"""The one rule that turns a source frame size into the pack's working size.

The loader applies it to decoded frames, and every later node that must line up with
them (masks, backgrounds, composites) applies the same plan, so nothing drifts by the
few pixels that ComfyUI's VAE encode would otherwise crop away. The crop follows
ComfyUI's ``vae_encode_crop_pixels``: keep ``size // m * m`` pixels starting at
``(size % m) // 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SIZE_POLICIES = ("keep", "crop_to_multiple_of_8", "fit_longer_side")
MULTIPLE = 8


@dataclass(frozen=True)
class FramePlan:
    """Resize ``(src_h, src_w)`` to ``(resize_h, resize_w)``, then crop ``out_h x out_w`` at ``(top, left)``."""

    src_h: int
    src_w: int
    resize_h: int
    resize_w: int
    top: int
    left: int
    out_h: int
    out_w: int

    @property
    def resizes(self) -> bool:
        return (self.resize_h, self.resize_w) != (self.src_h, self.src_w)

    @property
    def is_identity(self) -> bool:
        return (self.resize_h, self.resize_w, self.out_h, self.out_w) == (
            self.src_h, self.src_w, self.src_h, self.src_w)


def center_crop_span(size: int, multiple: int = MULTIPLE) -> tuple[int, int]:
    """(offset, length) of the centred crop to a multiple, ComfyUI's VAE rule."""
    length = (size // multiple) * multiple
    if length == 0:
        raise ValueError(f"a side of {size} px is smaller than {multiple} px, so cropping it to a multiple of "
                         f"{multiple} leaves nothing: use size_policy keep (the VAE needs at least {multiple} px), "
                         "fit_longer_side to scale it up, or a larger video")
    return (size % multiple) // 2, length


def plan_frame_size(height: int, width: int, policy: str = "keep", longer_side: int = 512,
                    multiple: int = MULTIPLE) -> FramePlan:
    """Plan the working size of ``height x width`` frames under a size policy.

    - ``keep``: the source size.
    - ``crop_to_multiple_of_8``: centred crop of each side down to a multiple of 8.
    - ``fit_longer_side``: scale (keeping the aspect ratio) so the longer side is
      ``longer_side``, then the centred crop to a multiple of 8.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"invalid frame size {width}x{height}")
    if policy == "keep":
        return FramePlan(height, width, height, width, 0, 0, height, width)
    if policy == "crop_to_multiple_of_8":
        resize_h, resize_w = height, width
    elif policy == "fit_longer_side":
        if longer_side < multiple:
            raise ValueError(f"longer_side must be at least {multiple} px, got {longer_side}")
        scale = longer_side / max(height, width)
        resize_h = max(1, round(height * scale))
        resize_w = max(1, round(width * scale))
    else:
        raise ValueError(f"unknown size policy {policy!r}; choose one of {', '.join(SIZE_POLICIES)}")
    top, out_h = center_crop_span(resize_h, multiple)
    left, out_w = center_crop_span(resize_w, multiple)
    return FramePlan(height, width, resize_h, resize_w, top, left, out_h, out_w)


def apply_frame_plan(frames: torch.Tensor, plan: FramePlan, mode: str = "bilinear") -> torch.Tensor:
    """Apply a plan to images ``[T,H,W,C]`` or masks ``[T,H,W]``; returns the same layout.

    ``mode`` is the resize filter: ``bilinear`` (antialiased) or ``area`` for images,
    ``nearest`` for hard masks. The result does not share memory with a resized input;
    for a pure crop it is a view, as ComfyUI's own crop is.
    """
    is_mask = frames.dim() == 3
    if frames.dim() not in (3, 4) or tuple(frames.shape[1:3]) != (plan.src_h, plan.src_w):
        raise ValueError(f"frames of shape {tuple(frames.shape)} do not match the plan's source size "
                         f"{plan.src_h}x{plan.src_w} (expected [T,H,W] or [T,H,W,C])")
    out = frames
    if plan.resizes:
        chw = out.unsqueeze(1) if is_mask else out.movedim(-1, 1)
        kwargs = {"antialias": True, "align_corners": False} if mode == "bilinear" else {}
        chw = F.interpolate(chw.float(), size=(plan.resize_h, plan.resize_w), mode=mode, **kwargs)
        chw = chw.to(frames.dtype)
        out = chw.squeeze(1) if is_mask else chw.movedim(1, -1).contiguous()
    return out[:, plan.top:plan.top + plan.out_h, plan.left:plan.left + plan.out_w]
