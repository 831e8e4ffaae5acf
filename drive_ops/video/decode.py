"""Decode a video file into one preallocated ``[T,H,W,3]`` float32 tensor, with PyAV.

The loader must not hold a clip twice: a 1080p float32 frame is ~25 MB, so a list of
frames stacked at the end would need twice the RAM of the result. Instead the file is
probed first (packets are demuxed, not decoded, to count frames), the memory of the output
is checked against what is available, and each decoded frame is converted and written
straight into its slot of the output tensor.

Orientation follows the container's display matrix (phones store portrait video as
landscape frames plus a rotation), so sizes and pixels are those a player shows.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
import numpy as np
import torch

from ..core.progress import Progress, notify
from ..core.frame_plan import FramePlan, apply_frame_plan, plan_frame_size

# The clip is not the last tensor of its size: ComfyUI keeps every node's output, and the
# nodes after the loader (VAE Decode, Composite Background, Harmonize) each hold frames of
# the same size. So the clip may take 1/PIPELINE_COPIES of the RAM left after a headroom for
# the interpreter, the models' CPU copies, the decoder and per-frame temporaries.
MEMORY_HEADROOM_BYTES = 2**30
PIPELINE_COPIES = 3

# File signatures of common video containers: a file that starts like one of these but
# that FFmpeg cannot open is a broken video (often an mp4 cut before its index), not a
# file of another kind.
_CONTAINER_SIGNATURES = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"GIF8"), (0, b"OggS"))


class VideoError(ValueError):
    """A video input the loader cannot turn into frames; the message names the fix."""


class VideoNotFoundError(VideoError):
    """The path does not exist."""


class NotAVideoError(VideoError):
    """The file is readable but holds no video stream FFmpeg understands."""


class TruncatedVideoError(VideoError):
    """The file is a video but ends early or is corrupt (decode errors, missing frames)."""


class NoFramesSelectedError(VideoError):
    """skip_first_frames / select_every_nth / frame_load_cap leave nothing to load."""


class VideoTooLargeError(VideoError):
    """The decoded clip would not fit in the available RAM."""


@dataclass(frozen=True)
class Orientation:
    """How a decoded frame maps onto the displayed picture: optional H<->W swap, then flips."""

    transpose: bool = False
    flip_h: bool = False
    flip_w: bool = False

    @property
    def is_identity(self) -> bool:
        return not (self.transpose or self.flip_h or self.flip_w)


@dataclass(frozen=True)
class VideoInfo:
    """What a probe learns without decoding the clip (sizes are as displayed, after rotation)."""

    path: str
    width: int
    height: int
    frame_count: int
    fps: float
    duration: float
    rotation: int
    orientation: Orientation
    bit_depth: int
    pix_fmt: str
    has_audio: bool
    start_time: float


@dataclass
class LoadedVideo:
    """The loader's result: frames ``[T,H,W,3]`` float32 in 0..1 and ComfyUI AUDIO (or None)."""

    frames: torch.Tensor
    audio: dict | None
    fps: float
    frame_count: int
    source_width: int
    source_height: int
    source_duration: float
    info: VideoInfo


