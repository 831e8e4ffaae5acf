"""Dense optical flow (OpenCV DIS) and the warping / occlusion maths built on it.

Used by the weight-free mask propagation and by the temporal-consistency metrics.
Flow follows OpenCV's convention: ``flow = dis_flow(a, b)`` means pixel ``(x, y)`` of
``a`` is seen at ``(x + flow[...,0], y + flow[...,1])`` in ``b``, so
``warp_backward(b, flow)`` re-samples ``b`` onto ``a``'s pixel grid.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DIS_PRESETS = ("ultrafast", "fast", "medium", "fine")
FLOW_QUALITIES = ("auto", "fine", "medium", "fast", "ultrafast")
"""What the nodes offer: a DIS preset, or "auto" (:func:`resolve_preset`)."""


def _to_gray_u8(frame: torch.Tensor) -> np.ndarray:
    """``[H,W,3]`` or ``[H,W]`` float 0..1 -> uint8 grey image for OpenCV."""
    f = frame.detach().float().cpu()
    if f.dim() == 3:
        f = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    return (f.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()


def dis_flow(frame_a: torch.Tensor, frame_b: torch.Tensor, preset: str = "medium") -> torch.Tensor:
    """Flow ``[H,W,2]`` (float32, pixels, x then y) from ``frame_a`` to ``frame_b``.

    Frames are ``[H,W,3]`` or ``[H,W]`` floats in 0..1 on any device; the result is on
    ``frame_a``'s device.
    """
    import cv2

    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; choose one of {', '.join(DIS_PRESETS)}")
    if preset == "fine":
        # "medium" stops at half resolution (finest scale 1); "fine" refines down to full
        # resolution, which small or thin objects need (about 2x slower)
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)
    else:
        dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))
    flow = dis.calc(_to_gray_u8(frame_a), _to_gray_u8(frame_b), None)
    return torch.from_numpy(flow).to(frame_a.device)


DIS_REACH_PX = {"fine": 12, "medium": 24, "fast": 32, "ultrafast": 32}
"""How far DIS carries a motion past an edge: about one patch at its finest scale (12 px
patches at full resolution for "fine", at half for "medium", 8 px at quarter for the fast
presets). fine and medium were measured on a disc moving over a textured pan (see
docs/algorithms.md); the fast presets follow the same rule."""


def resolve_preset(preset: str, height: int, width: int) -> str:
    """``"auto"``: DIS "fine" below 384 px (where "medium"'s half-resolution flow misses the
    edges of small objects), else "medium" (faster, and better on real 512 px clips)."""
    if preset != "auto":
        return preset
    return "fine" if min(height, width) < 384 else "medium"


def warp_backward(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample ``image`` ``[H,W,C]`` or ``[H,W]`` at ``grid + flow`` (flow ``[H,W,2]``).

    Samples falling outside the frame take the border value.
    """
    squeeze = image.dim() == 2
    img = image.unsqueeze(-1) if squeeze else image
    h, w = img.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=torch.float32),
                            torch.arange(w, device=flow.device, dtype=torch.float32), indexing="ij")
    gx = (xs + flow[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(0).to(img.dtype)
    out = F.grid_sample(img.movedim(-1, 0).unsqueeze(0), grid, mode=mode, padding_mode="border",
                        align_corners=True)[0].movedim(0, -1)
    return out[..., 0] if squeeze else out


def occlusion_mask(flow_fw: torch.Tensor, flow_bw: torch.Tensor, alpha1: float = 0.01,
                   alpha2: float = 0.5) -> torch.Tensor:
    """Bool ``[H,W]``: True where the forward-backward check fails (occluded or unreliable).

    A pixel is consistent when following the forward flow and then the backward flow
    brings it back: ``|fw + bw(x + fw)|^2 <= alpha1 (|fw|^2 + |bw(x + fw)|^2) + alpha2``
    (Sundaram et al. 2010, the criterion the video-editing metrics use). Pixels whose
    forward flow leaves the frame count as occluded.
    """
    bw_at_target = warp_backward(flow_bw, flow_fw)
    diff = (flow_fw + bw_at_target).pow(2).sum(-1)
    bound = alpha1 * (flow_fw.pow(2).sum(-1) + bw_at_target.pow(2).sum(-1)) + alpha2
    return (diff > bound) | ~lands_inside(flow_fw)


def lands_inside(flow: torch.Tensor) -> torch.Tensor:
    """Bool ``[H,W]``: pixels whose target ``x + flow`` lies within the frame."""
    h, w = flow.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device), torch.arange(w, device=flow.device),
                            indexing="ij")
    tx, ty = xs + flow[..., 0], ys + flow[..., 1]
    return (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
