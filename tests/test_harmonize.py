"""Harmonising a clip: the EMA steadies the arguments, without weights frames pass through, chunks agree."""

from __future__ import annotations

import pytest
import torch

from drive_ops.composite.harmonize import PASS_THROUGH_NOTE, ema_for_fps, harmonize_video, map_frames, smooth_arguments
from drive_ops.composite.harmonizer_model import build_harmonizer, random_state_dict


def test_ema_keeps_its_time_constant_across_frame_rates():
    assert ema_for_fps(0.96, 25) == pytest.approx(0.96)
    assert ema_for_fps(0.96, 50) ** 2 == pytest.approx(0.96)
    assert ema_for_fps(0.0, 30) == 0.0
    with pytest.raises(ValueError, match="fps"):
        ema_for_fps(0.96, 0)


def test_ema_lowers_frame_to_frame_variance_of_a_flickering_clip():
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(60, dtype=torch.float32)[:, None]
    args = 0.3 * torch.sin(t / 20) + 0.2 * torch.randn(60, 6, generator=gen)      # drift + flicker
    smoothed = smooth_arguments(args, ema_for_fps(0.96, 30))
    assert torch.equal(smoothed[0], args[0])
    jitter = lambda x: x.diff(dim=0).var(dim=0)                                 # noqa: E731
    assert (jitter(smoothed) < 0.05 * jitter(args)).all()


def _scene(t: int = 2, h: int = 32, w: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    frames = torch.empty(t, h, w, 3)
    frames[...] = torch.tensor([0.2, 0.5, 0.3])                                 # green background
    mask = torch.zeros(t, h, w)
    mask[:, 8:24, 10:30] = 1.0
    frames[:, 8:24, 10:30] = torch.tensor([0.9, 0.3, 0.6])                     # pink object
    frames += 0.05 * torch.rand(t, h, w, 3, generator=torch.Generator().manual_seed(1))
    return frames.clamp(0, 1), mask


def test_without_weights_the_frames_pass_through_and_the_report_says_why():
    frames, mask = _scene(3)
    before = frames.clone()
    calls = []
    out, report = harmonize_video(frames, mask, None, chunk=2, progress=lambda d, n: calls.append((d, n)))
    assert torch.equal(out, frames) and out.data_ptr() != frames.data_ptr() and torch.equal(frames, before)
    assert report["mode"] == "pass_through" and report["note"] == PASS_THROUGH_NOTE and "harmonizer.pth" in report["note"]
    assert calls[-1] == (1, 1)


class _FixedArguments:
    """Stands in for the regressor where only the video driver is under test."""

    def __init__(self, args: torch.Tensor):
        self.args = args

    def predict_arguments(self, comp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.args[: comp.shape[0]]


def test_regressor_video_is_chunk_invariant_and_keeps_the_background():
    model = build_harmonizer(random_state_dict(0))
    frames, mask = _scene(2)
    a, rep_a = harmonize_video(frames, mask, model, chunk=1)
    b, _ = harmonize_video(frames, mask, model, chunk=2)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert rep_a["mode"] == "harmonizer" and len(rep_a["applied"][0]) == 6
    assert torch.equal(a[mask == 0], frames[mask == 0])


def test_strength_scales_the_clamped_arguments():
    frames, mask = _scene(2)
    stub = _FixedArguments(torch.tensor([[3.0, -0.2, 0.4, 0.1, -0.3, 0.2]]).repeat(2, 1))
    zero, _ = harmonize_video(frames, mask, stub, strength=0.0, ema=0.0)
    torch.testing.assert_close(zero, frames, atol=2e-5, rtol=0)
    half, report = harmonize_video(frames, mask, stub, strength=0.5, ema=0.0)
    assert report["applied"][0] == pytest.approx([0.5, -0.1, 0.2, 0.05, -0.15, 0.1])
    assert not torch.allclose(half, frames)


def test_map_frames_chunks_keeps_alpha_and_reports_progress():
    rgba = torch.rand(5, 8, 8, 4, generator=torch.Generator().manual_seed(3))
    calls = []
    out = map_frames(rgba, None, lambda c, m, sl: 1.0 - c, chunk=2, progress=lambda d, n: calls.append((d, n)))
    torch.testing.assert_close(out[..., :3], 1.0 - rgba[..., :3])
    assert torch.equal(out[..., 3], rgba[..., 3]) and calls == [(1, 3), (2, 3), (3, 3)]