def orientation_from_display_matrix(matrix: np.ndarray | None) -> Orientation:
    """Turn FFmpeg's 3x3 display matrix (16.16 fixed point, row-major) into an Orientation.

    The matrix maps a source pixel ``(x, y)`` (y pointing down) to ``(a*x + c*y, b*x + d*y)``
    on screen, so the source x axis lands on ``(a, b)`` and the y axis on ``(c, d)``. Only
    the eight axis-aligned cases exist in practice (rotations by 90 degrees and mirrors).
    """
    if matrix is None:
        return Orientation()
    a, b, c, d = (int(v) for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    if abs(a) >= abs(b):
        return Orientation(transpose=False, flip_w=a < 0, flip_h=d < 0)
    # Axes swap: the source x axis becomes the screen's vertical axis and y the horizontal one.
    return Orientation(transpose=True, flip_h=b < 0, flip_w=c < 0)


def orient_frame(frame: torch.Tensor, orientation: Orientation) -> torch.Tensor:
    """Apply an Orientation to one frame ``[H,W,C]``; equals ``torch.rot90`` for pure rotations."""
    if orientation.is_identity:
        return frame
    if orientation.transpose and orientation.flip_h != orientation.flip_w:
        # 90 degree turns: counter-clockwise when the top edge flips, clockwise otherwise.
        return torch.rot90(frame, 1 if orientation.flip_h else -1, dims=(0, 1))
    if not orientation.transpose and orientation.flip_h and orientation.flip_w:
        return torch.rot90(frame, 2, dims=(0, 1))
    out = frame.transpose(0, 1) if orientation.transpose else frame
    dims = [i for i, f in ((0, orientation.flip_h), (1, orientation.flip_w)) if f]
    return out.flip(dims) if dims else out


def file_fingerprint(path: str, block: int = 2**20) -> str:
    """What identifies a file's content cheaply: size, mtime and a hash of its first and last ``block`` bytes.

    mtime alone misses a file replaced by ``cp -p`` or ``rsync -t`` (they copy the old time
    over); the size and the hashed ends catch that while reading at most two MiB.
    """
    stat = os.stat(path)
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        digest.update(fh.read(block))
        if stat.st_size > block:
            fh.seek(max(block, stat.st_size - block))
            digest.update(fh.read(block))
    return f"{stat.st_size}:{stat.st_mtime_ns}:{digest.hexdigest()}"


def _display_matrix(frame) -> np.ndarray | None:
    for side in frame.side_data:
        if getattr(side.type, "name", str(side.type)).endswith("DISPLAYMATRIX"):
            return np.frombuffer(bytes(side), dtype="<i4")
    return None


def _looks_like_video_container(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    return any(head[off:off + len(sig)] == sig for off, sig in _CONTAINER_SIGNATURES)


def _open(path: str):
    """``av.open`` with the loader's errors: missing, not a video, or a broken video file."""
    import av

    if not os.path.exists(path):
        raise VideoNotFoundError(f"video file not found: {path}. Put the file in ComfyUI's input folder "
                                 "(or upload it) and pick it again.")
    if os.path.isdir(path):
        raise NotAVideoError(f"{path} is a folder, not a video file")
    if os.path.getsize(path) == 0:
        raise NotAVideoError(f"{os.path.basename(path)} is empty (0 bytes: an interrupted upload, download or copy); "
                             "copy or upload the file again")
    try:
        container = av.open(path, mode="r")
    except av.error.FFmpegError as err:
        if _looks_like_video_container(path):
            raise TruncatedVideoError(
                f"{os.path.basename(path)} looks like a video container but cannot be opened ({err}). It is "
                "probably truncated (an interrupted download, copy or recording: an mp4 cut off before its "
                "index). Copy or export the file again.") from err
        raise NotAVideoError(f"{os.path.basename(path)} is not a video file FFmpeg can read ({err}). "
                             "Pick an mp4, webm, mov, mkv, avi or gif file.") from err
    if not container.streams.video:
        container.close()
        raise NotAVideoError(f"{os.path.basename(path)} has no video stream (is it an audio or image file?). "
                             "Pick a video file.")
    return container


def _declared_duration(stream) -> float | None:
    """The video stream's duration as its header states it (mp4 track header, or Matroska's DURATION tag)."""
    if stream.duration:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            return None
    return None


def _high_bit_depth(frame) -> bool:
    return max(c.bits for c in frame.format.components) > 8


def probe_video(path: str) -> VideoInfo:
    """Read a video's size, frame count, rate, duration, rotation and audio, without decoding it.

    The frame count is the number of video packets (one per frame for every common codec),
    counted by demuxing; only the first frame is decoded, for its display matrix and bit depth.
    A container that lists more frames than it holds is reported as truncated.
    """
    import av

    container = _open(path)
    with container:
        stream = container.streams.video[0]
        has_audio = bool(container.streams.audio)
        header_frames = int(stream.frames or 0)
        packets, packets_end = 0, None
        try:
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
                    if packet.pts is not None:
                        end = packet.pts + (packet.duration or 0)
                        packets_end = end if packets_end is None else max(packets_end, end)
            container.seek(0)
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as err:
            raise TruncatedVideoError(f"{os.path.basename(path)} is corrupt or truncated ({err}); "
                                      "copy or export the file again.") from err
        if first is None or packets == 0:
            raise TruncatedVideoError(f"{os.path.basename(path)} has a video stream but no decodable frames; "
                                      "the file is empty or corrupt.")
        if header_frames > packets:
            raise TruncatedVideoError(
                f"{os.path.basename(path)} is truncated: its header lists {header_frames} frames but only "
                f"{packets} are in the file (an interrupted download, copy or recording?). Copy or export it again.")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        declared = _declared_duration(stream)
        if declared and packets_end is not None and rate:
            present = float(packets_end * stream.time_base) - start
            if present < 0.95 * declared - 2 / float(rate):
                raise TruncatedVideoError(
                    f"{os.path.basename(path)} is truncated: its header says the video lasts {declared:.2f} s but "
                    f"the frames in the file end at {present:.2f} s (an interrupted download, copy or recording?). "
                    "Copy or export it again.")
        if container.duration is not None:
            duration = container.duration / av.time_base
        elif stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = packets / float(rate) if rate else 0.0
        fps = float(rate) if rate else (packets / duration if duration > 0 else 0.0)
        if fps <= 0:
            raise NotAVideoError(f"{os.path.basename(path)} has no usable frame rate (a still image?)")
        matrix = _display_matrix(first)
        orientation = orientation_from_display_matrix(matrix)
        width, height = first.width, first.height
        if orientation.transpose:
            width, height = height, width
        return VideoInfo(path=path, width=width, height=height, frame_count=packets, fps=fps,
                         duration=float(duration), rotation=int(first.rotation) if matrix is not None else 0,
                         orientation=orientation, bit_depth=max(c.bits for c in first.format.components),
                         pix_fmt=first.format.name, has_audio=has_audio, start_time=start)


def selected_indices(frame_count: int, skip_first_frames: int = 0, select_every_nth: int = 1,
                     frame_load_cap: int = 0) -> range:
    """Source frame indices the loader keeps (``frame_load_cap`` 0 means no cap)."""
    if skip_first_frames < 0 or select_every_nth < 1 or frame_load_cap < 0:
        raise ValueError("skip_first_frames and frame_load_cap must be >= 0 and select_every_nth >= 1")
    picked = range(skip_first_frames, frame_count, select_every_nth)
    return picked[:frame_load_cap] if frame_load_cap else picked


def tensor_bytes(frames: int, height: int, width: int) -> int:
    """Bytes of a float32 ``[frames,height,width,3]`` tensor."""
    return frames * height * width * 3 * 4


def available_memory_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def clip_budget_bytes(available: int) -> int:
    """The most RAM a decoded clip may take: a third of what is left after the headroom (PIPELINE_COPIES)."""
    return max(0, available - MEMORY_HEADROOM_BYTES) // PIPELINE_COPIES


def check_memory(frames: int, height: int, width: int, available: int | None = None) -> int:
    """Refuse (VideoTooLargeError) when the clip would leave too little RAM for the pipeline; returns its bytes.

    The rule: the IMAGE tensor may use ``1/PIPELINE_COPIES`` of the available RAM after
    ``MEMORY_HEADROOM_BYTES``, since the nodes after the loader hold frames of the same size.
    """
    need = tensor_bytes(frames, height, width)
    if available is None:
        available = available_memory_bytes()
    budget = clip_budget_bytes(available)
    if need <= budget:
        return need
    fit = budget // tensor_bytes(1, height, width)
    gib = 2**30
    raise VideoTooLargeError(
        f"loading {frames} frames at {width}x{height} needs about {need / gib:.1f} GiB of RAM for the IMAGE "
        f"tensor, but {available / gib:.1f} GiB is available and a clip may use at most {budget / gib:.1f} GiB of "
        f"it: the nodes after Load Video keep frames of the same size (VAE Decode, Composite Background, "
        f"Harmonize), so the rule is a third of the free RAM after {MEMORY_HEADROOM_BYTES / gib:.0f} GiB for "
        f"models and temporaries. About {fit} frames would fit. Lower frame_load_cap (to {fit} or less), raise "
        "select_every_nth, or use size_policy 'fit_longer_side' with a smaller longer_side.")


def _write_frame(out: torch.Tensor, frame, high_bit: bool, orientation: Orientation, plan: FramePlan) -> None:
    """Convert one decoded frame and write it into ``out`` ``[H',W',3]`` (float32, 0..1)."""
    if high_bit:
        # 16-bit RGB keeps every bit of 10/12-bit sources; torch's uint16 support is thin, so widen.
        pixels = torch.from_numpy(frame.to_ndarray(format="rgb48le").astype(np.int32))
        scale = 65535.0
    else:
        pixels = torch.from_numpy(frame.to_ndarray(format="rgb24"))
        scale = 255.0
    pixels = orient_frame(pixels, orientation).unsqueeze(0)
    # resampling needs floats; a pure crop stays a view of the integer pixels
    pixels = apply_frame_plan(pixels.float() if plan.resizes else pixels, plan)[0]
    torch.div(pixels, scale, out=out)


def load_video(path: str, frame_load_cap: int = 0, skip_first_frames: int = 0, select_every_nth: int = 1,
               size_policy: str = "keep", longer_side: int = 512, with_audio: bool = True,
               progress: Progress | None = None,
               available_bytes: int | None = None) -> LoadedVideo:
    """Decode the selected frames of ``path`` into one ``[T,H,W,3]`` float32 tensor (plus audio).

    Frames are picked by index (``skip_first_frames``, then every ``select_every_nth``, at
    most ``frame_load_cap``; 0 = all), oriented as displayed, sized by ``size_policy``
    (see ``drive_ops.core.frame_plan``) and written into a tensor allocated once, after the
    memory check. ``fps`` is the source's average rate divided by the stride (variable
    frame rate sources are treated as constant at their average rate). ``progress(done,
    total)`` is called after every kept frame. Audio is cut to the kept span.
    """
    import av

    info = probe_video(path)
    picked = selected_indices(info.frame_count, skip_first_frames, select_every_nth, frame_load_cap)
    if len(picked) == 0:
        raise NoFramesSelectedError(
            f"no frames left to load: the video has {info.frame_count} frames and skip_first_frames is "
            f"{skip_first_frames}. Lower skip_first_frames below {info.frame_count}.")
    plan = plan_frame_size(info.height, info.width, size_policy, longer_side)  # on the upright size
    check_memory(len(picked), plan.out_h, plan.out_w, available_bytes)
    frames = torch.empty((len(picked), plan.out_h, plan.out_w, 3), dtype=torch.float32)

    written, index = 0, -1
    first_time = None
    wanted = picked[0]
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index != wanted:
                    continue
                if first_time is None:
                    first_time = float(frame.time) if frame.time is not None else index / info.fps
                _write_frame(frames[written], frame, _high_bit_depth(frame), info.orientation, plan)
                written += 1
                notify(progress, written, len(picked))
                if written == len(picked):
                    break
                wanted = picked[written]
        except av.error.FFmpegError as err:
            raise TruncatedVideoError(
                f"{os.path.basename(path)} is corrupt or truncated: decoding failed after {index} of "
                f"{info.frame_count} frames ({err}). Copy or export the file again, or set frame_load_cap "
                f"to {written} to load only the frames before the damage.") from err
    if written < len(picked):
        raise TruncatedVideoError(
            f"{os.path.basename(path)} is corrupt or truncated: the container holds {info.frame_count} frames "
            f"but only {index + 1} could be decoded. Copy or export the file again, or set frame_load_cap "
            f"to {written} to load only the frames that decode.")

    fps = info.fps / select_every_nth
    audio = None
    if with_audio and info.has_audio:
        audio = decode_audio(path, first_time, len(picked) / fps)
    return LoadedVideo(frames=frames, audio=audio, fps=fps, frame_count=len(picked), source_width=info.width,
                       source_height=info.height, source_duration=info.duration, info=info)


def decode_audio(path: str, start: float, duration: float) -> dict | None:
    """The first audio stream between ``start`` and ``start + duration`` seconds (stream time).

    Returns ComfyUI AUDIO ``{"waveform": [1,C,S] float32, "sample_rate": int}``, or None when
    the file has no audio or none of it falls in the span. Audio that begins after ``start``
    is padded with leading silence so it stays in sync with the frames.
    """
    import av

    with _open(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        rate = int(stream.rate or stream.codec_context.sample_rate)
        resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)
        begin = round(start * rate)
        end = begin + round(duration * rate)
        chunks: list[np.ndarray] = []
        cursor = None  # absolute sample index of the next decoded sample
        try:
            for frame in container.decode(stream):
                if cursor is None:
                    cursor = round(float(frame.time or 0.0) * rate)
                    if cursor > begin:
                        chunks.append(np.zeros((len(stream.layout.channels), cursor - begin), np.float32))
                for converted in resampler.resample(frame):
                    data = converted.to_ndarray()
                    lo, hi = max(begin - cursor, 0), min(end - cursor, data.shape[1])
                    if hi > lo:
                        chunks.append(data[:, lo:hi])
                    cursor += data.shape[1]
                if cursor >= end:
                    break
        except av.error.FFmpegError as err:
            raise TruncatedVideoError(f"the audio of {os.path.basename(path)} is corrupt or truncated ({err}); "
                                      "copy or export the file again.") from err
    if not chunks:
        return None
    waveform = torch.from_numpy(np.concatenate(chunks, axis=1).astype(np.float32, copy=False))
    return {"waveform": waveform.unsqueeze(0), "sample_rate": rate}

