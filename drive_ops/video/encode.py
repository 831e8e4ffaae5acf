"""Encode ``[T,H,W,3]`` frames (+ audio) to h264 mp4, vp9 webm, gif or a png sequence, with PyAV.

Everything is written under a temporary name and renamed into place at the end, so a
failed or interrupted encode never leaves a half-written file that looks finished.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import zlib
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np
import torch

from ..core.progress import Progress, notify
from .frame_bytes import PixelConverter, prefetch

FORMATS = ("mp4", "webm", "gif", "png")
# Container, video codec, pixel format and audio codec per format (None: no audio track).
_SPECS = {
    "mp4": ("mp4", "libx264", "yuv420p", "aac"),
    "webm": ("webm", "libvpx-vp9", "yuv420p", "libopus"),
    "gif": ("gif", "gif", "pal8", None),
}
_OPUS_RATE = 48000
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@dataclass
class EncodeResult:
    """Where the video went (a file, or a folder for png), and notes for the user."""

    path: str
    frames: int
    width: int
    height: int
    notes: list[str]


NTSC_TOLERANCE = 2.5e-4
"""Relative distance from n*1000/1001 within which a rate is taken for that NTSC rate; an
integer rate is 1e-3 away, so 24 and 23.976 never mix up, while 23.976 and 23.98 both match."""
GIF_MIN_DELAY_CS = 2
"""gif frame delays are whole 1/100 s, and browsers play delays under 2/100 s at 1/10 s."""
DEFAULT_NAME = "video"
DEFAULT_PREFIX = "DRIVE/video"


def video_rate(fps: float) -> Fraction:
    """The rational rate written for ``fps``: NTSC rates exactly (n*1000/1001, e.g. 24000/1001), else to 1/1000.

    The fps travels between nodes as a float (23.976023976...), so the NTSC rational is
    recovered here: 23.976 or 23.976023976 becomes 24000/1001, not 2997/125.
    """
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number, got {fps}")
    n = round(fps * 1.001)
    if n >= 1 and abs(fps - n * 1000 / 1001) <= NTSC_TOLERANCE * fps:
        return Fraction(n * 1000, 1001)
    rate = Fraction(round(fps * 1000), 1000)
    if rate == 0:
        raise ValueError(f"fps {fps} is too low to store; give at least 0.001")
    return rate


def gif_rate(fps: float) -> tuple[Fraction, str | None]:
    """The rate a gif is written at, and a note when it is not ``fps``.

    Up to 50 fps the muxer rounds each frame's time to 1/100 s, so the average rate holds
    (24 fps: delays of 4 and 5 hundredths). Faster clips are saved at 50 fps, the fastest
    rate browsers play (they slow 0- and 1-hundredth delays down to 1/10 s).
    """
    rate = video_rate(fps)
    if rate <= Fraction(100, GIF_MIN_DELAY_CS):
        return rate, None
    return Fraction(100, GIF_MIN_DELAY_CS), (
        f"gif frame delays are whole hundredths of a second and browsers play delays under "
        f"{GIF_MIN_DELAY_CS}/100 s at 1/10 s, so {fps:g} fps was saved at {100 / GIF_MIN_DELAY_CS:g} fps (the gif "
        "plays slower than the clip); use mp4 or webm to keep the rate")


def checked_prefix(prefix: str) -> tuple[str, str | None]:
    """``filename_prefix`` made safe to save under ComfyUI's output folder, and a note when it was changed.

    Refused (ValueError naming the fix): a non-string, a NUL or other control character
    (FFmpeg would cut the name at a NUL and write a hidden file), an absolute path, a path
    that climbs out with "..". An empty prefix, or one ending in a folder separator or in
    "." (ComfyUI would write the hidden file "._00001_.mp4"), gets the name "video".
    """
    if not isinstance(prefix, str):
        raise ValueError(f"filename_prefix must be text, got {type(prefix).__name__} {prefix!r:.60}")
    bad = next((i for i, ch in enumerate(prefix) if ord(ch) < 32 or ord(ch) == 127), None)
    if bad is not None:
        raise ValueError(f"filename_prefix {prefix!r} holds the control character {prefix[bad]!r} at position {bad}; "
                         "remove it (file names cannot hold NUL or control characters)")
    if not prefix.strip():
        return DEFAULT_PREFIX, f"filename_prefix is empty: saved as {DEFAULT_PREFIX}"
    if os.path.isabs(prefix) or prefix.startswith(("~", "\\")) or (len(prefix) > 1 and prefix[1] == ":"):
        raise ValueError(f"filename_prefix {prefix!r} is an absolute path; saving outside the output folder is not "
                         f"allowed: give a path inside ComfyUI's output folder, e.g. {DEFAULT_PREFIX}")
    norm = os.path.normpath(prefix.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        raise ValueError(f"filename_prefix {prefix!r} climbs out with '..'; saving outside the output folder is not "
                         f"allowed: give a path inside ComfyUI's output folder, e.g. {DEFAULT_PREFIX}")
    if norm == "." or prefix.endswith(("/", "\\")):
        fixed = DEFAULT_PREFIX if norm == "." else f"{norm}/{DEFAULT_NAME}"
        return fixed, f"filename_prefix {prefix!r} names a folder, not a file: saved as {fixed}"
    return prefix, None


def file_extension(fmt: str) -> str:
    """The file (or folder) suffix a format is saved under; png sequences are folders."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown video format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return "" if fmt == "png" else f".{fmt}"


