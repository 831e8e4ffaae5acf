"""Video in/out: the PyAV decoder and encoder on clips the tests make themselves."""

from __future__ import annotations

import json
import os
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from drive_ops.core.frame_plan import apply_frame_plan, plan_frame_size
from drive_ops.video.decode import (NoFramesSelectedError, NotAVideoError, TruncatedVideoError, VideoNotFoundError,
                                    VideoTooLargeError, check_memory, load_video, orientation_from_display_matrix,
                                    probe_video, selected_indices, tensor_bytes)
from drive_ops.video.encode import encode_video, fit_audio


def frames_u8(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Distinct random frames ``[n,h,w,3]`` uint8 (random per pixel: any misplaced pixel shows)."""
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def write_clip(path, frames: np.ndarray, fps=10, codec="ffv1", pix_fmt="bgr0", fmt=None, in_format="rgb24",
               options=None, codec_options=None, pts=None, time_base=None, rotation=None, audio=None):
    """Encode ``frames`` with PyAV. ``audio``: (waveform [C,S] float32, rate, codec)."""
    container = av.open(str(path), "w", format=fmt, options=options or {})
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
    if codec_options:
        stream.options = codec_options
    if time_base is not None:
        stream.time_base = time_base
    if rotation is not None:
        stream.set_display_rotation(*rotation)
    astream = None
    if audio is not None:  # every stream must exist before the first packet is muxed
        wave, rate, acodec = audio
        astream = container.add_stream(acodec, rate=rate)
        astream.layout = "stereo" if wave.shape[0] == 2 else "mono"
    for i, img in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(img, format=in_format)
        if pts is not None:
            frame.pts, frame.time_base = pts[i], time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    container.mux(stream.encode(None))
    if astream is not None:
        chunk = av.AudioFrame.from_ndarray(wave, format="fltp", layout=astream.layout.name)
        chunk.sample_rate, chunk.pts = rate, 0
        container.mux(astream.encode(chunk))
        container.mux(astream.encode(None))
    container.close()
    return str(path)


def as_u8(frames: torch.Tensor) -> np.ndarray:
    return (frames * 255).round().to(torch.uint8).numpy()


# ---------------------------------------------------------------- decoding


def test_lossless_odd_size_exact(tmp_path):
    src = frames_u8(7, 35, 53)
    path = write_clip(tmp_path / "odd.mkv", src, fps=12)
    progress = []
    out = load_video(path, progress=lambda done, total: progress.append((done, total)))
    assert out.frames.dtype == torch.float32 and out.frames.is_contiguous()
    assert tuple(out.frames.shape) == (7, 35, 53, 3)
    assert np.array_equal(as_u8(out.frames), src)
    assert (out.frame_count, out.fps, out.source_width, out.source_height) == (7, 12.0, 53, 35)
    assert out.source_duration == pytest.approx(7 / 12, abs=0.02)
    assert out.audio is None
    assert progress == [(i, 7) for i in range(1, 8)]


def test_selection_picks_the_right_frames(tmp_path):
    src = frames_u8(20, 16, 24, seed=1)
    path = write_clip(tmp_path / "sel.mkv", src, fps=30)
    out = load_video(path, skip_first_frames=3, select_every_nth=4, frame_load_cap=3)
    assert list(selected_indices(20, 3, 4, 3)) == [3, 7, 11]
    assert np.array_equal(as_u8(out.frames), src[[3, 7, 11]])
    assert out.fps == pytest.approx(7.5) and out.frame_count == 3
    assert load_video(path, skip_first_frames=18).frame_count == 2


def test_size_policies_follow_the_frame_plan(tmp_path):
    src = frames_u8(3, 37, 61, seed=2)
    path = write_clip(tmp_path / "sz.mkv", src)
    reference = torch.from_numpy(src).float() / 255
    crop = load_video(path, size_policy="crop_to_multiple_of_8")
    assert tuple(crop.frames.shape) == (3, 32, 56, 3)
    assert torch.equal(crop.frames, apply_frame_plan(reference, plan_frame_size(37, 61, "crop_to_multiple_of_8")))
    fit = load_video(path, size_policy="fit_longer_side", longer_side=32)
    expected = apply_frame_plan(reference, plan_frame_size(37, 61, "fit_longer_side", 32))
    assert fit.frames.shape == expected.shape == (3, 16, 32, 3)
    assert torch.allclose(fit.frames, expected, atol=1e-5)
    assert (fit.source_width, fit.source_height) == (61, 37)


def test_lossy_h264_bounded_error(tmp_path):
    # Smooth content (a moving gradient) as real video is; yuv444p allows the odd width.
    y, x = np.mgrid[0:36, 0:51]
    src = np.stack([np.stack([(x * 5 + 9 * t) % 256, (y * 7) % 256, (x + y + 20 * t) % 256], -1)
                    for t in range(6)]).astype(np.uint8)
    path = write_clip(tmp_path / "lossy.mp4", src, codec="libx264", pix_fmt="yuv444p",
                      codec_options={"crf": "12"})
    out = load_video(path)
    err = (out.frames - torch.from_numpy(src).float() / 255).abs()
    assert out.frame_count == 6 and tuple(out.frames.shape[1:3]) == (36, 51)
    assert err.mean() < 0.01 and err.max() < 0.15


def test_ten_bit_keeps_precision(tmp_path):
    # A horizontal ramp over 1024 ten-bit levels: 8-bit decoding would collapse it to 256.
    ramp = (np.arange(1024, dtype=np.uint16) << 6)[None, :, None].repeat(8, 0).repeat(3, 2)
    path = write_clip(tmp_path / "ten.mkv", ramp[None].repeat(2, 0), pix_fmt="gbrp10le", in_format="rgb48le")
    info = probe_video(path)
    assert info.bit_depth == 10
    out = load_video(path)
    levels = out.frames[0, 0, :, 0] * 1023
    assert torch.unique(out.frames[0, 0, :, 0]).numel() == 1024
    assert torch.allclose(levels, torch.arange(1024.0), atol=0.02)


def test_alpha_is_dropped(tmp_path):
    rgba = np.concatenate([frames_u8(3, 20, 30, seed=3), np.full((3, 20, 30, 1), 77, np.uint8)], -1)
    path = write_clip(tmp_path / "alpha.mkv", rgba, pix_fmt="bgra", in_format="rgba")
    out = load_video(path)
    assert out.frames.shape[-1] == 3
    assert np.array_equal(as_u8(out.frames), rgba[..., :3])


@pytest.mark.parametrize("degrees,hflip,vflip", [(90, False, False), (-90, False, False), (180, False, False),
                                                 (0, True, False), (90, True, False), (270, False, True)])
def test_rotation_metadata_applied(tmp_path, degrees, hflip, vflip):
    src = frames_u8(2, 24, 40, seed=4)
    path = write_clip(tmp_path / "rot.mkv", src, rotation=(degrees, hflip, vflip))
    out = load_video(path, size_policy="crop_to_multiple_of_8")
    shown = np.rot90(src, degrees // 90, axes=(1, 2))  # the container's rotation is counter-clockwise
    if hflip:
        shown = shown[:, :, ::-1]
    if vflip:
        shown = shown[:, ::-1]
    assert np.array_equal(as_u8(out.frames), shown)
    assert (out.source_height, out.source_width) == shown.shape[1:3]


def test_orientation_of_plain_matrices():
    one = 1 << 16
    assert orientation_from_display_matrix(None).is_identity
    assert orientation_from_display_matrix(np.array([one, 0, 0, 0, one, 0, 0, 0, 1 << 30])).is_identity
    turn = orientation_from_display_matrix(np.array([0, -one, 0, one, 0, 0, 0, 0, 1 << 30]))
    assert turn.transpose and turn.flip_h and not turn.flip_w


def test_variable_frame_rate_reports_average(tmp_path):
    pts = [0, 30, 50, 120, 140, 150, 260, 300, 310, 400]  # milliseconds, irregular
    src = frames_u8(10, 16, 16, seed=5)
    path = write_clip(tmp_path / "vfr.mkv", src, fps=25, pts=pts, time_base=Fraction(1, 1000))
    out = load_video(path)
    assert out.frame_count == 10
    assert np.array_equal(as_u8(out.frames), src)
    with av.open(path) as c:
        assert out.fps == pytest.approx(float(c.streams.video[0].average_rate))
    assert 10 / 0.45 < out.fps < 10 / 0.35  # about frames / span, not the nominal 25 fps
    assert load_video(path, select_every_nth=2).fps == pytest.approx(out.fps / 2)


def test_audio_cut_to_selected_span(tmp_path):
    rate = 8000
    wave = (np.arange(2 * rate * 2, dtype=np.float32).reshape(2, -1) % 1000 / 1000 - 0.5)  # 2 s, stereo
    path = write_clip(tmp_path / "av.mkv", frames_u8(20, 16, 16), fps=10, audio=(wave, rate, "pcm_f32le"))
    assert probe_video(path).has_audio
    full = load_video(path)
    assert full.audio["sample_rate"] == rate and full.audio["waveform"].shape == (1, 2, 2 * rate)
    assert torch.equal(full.audio["waveform"][0], torch.from_numpy(wave))
    part = load_video(path, skip_first_frames=5, frame_load_cap=6)  # frames 5..10 -> 0.5 s .. 1.1 s
    got = part.audio["waveform"]
    assert got.shape == (1, 2, round(0.6 * rate))
    assert torch.equal(got[0], torch.from_numpy(wave[:, round(0.5 * rate):round(1.1 * rate)]))
    strided = load_video(path, select_every_nth=4)  # 5 frames at 2.5 fps: still the whole 2 s
    assert strided.audio["waveform"].shape[-1] == 2 * rate


def test_aac_audio_kept(tmp_path):
    rate = 16000
    t = np.arange(rate, dtype=np.float32) / rate
    wave = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 220 * t)]).astype(np.float32) * 0.5
    path = write_clip(tmp_path / "aac.mp4", frames_u8(10, 16, 16), codec="libx264", pix_fmt="yuv420p",
                      audio=(wave, rate, "aac"))
    out = load_video(path)
    audio = out.audio["waveform"]
    assert out.audio["sample_rate"] == rate and audio.shape[:2] == (1, 2)
    assert abs(audio.shape[-1] - rate) <= 1024  # one aac frame of slack
    assert 0.2 < float(audio[0, 0].pow(2).mean().sqrt()) < 0.5  # a 0.5-amplitude sine has RMS 0.35


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(VideoNotFoundError, match="not found"):
        load_video(str(tmp_path / "nope.mp4"))


def test_not_a_video(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    with pytest.raises(NotAVideoError, match="not a video file"):
        load_video(str(text))
    with pytest.raises(NotAVideoError, match="folder"):
        load_video(str(tmp_path))
    sound = tmp_path / "sound.wav"
    with av.open(str(sound), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        s.layout = "mono"
        f = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.float32), format="fltp", layout="mono")
        f.sample_rate = 8000
        c.mux(s.encode(f))
        c.mux(s.encode(None))
    with pytest.raises(NotAVideoError, match="no video stream"):
        load_video(str(sound))


@pytest.mark.parametrize("name,options", [("fast.mp4", {"movflags": "faststart"}), ("plain.mp4", {}),
                                          ("cut.mkv", {})])
def test_truncated(tmp_path, name, options):
    full = write_clip(tmp_path / f"full_{name}", frames_u8(30, 64, 64, seed=6), codec="libx264",
                      pix_fmt="yuv420p", options=options)
    data = open(full, "rb").read()
    cut = tmp_path / name
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(TruncatedVideoError, match="truncated"):
        load_video(str(cut))


def test_nothing_left_after_skip(tmp_path):
    path = write_clip(tmp_path / "short.mkv", frames_u8(5, 8, 8))
    with pytest.raises(NoFramesSelectedError, match="has 5 frames and skip_first_frames is 5"):
        load_video(path, skip_first_frames=5)


def test_memory_refusal(tmp_path):
    frame = tensor_bytes(1, 1080, 1920)
    with pytest.raises(VideoTooLargeError, match=r"About 10 frames would fit.*frame_load_cap.*select_every_nth"):
        check_memory(300, 1080, 1920, available=3 * 10 * frame + 2**30)
    assert check_memory(10, 1080, 1920, available=3 * 10 * frame + 2**30) == 10 * frame
    with pytest.raises(VideoTooLargeError, match="a third of the free RAM after 1 GiB"):
        check_memory(11, 1080, 1920, available=3 * 10 * frame + 2**30)
    path = write_clip(tmp_path / "mem.mkv", frames_u8(4, 8, 8))
    with pytest.raises(VideoTooLargeError, match="needs about"):
        load_video(path, available_bytes=0)


# ---------------------------------------------------------------- encoding


def smooth_frames(n: int, h: int, w: int) -> torch.Tensor:
    """Smooth moving colour gradients, the kind of content lossy codecs are built for."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([torch.stack([0.2 + 0.6 * x, 0.2 + 0.6 * y, 0.5 + 0.3 * torch.sin(6.28 * (x + t / n))], -1)
                        for t in range(n)]).float()


