"""Bring a ComfyUI MASK into the ``[T,H,W]`` layout the video nodes expect, or pick its prompt frame.

Nodes upstream emit ``[H,W]``, ``[1,H,W]`` or ``[T,H,W]``; a single frame broadcasts
over the clip, any other count that disagrees is the user's wiring mistake and must
say so rather than silently repeat or truncate.
"""

from __future__ import annotations

import torch


def match_mask_frames(mask: torch.Tensor, frame_count: int, height: int | None = None,
                      width: int | None = None, what: str = "mask") -> torch.Tensor:
    """Return ``mask`` as ``[frame_count,H,W]`` float, broadcasting a single frame.

    ``height``/``width``, when given, must match the mask's size exactly.
    Raises ``ValueError`` naming the fix for any other mismatch.
    """
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    if mask.dim() == 4 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.dim() != 3:
        raise ValueError(f"the {what} has shape {tuple(mask.shape)}; expected [T,H,W] or [H,W]")
    if height is not None and width is not None and tuple(mask.shape[1:]) != (height, width):
        raise ValueError(f"the {what} is {mask.shape[2]}x{mask.shape[1]} px but the frames are "
                         f"{width}x{height}; load or resize the mask with the same size policy as the video")
    if mask.shape[0] == frame_count:
        return mask.float()
    if mask.shape[0] == 1:
        return mask.float().expand(frame_count, -1, -1)
    raise ValueError(f"the {what} has {mask.shape[0]} frames but the video has {frame_count}; "
                     "give one mask per frame, or a single mask frame to use on every frame")


def mask_on_frame(mask: torch.Tensor, frame_index: int, frame_count: int, height: int, width: int,
                  what: str = "mask") -> torch.Tensor:
    """The ``[H,W]`` mask a prompt MASK gives for frame ``frame_index`` of a ``frame_count``-frame clip.

    ``mask`` is ``[H,W]``, a single frame ``[1,H,W]`` (drawn on ``frame_index``), or one per
    frame ``[T,H,W]`` (its frame ``frame_index`` is taken). Raises ``ValueError`` naming the
    fix for another frame count or a size other than ``height x width``.
    """
    if mask.dim() == 3:
        if mask.shape[0] not in (1, frame_count):
            raise ValueError(f"the {what} has {mask.shape[0]} frames, the video {frame_count}; give one mask (for "
                             "frame_index) or one per frame")
        mask = mask[frame_index] if mask.shape[0] == frame_count and frame_count > 1 else mask[0]
    if tuple(mask.shape) != (height, width):
        raise ValueError(f"the {what} is {mask.shape[-1]}x{mask.shape[-2]} px but the frames are {width}x{height}; "
                         f"draw or resize the {what} at the video's size")
    return mask