def even_padding(height: int, width: int) -> tuple[int, int]:
    """Rows and columns to add so yuv420p (which halves chroma in both axes) can hold the frame."""
    return height % 2, width % 2


def fit_audio(waveform: torch.Tensor, sample_rate: int, frames: int, fps: float) -> np.ndarray:
    """Trim or zero-pad ``waveform`` ``[B,C,S]`` (first item) to the video's duration: ``[C,S']`` float32."""
    if waveform.dim() == 2:
        waveform = waveform.unsqueeze(0)
    if waveform.dim() != 3 or waveform.shape[1] < 1:
        raise ValueError(f"AUDIO waveform must be [B,C,S], got {tuple(waveform.shape)}")
    samples = math.ceil(frames / fps * sample_rate - 1e-9)
    data = waveform[0, :, :samples].float().cpu().numpy()
    if data.shape[1] < samples:
        data = np.pad(data, ((0, 0), (0, samples - data.shape[1])))
    return np.ascontiguousarray(data, dtype=np.float32)


def _metadata_strings(metadata: dict | None) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}


def _temp_path(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.partial-{os.getpid()}")


def remove_partial(path: str) -> None:
    """Remove what a failed write left at ``path``: a png-sequence folder or a file (nothing if absent)."""
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


def encode_video(frames: torch.Tensor, fps: float, path: str, fmt: str = "mp4", crf: int = 19,
                 audio: dict | None = None, metadata: dict | None = None,
                 progress: Progress | None = None) -> EncodeResult:
    """Write frames ``[T,H,W,C]`` (float 0..1) at ``fps`` to ``path``.

    - ``mp4``: h264 yuv420p at ``crf`` (0-51, lower is better), aac audio.
    - ``webm``: vp9 yuv420p at ``crf`` (0-63), opus audio.
    - ``gif``: palette gif, no audio.
    - ``png``: a folder ``path`` of ``frame_00001.png``... (8-bit RGB, lossless), no audio.

    Odd sizes are padded to even ones by repeating the edge pixels for mp4/webm (a note says
    so). Audio is trimmed or padded with silence to ``T / fps`` seconds. ``metadata`` (e.g.
    ``{"prompt": ..., "workflow": ...}``) is stored as JSON in the container tags, or as
    PNG text chunks in the first png. Nothing is left at ``path`` if encoding fails.
    """
    file_extension(fmt)
    if frames.dim() != 4 or frames.shape[0] == 0:
        raise ValueError(f"images must be a non-empty [T,H,W,C] batch, got {tuple(frames.shape)}")
    video_rate(fps)
    if "\0" in path:
        raise ValueError(f"the output path {path!r} holds a NUL byte; remove it from the file name")
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists; pick another filename_prefix")
    tmp = _temp_path(path)
    try:
        if fmt == "png":
            result = _write_png_sequence(frames, tmp, metadata, progress)
        else:
            result = _write_container(frames, fps, tmp, fmt, crf, audio, metadata, progress)
        os.replace(tmp, path)
    except BaseException:
        remove_partial(tmp)
        raise
    result.path = path
    if audio is not None and fmt in ("gif", "png"):
        result.notes.append(f"{fmt} cannot carry audio: the audio input was not saved")
    return result


def video_frames(frames: torch.Tensor, pix_fmt: str, pad_h: int = 0, pad_w: int = 0) -> Iterator:
    """``av.VideoFrame`` per frame of ``[T,H,W,C]`` in ``pix_fmt``, made in a thread ahead of the encoder.

    The float-to-byte conversion, the edge padding and the colour conversion (libswscale, as
    the encoder itself would do it) overlap with the encoding instead of preceding each frame.
    """
    import av

    height, width = int(frames.shape[1]), int(frames.shape[2])
    convert = PixelConverter(height, width, pad_h, pad_w)

    def make() -> Iterator:
        for i in range(frames.shape[0]):
            frame = av.VideoFrame.from_ndarray(convert(frames[i]), format="rgb24")
            yield frame if pix_fmt == "rgb24" else frame.reformat(format=pix_fmt)

    yield from prefetch(make())


def _write_container(frames: torch.Tensor, fps: float, path: str, fmt: str, crf: int, audio: dict | None,
                     metadata: dict | None, progress: Progress | None) -> EncodeResult:
    import av

    container_fmt, codec, pix_fmt, audio_codec = _SPECS[fmt]
    count, height, width = (int(s) for s in frames.shape[:3])
    pad_h, pad_w = even_padding(height, width) if pix_fmt == "yuv420p" else (0, 0)
    notes = []
    if pad_h or pad_w:
        notes.append(f"{width}x{height} is odd-sized; {fmt} (yuv420p) needs even sizes, so the video was padded "
                     f"to {width + pad_w}x{height + pad_h} by repeating the last column/row. Use even sizes "
                     "(or size_policy crop_to_multiple_of_8 on the loader) to avoid it.")
    options = {"movflags": "use_metadata_tags"} if fmt == "mp4" else {}
    rate, gif_note = gif_rate(fps) if fmt == "gif" else (video_rate(fps), None)
    if gif_note:
        notes.append(gif_note)
    with av.open(path, mode="w", format=container_fmt, options=options) as container:
        for key, value in _metadata_strings(metadata).items():
            container.metadata[key] = value
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width + pad_w, height + pad_h, pix_fmt
        if fmt == "mp4":
            stream.options = {"crf": str(crf)}
            stream.codec_context.thread_type = "FRAME"  # x264's frame threads (ffmpeg's default), not slices
        elif fmt == "webm":
            stream.bit_rate = 0
            stream.options = {"crf": str(crf), "row-mt": "1"}
        audio_stream = None
        if audio is not None and audio_codec is not None:
            sample_rate = int(audio["sample_rate"])
            samples = fit_audio(audio["waveform"], sample_rate, count, fps)
            audio_stream = container.add_stream(audio_codec, rate=_OPUS_RATE if fmt == "webm" else sample_rate)
            layout = _LAYOUTS.get(samples.shape[0])
            if layout is None:
                raise ValueError(f"audio with {samples.shape[0]} channels is not supported (1 to 8)")
            audio_stream.layout = layout
        palette = _GifPalette(width, height, rate) if fmt == "gif" else None
        with closing(video_frames(frames, "rgb24" if palette else pix_fmt, pad_h, pad_w)) as ahead:
            for i, frame in enumerate(ahead):
                frame.pts, frame.time_base = i, 1 / rate
                for out in palette.push(frame) if palette else [frame]:
                    container.mux(stream.encode(out))
                notify(progress, i + 1, count)
        for out in palette.push(None) if palette else []:
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))
        if audio_stream is not None:
            chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout=audio_stream.layout.name)
            chunk.sample_rate, chunk.pts = sample_rate, 0
            container.mux(audio_stream.encode(chunk))
            container.mux(audio_stream.encode(None))
    return EncodeResult(path=path, frames=count, width=width + pad_w, height=height + pad_h, notes=notes)


