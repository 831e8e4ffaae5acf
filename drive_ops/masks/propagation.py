"""Weight-free mask propagation: carry a mask drawn on one frame through the clip with DIS flow.

Makes the pack useful before any SAM2 file is installed. From the prompt frame the
mask is warped one frame at a time, forwards and backwards: each step pulls the
previous mask onto the new frame along the flow from the new frame to the previous one
and re-binarises it, so bilinear blur does not accumulate. Chained warping alone drifts
(DIS smooths the flow across the object's edge, so background pixels get dragged along
and then stay, being static), so every step re-labels the edge band, and the pixels
that fail the forward-backward occlusion check, by whether each follows the object's
or the background's local motion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.progress import Progress, notify
from ..core.optical_flow import dis_flow, occlusion_mask, resolve_preset, warp_backward


def _box_sum(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable box filter of ``x`` ``[N,C,H,W]`` (zero padding; only ratios of it are used)."""
    k = 2 * radius + 1
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius))
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(radius, 0))


def _local_mean(values: torch.Tensor, weight: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted box mean of ``values`` ``[H,W,C]`` over ``weight`` ``[H,W]``, and the weight density."""
    num = _box_sum((values * weight[..., None]).permute(2, 0, 1)[None], radius)[0].permute(1, 2, 0)
    den = _box_sum(weight[None, None], radius)[0, 0]
    return num / den.clamp(min=1e-6)[..., None], den


def _snap_to_motion(mask: torch.Tensor, flow: torch.Tensor, unreliable: torch.Tensor | None = None,
                    band: int = 3, radius: int = 8, min_contrast: float = 0.5) -> torch.Tensor:
    """Re-label the edge band of ``mask`` ``[H,W]`` by which side's motion each pixel follows.

    Near the boundary, a pixel whose flow ``[H,W,2]`` is closer to the local mean flow of
    the object's interior than to that of the surrounding background joins the object,
    and vice versa. This removes background pixels that a previous step wrongly took
    along (static background is photometrically consistent, so nothing else would) and
    recovers the leading edge; where both sides move alike the mask is left as it is.
    Pixels flagged ``unreliable`` ``[H,W]`` (failed the forward-backward check: revealed
    background) within ``radius`` of the edge are re-labelled the same way.
    """
    m = mask[None, None]
    k = 2 * band + 1
    inner = (-F.max_pool2d(-m, k, 1, band))[0, 0]
    outer = 1.0 - F.max_pool2d(m, k, 1, band)[0, 0]
    f_in, w_in = _local_mean(flow, inner, radius)
    f_out, w_out = _local_mean(flow, outer, radius)
    d_in = (flow - f_in).norm(dim=-1)
    d_out = (flow - f_out).norm(dim=-1)
    contrast = (f_in - f_out).norm(dim=-1)
    near = (inner < 0.5) & (outer < 0.5)
    if unreliable is not None:
        near = near | (unreliable & (F.max_pool2d(m, 2 * radius + 1, 1, radius)[0, 0] > 0.5))
    decide = near & (w_in > 0) & (w_out > 0) & (contrast > min_contrast)
    return torch.where(decide, (d_in < d_out).float(), mask)


def propagate_step(mask_prev: torch.Tensor, frame_prev: torch.Tensor, frame_next: torch.Tensor,
                   preset: str = "fine", occlusion_check: bool = True, threshold: float = 0.5) -> torch.Tensor:
    """Move ``mask_prev`` ``[H,W]`` (on ``frame_prev``) onto ``frame_next``; frames ``[H,W,3]``.

    Returns a binary ``[H,W]`` float mask.
    """
    flow_next_to_prev = dis_flow(frame_next, frame_prev, preset)
    warped = (warp_backward(mask_prev.float(), flow_next_to_prev) > threshold).float()
    unreliable = None
    if occlusion_check:
        unreliable = occlusion_mask(flow_next_to_prev, dis_flow(frame_prev, frame_next, preset))
    return _snap_to_motion(warped, flow_next_to_prev, unreliable)


def propagate_mask(frames: torch.Tensor, mask: torch.Tensor, frame_index: int = 0, preset: str = "auto",
                   occlusion_check: bool = True, threshold: float = 0.5,
                   progress: Progress | None = None) -> torch.Tensor:
    """Carry ``mask`` ``[H,W]`` from frame ``frame_index`` through ``frames`` ``[T,H,W,3]`` (0..1).

    Returns binary ``[T,H,W]`` float32 on the frames' device: the prompt frame is
    ``mask > threshold``, the others are propagated from their neighbour towards the
    prompt frame. ``preset`` is a DIS preset or "auto" (``resolve_preset``).
    ``progress(done, total)`` is called after every frame (``total`` = T).
    """
    t, h, w = frames.shape[:3]
    if not 0 <= frame_index < t:
        raise ValueError(f"frame_index {frame_index} is outside the clip (0..{t - 1})")
    if tuple(mask.shape) != (h, w):
        raise ValueError(f"the mask is {tuple(mask.shape)} but the frames are {h}x{w}; give a [H,W] mask of the frame size")
    preset = resolve_preset(preset, h, w)
    out = torch.empty(t, h, w, dtype=torch.float32, device=frames.device)
    out[frame_index] = (mask.to(frames.device).float() > threshold).float()
    done = 1
    notify(progress, done, t)
    for order in (range(frame_index + 1, t), range(frame_index - 1, -1, -1)):
        for i in order:
            j = i - 1 if i > frame_index else i + 1
            out[i] = propagate_step(out[j], frames[j], frames[i], preset, occlusion_check, threshold)
            done += 1
            notify(progress, done, t)
    return out
