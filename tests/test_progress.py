"""One progress convention: every long operation calls ``progress(done, total)`` with done rising to total.

A callback written for increments (``update(1)``) would leave ComfyUI's bar stuck at 1
without an error, so each long loop of drive_ops is checked against the same recorder.
"""

from __future__ import annotations

import pytest
import torch

from drive_ops.composite.compositing import composite_video
from drive_ops.composite.harmonize import harmonize_video
from drive_ops.core.progress import notify, stage
from drive_ops.evaluate.edit_report import build_report
from drive_ops.masks.propagation import propagate_mask
from drive_ops.video.decode import load_video
from drive_ops.video.encode import encode_video

T, H, W = 6, 24, 32


class Recorder:
    """Collects (done, total) calls and checks them against the convention."""

    def __init__(self):
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def check(self, total: int | None = None) -> None:
        assert self.calls, "no progress was reported"
        totals = {n for _, n in self.calls}
        assert len(totals) == 1, f"the total changed during the run: {sorted(totals)}"
        n = totals.pop()
        assert total is None or n == total
        done = [d for d, _ in self.calls]
        assert all(1 <= d <= n for d in done) and done == sorted(done), self.calls
        assert done[-1] == n, f"progress stopped at {done[-1]} of {n}"


def _clip() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(T, H, W, 3, generator=gen) * 0.4
    mask = torch.zeros(T, H, W)
    for t in range(T):
        frames[t, 6:18, 4 + 2 * t:16 + 2 * t] = torch.tensor([0.9, 0.7, 0.2])
        mask[t, 6:18, 4 + 2 * t:16 + 2 * t] = 1.0
    return frames, mask


def test_helpers():
    rec = Recorder()
    notify(None, 1, 2)                      # no callback: nothing to do
    part = stage(rec, 3, 10)
    part(1, 4)
    part(4, 4)
    notify(rec, 10, 10)
    assert rec.calls == [(4, 10), (7, 10), (10, 10)]


@pytest.mark.parametrize("fmt", ["mp4", "png"])
def test_video_encode_and_decode(tmp_path, fmt):
    frames, _ = _clip()
    enc = Recorder()
    encode_video(frames, 8.0, str(tmp_path / f"clip{'.mp4' if fmt == 'mp4' else ''}"), fmt, progress=enc)
    enc.check(T)
    if fmt == "mp4":
        dec = Recorder()
        load_video(str(tmp_path / "clip.mp4"), progress=dec)
        dec.check(T)


def test_mask_propagation():
    frames, mask = _clip()
    rec = Recorder()
    propagate_mask(frames, mask[2], frame_index=2, progress=rec)
    rec.check(T)


def test_composite_and_harmonize():
    frames, mask = _clip()
    rec = Recorder()
    composite_video(frames.flip(-1), frames, mask, chunk=4, progress=rec)
    rec.check(2)
    rec = Recorder()
    harmonize_video(frames, mask, None, chunk=4, progress=rec)
    rec.check(1)                            # without weights the frames pass through: one step


def test_edit_report():
    frames, mask = _clip()
    rec = Recorder()
    build_report(frames, (frames * 0.9).clamp(0, 1), mask, dilation_px=1, flow_preset="fast", progress=rec)
    rec.check()