class _GifPalette:
    """FFmpeg's palettegen + paletteuse per frame: each gif frame gets its own 256-colour palette.

    A frame with at most 256 colours round-trips exactly; others are dithered (sierra2_4a).
    """

    def __init__(self, width: int, height: int, rate: Fraction):
        import av

        self._graph = av.filter.Graph()
        source = self._graph.add_buffer(width=width, height=height, format="rgb24", time_base=1 / rate)
        split = self._graph.add("split")
        generate = self._graph.add("palettegen", "stats_mode=single:reserve_transparent=0")
        use = self._graph.add("paletteuse", "new=1:dither=sierra2_4a")
        sink = self._graph.add("buffersink")
        source.link_to(split)
        split.link_to(generate, 0, 0)
        split.link_to(use, 1, 0)
        generate.link_to(use, 0, 1)
        use.link_to(sink)
        self._graph.configure()

    def push(self, frame) -> list:
        """Feed one rgb24 frame (None to flush); returns the pal8 frames that are ready."""
        import av

        self._graph.push(frame)
        ready = []
        while True:
            try:
                ready.append(self._graph.pull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return ready


def _png_text_chunk(key: str, text: str) -> bytes:
    body = key.encode("latin-1") + b"\0" + text.encode("latin-1", "replace")
    return struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))


def _with_text_chunks(png: bytes, metadata: dict[str, str]) -> bytes:
    """Insert tEXt chunks after IHDR (8-byte signature + 25-byte IHDR chunk), as ComfyUI's SaveImage stores them."""
    cut = 8 + 25
    return png[:cut] + b"".join(_png_text_chunk(k, v) for k, v in metadata.items()) + png[cut:]


def png_frame_name(index: int) -> str:
    """File name of frame ``index`` (0-based) in a png sequence folder."""
    return f"frame_{index + 1:05d}.png"


def _write_png_sequence(frames: torch.Tensor, folder: str, metadata: dict | None,
                        progress: Progress | None) -> EncodeResult:
    import av

    os.makedirs(folder)
    count, height, width = (int(s) for s in frames.shape[:3])
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "rgb24"
    text = _metadata_strings(metadata)
    with closing(video_frames(frames, "rgb24")) as ahead:
        for i, frame in enumerate(ahead):
            data = b"".join(bytes(p) for p in codec.encode(frame))
            if i == 0 and text:
                data = _with_text_chunks(data, text)
            with open(os.path.join(folder, png_frame_name(i)), "wb") as fh:
                fh.write(data)
            notify(progress, i + 1, count)
    return EncodeResult(path=folder, frames=count, width=width, height=height, notes=[])
