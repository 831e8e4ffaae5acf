"""DIS mask propagation on a synthetic textured shape that moves and rotates."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F

from drive_ops.masks.propagation import propagate_mask

H = W = 192
T = 30


def _texture(gen: torch.Generator, size: int, scale: int) -> torch.Tensor:
    noise = torch.rand(1, 3, size // scale, size // scale, generator=gen)
    return F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)[0]


@functools.lru_cache(maxsize=1)
def _scene() -> tuple[torch.Tensor, torch.Tensor]:
    """Frames [T,H,W,3] and true masks [T,H,W]: a textured ellipse drifting and turning."""
    gen = torch.Generator().manual_seed(0)
    background = _texture(gen, H, 8)
    obj = _texture(gen, H, 6) * 0.6 + 0.4
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
    frames, masks = [], []
    for t in range(T):
        angle = math.radians(1.5 * t)
        cx, cy = -0.3 + 0.015 * t, -0.1 + 0.008 * t
        # object coordinates of each pixel (inverse rotation about the centre)
        u = math.cos(angle) * (xs - cx) + math.sin(angle) * (ys - cy)
        v = -math.sin(angle) * (xs - cx) + math.cos(angle) * (ys - cy)
        inside = ((u / 0.4) ** 2 + (v / 0.25) ** 2) <= 1.0
        grid = torch.stack([u, v], dim=-1)[None]
        sampled = F.grid_sample(obj[None], grid, align_corners=True, padding_mode="reflection")[0]
        frame = torch.where(inside[None], sampled, background)
        frames.append(frame.permute(1, 2, 0))
        masks.append(inside.float())
    return torch.stack(frames), torch.stack(masks)


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum()) / float((a | b).sum())


def test_propagation_keeps_iou():
    """From a middle frame, so both directions are covered."""
    frame_index = 12
    frames, truth = _scene()
    steps = []
    out = propagate_mask(frames, truth[frame_index], frame_index=frame_index,
                         progress=lambda done, total: steps.append((done, total)))
    assert out.shape == (T, H, W) and out.dtype == torch.float32
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert steps == [(i, T) for i in range(1, T + 1)]
    assert torch.equal(out[frame_index], truth[frame_index])
    ious = [_iou(out[t], truth[t]) for t in range(T)]
    assert min(ious) >= 0.9, ious


def test_inputs_not_mutated_and_errors():
    frames, truth = _scene()
    frames, truth = frames[:3], truth[:3]
    f0, m0 = frames.clone(), truth[0].clone()
    propagate_mask(frames, truth[0])
    assert torch.equal(frames, f0) and torch.equal(truth[0], m0)
    with pytest.raises(ValueError, match="outside the clip"):
        propagate_mask(frames, truth[0], frame_index=3)
    with pytest.raises(ValueError, match="frame size"):
        propagate_mask(frames, truth[0, :10])


def test_static_clip_keeps_the_mask():
    gen = torch.Generator().manual_seed(3)
    frame = _texture(gen, 64, 4).permute(1, 2, 0)
    frames = frame.expand(4, -1, -1, -1).contiguous()
    mask = torch.zeros(64, 64)
    mask[20:40, 15:45] = 1
    out = propagate_mask(frames, mask, frame_index=1)
    assert torch.equal(out, mask.expand(4, -1, -1))


def test_auto_preset():
    from drive_ops.masks.propagation import resolve_preset

    assert resolve_preset("auto", 192, 640) == "fine"
    assert resolve_preset("auto", 512, 512) == "medium"
    assert resolve_preset("fast", 64, 64) == "fast"
