"""Fill a flow field inside a region from the motion around it: weight-free flow completion.

Removing an object needs the background's motion where the object was, but DIS measured
the object's own motion there. The fill has two parts:

- the camera: an affine motion ``u = A [x, y, 1]`` fitted to the known flow by least
  squares, reweighted twice (Cauchy weights, 1 px scale) so other moving things count
  little. It carries pans, zooms and rotations into the region exactly, also where the
  region touches the frame's edge;
- the rest (parallax, a non-rigid background): the known residual ``flow - affine`` is
  filled with the smoothest field that meets it on the region's edge, the solution of
  Laplace's equation (a membrane). It is solved coarse to fine: a masked-average pyramid
  gives each coarser level's known values, each level starts from the upsampled coarser
  solution and relaxes it with red-black successive over-relaxation, so a few dozen
  sweeps per level suffice whatever the region's size. Only the region's bounding box is
  computed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

COARSEST_PX = 8
SWEEPS = 10
COARSEST_SWEEPS = 30
OVER_RELAXATION = 1.7
FIT_STRIDE = 4
FIT_SCALE_PX = 1.0
FIT_REWEIGHTS = 2


def _bounding_box(region: torch.Tensor) -> tuple[slice, slice]:
    """Rows and columns of ``region`` ``[H,W]`` bool, grown by one pixel (the known ring) within the frame."""
    rows = torch.nonzero(region.any(dim=1)).flatten()
    cols = torch.nonzero(region.any(dim=0)).flatten()
    h, w = region.shape
    return (slice(max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, h)),
            slice(max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, w)))


def _relax(values: torch.Tensor, unknown: torch.Tensor, sweeps: int) -> torch.Tensor:
    """Red-black SOR sweeps of Laplace's equation on ``values`` ``[C,h,w]``, changing only ``unknown`` pixels.

    Replicated borders make the frame's edge a zero-gradient (Neumann) boundary. The sweeps
    run in place on one padded buffer whose border is refreshed from its edge rows and
    columns: re-padding the whole field every half-sweep cost more than the sweep itself.
    """
    c, h, w = values.shape
    parity = (torch.arange(h, device=values.device)[:, None] + torch.arange(w, device=values.device)[None, :]) % 2
    steps = [OVER_RELAXATION * (unknown & (parity == colour)).to(values.dtype) for colour in (0, 1)]
    padded = values.new_empty(c, h + 2, w + 2)
    inner = padded[:, 1:-1, 1:-1]
    inner.copy_(values)
    for _ in range(sweeps):
        for step in steps:
            padded[:, 0, 1:-1] = inner[:, 0]
            padded[:, -1, 1:-1] = inner[:, -1]
            padded[:, 1:-1, 0] = inner[:, :, 0]
            padded[:, 1:-1, -1] = inner[:, :, -1]
            change = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1]
            change += padded[:, 1:-1, :-2]
            change += padded[:, 1:-1, 2:]
            change.mul_(0.25).sub_(inner).mul_(step)
            inner.add_(change)
    return inner.contiguous()


def _solve(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Harmonic fill of ``values`` ``[C,h,w]`` where ``known`` ``[h,w]`` (float 0/1) is 0, coarse to fine."""
    h, w = known.shape
    if min(h, w) <= COARSEST_PX:
        start = (values * known).sum(dim=(1, 2), keepdim=True) / known.sum().clamp(min=1.0)
        filled = torch.where(known > 0, values, start.expand_as(values))
        return _relax(filled, known == 0, COARSEST_SWEEPS)
    weight = F.avg_pool2d(known[None, None], 2, ceil_mode=True)[0, 0]
    coarse_sum = F.avg_pool2d((values * known)[None], 2, ceil_mode=True)[0]
    coarse = _solve(coarse_sum / weight.clamp(min=1e-12), (weight > 0).float())
    start = F.interpolate(coarse[None], scale_factor=2, mode="bilinear", align_corners=False)[0, :, :h, :w]
    filled = torch.where(known > 0, values, start)
    return _relax(filled, known == 0, SWEEPS)


def _design(ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    return torch.stack([xs, ys, torch.ones_like(xs)], dim=-1)


def fit_affine_motion(flow: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """The affine motion ``[3,2]`` (``flow ~ [x, y, 1] @ A``) that best explains ``flow`` ``[H,W,2]`` on ``known`` ``[H,W]``.

    Least squares on every ``FIT_STRIDE``-th known pixel, then ``FIT_REWEIGHTS`` Cauchy
    reweightings so a second moving thing pulls the fit little. Coordinates are scaled to
    about 1 for a well-conditioned solve.
    """
    sub = known[::FIT_STRIDE, ::FIT_STRIDE]
    if int(sub.sum()) < 3:
        sub = known
        stride = 1
    else:
        stride = FIT_STRIDE
    ys, xs = torch.nonzero(sub, as_tuple=True)
    ys, xs = ys.float() * stride, xs.float() * stride
    target = flow[ys.long(), xs.long()].double()
    scale = float(max(flow.shape[0], flow.shape[1]))
    design = _design(ys / scale, xs / scale).to(target)
    weights = torch.ones_like(target[:, 0])
    for _ in range(FIT_REWEIGHTS + 1):
        wd = design * weights[:, None]
        normal = wd.T @ design + 1e-9 * torch.eye(3, dtype=design.dtype, device=design.device)
        coeffs = torch.linalg.solve(normal, wd.T @ target)
        residual = (design @ coeffs - target).pow(2).sum(-1)
        weights = 1.0 / (1.0 + residual / FIT_SCALE_PX ** 2)
    coeffs[:2] /= scale
    return coeffs.to(flow.dtype)


def affine_field(coeffs: torch.Tensor, height: int, width: int, rows: slice = slice(None),
                 cols: slice = slice(None)) -> torch.Tensor:
    """The flow ``[h,w,2]`` of the affine motion ``coeffs`` ``[3,2]`` on the pixels ``rows x cols`` of the frame."""
    ys = torch.arange(height, device=coeffs.device, dtype=coeffs.dtype)[rows]
    xs = torch.arange(width, device=coeffs.device, dtype=coeffs.dtype)[cols]
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return _design(grid_y, grid_x) @ coeffs


def complete_flow(flow: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """``flow`` ``[H,W,2]`` with the ``unknown`` ``[H,W]`` (bool) pixels replaced by affine + harmonic fill.

    Known pixels are returned unchanged. With every pixel unknown there is no motion to go
    by and the result is zero flow. The input is not modified.
    """
    out = flow.clone()
    if not bool(unknown.any()):
        return out
    if bool(unknown.all()):
        return torch.zeros_like(flow)
    h, w = unknown.shape
    coeffs = fit_affine_motion(flow.float(), ~unknown)
    rows, cols = _bounding_box(unknown)
    camera = affine_field(coeffs, h, w, rows, cols)
    known = (~unknown[rows, cols]).float()
    residual = (flow[rows, cols].float() - camera).movedim(-1, 0)
    solved = (_solve(residual * known, known).movedim(0, -1) + camera).to(flow.dtype)
    out[rows, cols] = torch.where(unknown[rows, cols, None], solved, flow[rows, cols])
    return out
