"""Save Video's float-to-byte conversion and its producer thread: exact values, no thread left behind."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from drive_ops.video.encode import encode_video, video_frames
from drive_ops.video.frame_bytes import PixelConverter, prefetch


def reference(frame: torch.Tensor) -> np.ndarray:
    """The whole-frame conversion the block one must equal: round(255 v), clamped, grey repeated, alpha dropped."""
    if frame.shape[-1] == 1:
        frame = frame.expand(*frame.shape[:-1], 3)
    return (frame[..., :3].float() * 255).round().clamp(0, 255).to(torch.uint8).numpy()


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_converter_equals_whole_frame_rounding(channels):
    gen = torch.Generator().manual_seed(0)
    frame = torch.rand(45, 37, channels, generator=gen) * 1.4 - 0.2  # out-of-range values get clamped
    frame[0, :5, 0] = torch.tensor([0.5, 1.5, 2.5, 253.5, 254.5]) / 255  # exact halves round to even
    convert = PixelConverter(45, 37, rows=8)  # 45 rows: five full blocks and a short one
    assert np.array_equal(convert(frame), reference(frame))


def test_converter_takes_half_precision_and_pads_by_edge_replication():
    frame = torch.rand(5, 7, 3, generator=torch.Generator().manual_seed(1)).half()
    out = PixelConverter(5, 7, pad_h=1, pad_w=1)(frame)
    expected = np.pad(reference(frame.float()), ((0, 1), (0, 1), (0, 0)), mode="edge")
    assert out.shape == (6, 8, 3) and np.array_equal(out, expected)


def test_converter_refuses_a_frame_of_another_size():
    with pytest.raises(ValueError, match=r"expected a frame \[4,4,C\]"):
        PixelConverter(4, 4)(torch.zeros(4, 5, 3))


def test_prefetch_keeps_order_and_raises_the_producers_error_in_place():
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise KeyError("bad frame")

    got = []
    with pytest.raises(KeyError, match="bad frame"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1]


def test_prefetch_stops_its_thread_when_the_consumer_stops_early():
    produced = []

    def endless():
        while True:
            produced.append(1)
            yield len(produced)

    before = threading.active_count()
    ahead = prefetch(endless(), depth=2)
    assert next(ahead) == 1
    ahead.close()
    assert threading.active_count() == before
    count = len(produced)
    assert count <= 4  # one handed out, at most depth queued, one blocked at the full queue


def test_video_frames_match_the_encoders_own_colour_conversion():
    import av

    frames = torch.rand(3, 16, 18, 3, generator=torch.Generator().manual_seed(2))
    for got, frame in zip(video_frames(frames, "yuv420p"), frames):
        own = av.VideoFrame.from_ndarray(reference(frame), format="rgb24").reformat(format="yuv420p")
        assert got.format.name == "yuv420p"
        assert np.array_equal(got.to_ndarray(), own.to_ndarray())  # the Y, U and V planes, without line padding


def test_a_cancelled_encode_leaves_no_thread(tmp_path):
    def cancel(done, total):
        if done == 1:
            raise InterruptedError("cancelled")

    before = threading.active_count()
    with pytest.raises(InterruptedError):
        encode_video(torch.rand(6, 16, 16, 3), 10.0, str(tmp_path / "x.mp4"), "mp4", progress=cancel)
    assert threading.active_count() == before
