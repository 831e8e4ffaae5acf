"""Inputs the bad-input catalogue's halves make: flat-colour clips, an audio-only file, booby-trapped
pickles, random frames with one value poked in.

Shared by tests/test_bad_input.py (drive_ops), tests/integration/test_bad_input_nodes.py (the
nodes in-process) and tests/integration/test_bad_input_api.py (the real server's input and
model folders).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch


class Payload:
    """Unpickling this runs ``fn(*args)``: what a booby-trapped checkpoint does."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def write_clip(path: Path, frames: int, width: int, height: int, rate: int | Fraction = 10, codec: str = "ffv1",
               pix_fmt: str = "bgr0", shade: int = 0) -> Path:
    """A clip of ``frames`` flat grey frames, frame i at level ``(shade + 37 i) mod 256``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(frames):
            img = np.full((height, width, 3), (shade + 37 * i) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_audio_only(path: Path) -> Path:
    """One second of silent mono AAC and no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 16000, 0
        for packet in list(stream.encode(chunk)) + list(stream.encode(None)):
            container.mux(packet)
    return path


def random_frames(t: int = 4, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    """An IMAGE ``[t,h,w,3]`` of seeded uniform noise."""
    return torch.rand(t, h, w, 3, generator=torch.Generator().manual_seed(seed))


def poked(x: torch.Tensor, index: tuple, value: float) -> torch.Tensor:
    """A copy of ``x`` with ``value`` (a NaN, an inf) at ``index``."""
    x = x.clone()
    x[index] = value
    return x
