"""Benchmark: DRIVE_SaveVideo's encoder against VideoHelperSuite's way of writing h264, interleaved.

Both encode the same float frames ``[T,H,W,3]`` (default 1080p, 120 frames: a real clip from
shared/data scaled to cover the size and cycled, or ``--synthetic`` moving texture) to h264
mp4 at the same crf (default 23, x264's default preset):

- ``drive``: ``drive_ops.video.encode.encode_video`` in this process (PyAV);
- ``vhs``: VideoHelperSuite's Video Combine pipeline for its ``video/h264-mp4`` format: each
  frame turned to bytes with numpy (``clip(x * 255 + 0.5)``) and piped as rgb24 rawvideo into
  an ffmpeg subprocess with VHS's arguments (BT.709 conversion, x264 at the crf). Its ffmpeg
  is imageio-ffmpeg's binary (what VHS uses when no system ffmpeg is set), or ``--ffmpeg``.

Rounds alternate the variants so drift on a shared machine hits both alike. Printed per
variant: best wall seconds, CPU seconds (this process's threads plus the ffmpeg child),
file size, and PSNR of the decoded file against the 8-bit source (each file decoded with
its own colour tags by PyAV); then the ratios drive / vhs.

    python -m bench.save_video [--frames 120] [--size 1920x1080] [--crf 23] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import subprocess
import tempfile
import time

import numpy as np
import torch

from bench.common import DATA


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads) and of its waited-for children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def source_frames(count: int, height: int, width: int, synthetic: bool) -> torch.Tensor:
    """``[count,H,W,3]`` float frames: wolf.mp4 scaled to cover ``W x H`` and cycled, or moving texture."""
    clip = DATA / "wolf.mp4"
    if synthetic or not clip.is_file():
        y, x = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                              indexing="ij")
        base = torch.rand(height // 8 + 1, width // 8 + 1, 3, generator=torch.Generator().manual_seed(0))
        texture = base.repeat_interleave(8, 0).repeat_interleave(8, 1)[:height, :width]
        return torch.stack([(texture * 0.3 + 0.35 + 0.3 * torch.sin((x + 6 * t) / 97 + y / 151)[..., None]) % 1.0
                            for t in range(count)])
    from drive_ops.core.frame_plan import apply_frame_plan
    from drive_ops.core.frame_plan_inverse import cover_plan
    from drive_ops.video.decode import load_video

    video = load_video(str(clip), with_audio=False).frames
    video = apply_frame_plan(video, cover_plan(video.shape[1], video.shape[2], height, width), mode="bilinear")
    return video[torch.arange(count) % video.shape[0]].contiguous()


def ffmpeg_binary(given: str | None) -> str:
    if given:
        return given
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        found = shutil.which("ffmpeg")
        if found:
            return found
    raise SystemExit("the VHS side needs an ffmpeg binary: pip install imageio-ffmpeg (into any folder on "
                     "PYTHONPATH, e.g. pip install --target /tmp/ff imageio-ffmpeg) or pass --ffmpeg PATH")


def encode_drive(frames: torch.Tensor, fps: float, crf: int, path: str, _ffmpeg: str) -> None:
    from drive_ops.video.encode import encode_video

    encode_video(frames, fps, path, "mp4", crf=crf)


def encode_vhs(frames: torch.Tensor, fps: float, crf: int, path: str, ffmpeg: str) -> None:
    """VHS's Video Combine for video/h264-mp4: numpy bytes per frame into ffmpeg's stdin, its arguments."""
    height, width = int(frames.shape[1]), int(frames.shape[2])
    args = [ffmpeg, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-color_range", "pc", "-colorspace", "rgb",
            "-color_primaries", "bt709", "-color_trc", "bt709", "-s", f"{width}x{height}", "-r", str(fps),
            "-i", "-", "-n", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf),
            "-vf", "scale=out_color_matrix=bt709", "-color_range", "tv", "-colorspace", "bt709",
            "-color_primaries", "bt709", "-color_trc", "bt709", path]
    with subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        for frame in frames:
            proc.stdin.write(np.clip(frame.cpu().numpy() * 255 + 0.5, 0, 255).astype(np.uint8).tobytes())
        proc.stdin.close()
        err = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"ffmpeg failed: {err.decode(errors='replace')}")


def psnr(path: str, frames: torch.Tensor) -> float:
    """PSNR (dB) of the decoded file against the 8-bit source, over every pixel of every frame."""
    import av

    from drive_ops.video.frame_bytes import PixelConverter

    convert = PixelConverter(int(frames.shape[1]), int(frames.shape[2]))
    total, count = 0.0, 0
    with av.open(path) as container:
        for i, decoded in enumerate(container.decode(video=0)):
            diff = decoded.to_ndarray(format="rgb24").astype(np.float32) - convert(frames[i]).astype(np.float32)
            total += float(np.square(diff).mean())
            count += 1
    if count != frames.shape[0]:
        raise SystemExit(f"{path} decodes to {count} frames, expected {frames.shape[0]}")
    return 10 * math.log10(255 ** 2 / (total / count))


VARIANTS = {"drive": encode_drive, "vhs": encode_vhs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT")
    parser.add_argument("--crf", type=int, default=23)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (best wall, its CPU)")
    parser.add_argument("--synthetic", action="store_true", help="moving texture instead of the real clip")
    parser.add_argument("--ffmpeg", help="ffmpeg binary for the VHS side (default: imageio-ffmpeg's)")
    opts = parser.parse_args()
    width, height = (int(v) for v in opts.size.lower().split("x"))
    ffmpeg = ffmpeg_binary(opts.ffmpeg)
    frames = source_frames(opts.frames, height, width, opts.synthetic)
    print(f"{opts.frames} frames {width}x{height}, h264 crf {opts.crf}, {os.cpu_count()} CPUs, "
          f"torch threads {torch.get_num_threads()}, ffmpeg {ffmpeg}")
    best: dict[str, tuple[float, float]] = {}
    sizes: dict[str, int] = {}
    quality: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(opts.repeats):
            for name, encode in VARIANTS.items():  # interleaved
                path = os.path.join(tmp, f"{name}_{round_}.mp4")
                start, start_cpu = time.perf_counter(), cpu_seconds()
                encode(frames, opts.fps, opts.crf, path, ffmpeg)
                wall, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
                print(f"  round {round_ + 1} {name:5s} wall {wall:7.2f} s  cpu {cpu:7.2f} s", flush=True)
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
                if name not in sizes:
                    sizes[name], quality[name] = os.path.getsize(path), psnr(path, frames)
                os.remove(path)
    print("variant | wall s | cpu s | fps | file MiB | PSNR dB")
    for name in VARIANTS:
        wall, cpu = best[name]
        print(f"{name:7s} | {wall:6.2f} | {cpu:5.2f} | {opts.frames / wall:5.1f} | {sizes[name] / 2**20:8.2f} | "
              f"{quality[name]:7.2f}")
    (dw, dc), (vw, vc) = best["drive"], best["vhs"]
    print(f"ratios drive/vhs: wall {dw / vw:.3f}, cpu {dc / vc:.3f}, file size {sizes['drive'] / sizes['vhs']:.3f}, "
          f"PSNR {quality['drive'] / quality['vhs']:.3f} (goal: wall <= 1, size and PSNR within 2%)")


if __name__ == "__main__":
    main()
