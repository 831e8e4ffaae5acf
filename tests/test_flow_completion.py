"""Flow completion: camera motion is carried into the hole exactly, smooth motion closely, known flow untouched."""

from __future__ import annotations

import torch

from drive_ops.core.flow_completion import affine_field, complete_flow, fit_affine_motion

H, W = 96, 128


def _grid() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")


def _affine() -> torch.Tensor:
    ys, xs = _grid()
    return torch.stack([1.5 + 0.01 * xs - 0.004 * ys, -0.7 + 0.003 * xs + 0.008 * ys], dim=-1)


def _disk(cy: float, cx: float, r: float) -> torch.Tensor:
    ys, xs = _grid()
    return (ys - cy) ** 2 + (xs - cx) ** 2 < r * r


def _scrambled(flow: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    noisy = flow.clone()
    noisy[unknown] = torch.randn(int(unknown.sum()), 2, generator=torch.Generator().manual_seed(0)) * 5
    return noisy


def test_affine_camera_motion_is_exact_inside_and_at_the_frame_edge():
    flow = _affine()
    ys, xs = _grid()
    for unknown in (_disk(40, 70, 25), _disk(40, 70, 25) | (xs < 20)):
        before = _scrambled(flow, unknown)
        copy = before.clone()
        out = complete_flow(before, unknown)
        assert torch.equal(before, copy), "the input was mutated"
        assert (out - flow)[unknown].abs().max() < 1e-3
        assert torch.equal(out[~unknown], before[~unknown]), "known flow changed"


def test_smooth_non_affine_motion_is_filled_closely():
    ys, xs = _grid()
    flow = _affine() + torch.stack([0.5 * torch.sin(xs / 30), 0.3 * torch.cos(ys / 25)], dim=-1)
    unknown = _disk(50, 60, 20)
    out = complete_flow(_scrambled(flow, unknown), unknown)
    # the residual's curvature bounds the membrane's error: 0.5/30^2 * 20^2 / 4 ~ 0.06 px
    assert (out - flow)[unknown].abs().max() < 0.1


def test_the_fit_ignores_a_second_moving_thing():
    flow = _affine()
    other = _disk(20, 20, 12)
    flow_with_other = flow.clone()
    flow_with_other[other] = torch.tensor([6.0, -4.0])
    coeffs = fit_affine_motion(flow_with_other, torch.ones(H, W, dtype=torch.bool))
    assert (affine_field(coeffs, H, W) - flow).abs().max() < 0.05


def test_nothing_or_everything_unknown():
    flow = _affine()
    assert torch.equal(complete_flow(flow, torch.zeros(H, W, dtype=torch.bool)), flow)
    assert torch.equal(complete_flow(flow, torch.ones(H, W, dtype=torch.bool)), torch.zeros_like(flow))