def test_png_sequence_exact_with_metadata(tmp_path):
    frames = torch.from_numpy(frames_u8(4, 11, 13, seed=7)).float() / 255
    meta = {"prompt": {"1": {"class_type": "X"}}, "workflow": {"nodes": []}}
    result = encode_video(frames, 8.0, str(tmp_path / "seq"), "png", metadata=meta)
    files = sorted(os.listdir(result.path))
    assert files == [f"frame_{i:05d}.png" for i in range(1, 5)]
    for i, name in enumerate(files):
        with av.open(os.path.join(result.path, name)) as c:
            img = next(c.decode(video=0)).to_ndarray(format="rgb24")
        assert np.array_equal(img, as_u8(frames[i]))
    head = open(os.path.join(result.path, files[0]), "rb").read()
    assert b"tEXtprompt\x00" + json.dumps(meta["prompt"]).encode() in head
    assert b"tEXtworkflow\x00" in head


@pytest.mark.parametrize("fmt,tol_mean", [("mp4", 0.01), ("webm", 0.01)])
def test_lossy_round_trip_with_audio_and_metadata(tmp_path, fmt, tol_mean):
    frames = smooth_frames(10, 32, 48)
    rate = 16000
    audio = {"waveform": torch.rand(1, 2, 3 * rate) - 0.5, "sample_rate": rate}  # 3 s for a 1 s video
    meta = {"prompt": {"3": {"inputs": {}}}, "workflow": {"v": 1}}
    result = encode_video(frames, 10.0, str(tmp_path / f"out.{fmt}"), fmt, crf=15, audio=audio, metadata=meta)
    assert result.notes == []
    back = load_video(result.path)
    assert back.frame_count == 10 and back.fps == pytest.approx(10.0)
    err = (back.frames - frames).abs()
    assert err.mean() < tol_mean and err.max() < 0.1
    expected_rate = 48000 if fmt == "webm" else rate
    assert back.audio["sample_rate"] == expected_rate
    assert abs(back.audio["waveform"].shape[-1] - expected_rate) <= 0.03 * expected_rate  # trimmed to 1 s
    with av.open(result.path) as c:
        tags = {k.lower(): v for k, v in c.metadata.items()}
    assert json.loads(tags["prompt"]) == meta["prompt"] and json.loads(tags["workflow"]) == meta["workflow"]


