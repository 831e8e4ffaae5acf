"""SAMURAI's motion model: a constant-velocity Kalman filter over a box.

The state is ``[x, y, a, h, vx, vy, va, vh]`` (box centre, aspect w/h, height and their
velocities, dt = 1 frame); measurements are ``[x, y, a, h]``. Process and measurement
noise scale with the box height, as in DeepSORT, so the filter behaves the same for
small and large objects (docs/algorithms.md, SAMURAI). Everything runs in float64 on
the CPU: the matrices are 8x8 and a tracker calls this once per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

STD_WEIGHT_POSITION = 1.0 / 20.0
STD_WEIGHT_VELOCITY = 1.0 / 160.0

_F = torch.eye(8, dtype=torch.float64)
_F[:4, 4:] = torch.eye(4, dtype=torch.float64)
_H = torch.eye(4, 8, dtype=torch.float64)


@dataclass
class KalmanBox:
    """The filter's estimate: ``mean`` [8] and ``cov`` [8,8], float64."""

    mean: torch.Tensor
    cov: torch.Tensor


def _vec(values) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float64).flatten().clone()


def kalman_initiate(measurement) -> KalmanBox:
    """Start a track from one ``[x, y, a, h]`` measurement with zero velocity."""
    z = _vec(measurement)
    h = float(z[3])
    sp, sv = STD_WEIGHT_POSITION * h, STD_WEIGHT_VELOCITY * h
    std = _vec([2 * sp, 2 * sp, 1e-2, 2 * sp, 10 * sv, 10 * sv, 1e-5, 10 * sv])
    return KalmanBox(torch.cat([z, torch.zeros(4, dtype=torch.float64)]), torch.diag(std * std))


def kalman_predict(state: KalmanBox) -> KalmanBox:
    """One constant-velocity step; process noise scales with the current height."""
    h = float(state.mean[3])
    sp, sv = STD_WEIGHT_POSITION * h, STD_WEIGHT_VELOCITY * h
    std = _vec([sp, sp, 1e-2, sp, sv, sv, 1e-5, sv])
    mean = _F @ state.mean
    cov = _F @ state.cov @ _F.T + torch.diag(std * std)
    return KalmanBox(mean, cov)


def kalman_update(state: KalmanBox, measurement) -> KalmanBox:
    """Correct the prediction with a ``[x, y, a, h]`` measurement (Cholesky solve)."""
    h = float(state.mean[3])
    sp = STD_WEIGHT_POSITION * h
    r = _vec([sp, sp, 1e-1, sp])
    proj_mean = _H @ state.mean
    proj_cov = _H @ state.cov @ _H.T + torch.diag(r * r)
    chol = torch.linalg.cholesky(proj_cov)
    # K = P H^T S^-1, solved as S K^T = H P
    gain = torch.cholesky_solve(_H @ state.cov, chol).T
    innovation = _vec(measurement) - proj_mean
    mean = state.mean + gain @ innovation
    cov = state.cov - gain @ proj_cov @ gain.T
    return KalmanBox(mean, cov)


def xyxy_to_xyah(box) -> torch.Tensor:
    """``[x1, y1, x2, y2]`` -> ``[cx, cy, w/h, h]`` (a zero height counts as 1)."""
    x1, y1, x2, y2 = (float(v) for v in _vec(box))
    w, h = x2 - x1, y2 - y1
    h = h if h != 0 else 1.0
    return _vec([x1 + w / 2.0, y1 + h / 2.0, w / h, h])


def xyah_to_xyxy(xyah) -> torch.Tensor:
    """``[cx, cy, w/h, h]`` -> ``[x1, y1, x2, y2]``."""
    cx, cy, a, h = (float(v) for v in _vec(xyah)[:4])
    w = a * h
    return _vec([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0])


def box_iou(box_xyxy: torch.Tensor, boxes_xyxy: torch.Tensor) -> torch.Tensor:
    """IoU ``[K]`` of one box ``[4]`` against ``[K,4]`` boxes; an all-zero box scores 0."""
    a = _vec(box_xyxy)
    b = torch.as_tensor(boxes_xyxy, dtype=torch.float64).reshape(-1, 4)
    iw = (torch.minimum(a[2], b[:, 2]) - torch.maximum(a[0], b[:, 0])).clamp(min=0)
    ih = (torch.minimum(a[3], b[:, 3]) - torch.maximum(a[1], b[:, 1])).clamp(min=0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))
    return torch.where((b == 0).all(dim=1), torch.zeros_like(iou), iou)


def mask_boxes_xyxy(masks: torch.Tensor) -> torch.Tensor:
    """Boxes ``[K,4]`` (x1, y1, x2, y2 in pixels, inclusive max) of ``masks > 0`` ``[K,H,W]``.

    An empty mask gives ``[0, 0, 0, 0]``, which ``box_iou`` scores as 0.
    """
    fg = masks > 0
    k, h, w = fg.shape
    rows, cols = fg.any(dim=2), fg.any(dim=1)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    big = torch.iinfo(torch.long).max
    y1 = torch.where(rows, ys, big).min(dim=1).values
    y2 = torch.where(rows, ys, -1).max(dim=1).values
    x1 = torch.where(cols, xs, big).min(dim=1).values
    x2 = torch.where(cols, xs, -1).max(dim=1).values
    boxes = torch.stack([x1, y1, x2, y2], dim=1).to(torch.float64)
    empty = ~rows.any(dim=1)
    boxes[empty] = 0.0
    return boxes.cpu()