def test_odd_size_is_padded_by_edge_replication(tmp_path):
    # One flat colour per frame: padding by replication keeps the added row/column that colour
    # (zero padding would show a dark edge).
    colours = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.6, 0.8]])
    frames = colours[:, None, None, :].expand(2, 25, 33, 3).contiguous()
    result = encode_video(frames, 5.0, str(tmp_path / "odd.mp4"), "mp4", crf=0)
    assert (result.width, result.height) == (34, 26) and "padded to 34x26" in result.notes[0]
    back = load_video(result.path)
    assert tuple(back.frames.shape) == (2, 26, 34, 3)
    assert (back.frames - colours[:, None, None, :]).abs().max() < 0.02


def test_gif_near_exact_for_few_colours(tmp_path):
    src = np.kron(frames_u8(3, 4, 6, seed=9), np.ones((1, 4, 4, 1), np.uint8))  # 24 colours per frame
    frames = torch.from_numpy(src).float() / 255
    result = encode_video(frames, 10.0, str(tmp_path / "a.gif"), "gif",
                          audio={"waveform": torch.zeros(1, 1, 100), "sample_rate": 100})
    assert any("cannot carry audio" in n for n in result.notes)
    back = as_u8(load_video(result.path).frames).astype(int)
    assert np.abs(back - src).max() <= 1  # palettegen keeps at most one level of rounding


def test_fit_audio_trims_and_pads():
    wave = torch.arange(10.0).reshape(1, 1, 10)
    assert np.array_equal(fit_audio(wave, 10, frames=6, fps=10.0), np.arange(6.0)[None])
    assert np.array_equal(fit_audio(wave, 10, frames=12, fps=10.0), np.r_[np.arange(10.0), 0, 0][None])


def test_failed_encode_leaves_nothing(tmp_path):
    def boom(done, total):
        if done == 2:
            raise RuntimeError("interrupted")

    for fmt, name in (("mp4", "x.mp4"), ("png", "seq")):
        with pytest.raises(RuntimeError, match="interrupted"):
            encode_video(smooth_frames(4, 16, 16), 10.0, str(tmp_path / name), fmt, progress=boom)
    assert os.listdir(tmp_path) == []
    encode_video(smooth_frames(2, 16, 16), 10.0, str(tmp_path / "x.mp4"), "mp4")
    with pytest.raises(FileExistsError):
        encode_video(smooth_frames(2, 16, 16), 10.0, str(tmp_path / "x.mp4"), "mp4")
