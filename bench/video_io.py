"""Benchmark: DRIVE_LoadVideo's streaming decoder against decode-to-list-then-stack.

Makes a synthetic clip with PyAV (default 1080p, 300 frames, h264) in a temp folder, then
decodes it in fresh subprocesses and reports wall seconds and the peak memory of the
decode above the level before it (bench.common.PeakMemory: sampled resident memory), so
the numbers are about the frames, not the interpreter and its imports:

- ``baseline``: every frame to a float32 tensor in a list, then ``torch.stack`` (what
  ComfyUI's core VideoFromFile does), with the same decoder threading as ours;
- ``drive``: ``drive_ops.video.decode.load_video`` (probe, memory check, one preallocated
  tensor).

Goal: drive's peak within 1.1x of the output tensor; not slower than the baseline. The
baseline needs about twice the tensor in RAM; if that is more than ``--ram-fraction`` of
the free RAM, the frame count is lowered to fit (and the script says so).

    python -m bench.video_io [--frames 300] [--width 1920] [--height 1080] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from bench.common import REPO, PeakMemory


def make_clip(path: str, frames: int, width: int, height: int, fps: int = 30) -> None:
    """Moving colour gradients with some texture, encoded as h264 yuv420p."""
    import av
    import numpy as np

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    noise = np.random.default_rng(0).integers(0, 24, (height, width), dtype=np.uint8)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for t in range(frames):
            r = ((x + 8 * t) % 256).astype(np.uint8)
            g = ((y + 4 * t) % 256).astype(np.uint8)
            b = (((x + y) / 2 + 6 * t) % 256).astype(np.uint8) ^ noise
            img = np.stack([r, g, b], -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        container.mux(stream.encode(None))


def child(variant: str, path: str) -> None:
    """Runs in a fresh interpreter: decode one way and print seconds, peak memory above the start and the shape."""
    import av
    import torch

    from drive_ops.video.decode import load_video

    with PeakMemory("cpu") as mem:
        start = time.perf_counter()
        if variant == "baseline":
            frames = []
            with av.open(path) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")).float() / 255)
            out = torch.stack(frames)
            del frames
        elif variant == "drive":
            out = load_video(path, size_policy="keep", with_audio=False).frames
        else:
            raise SystemExit(f"unknown variant {variant}")
        seconds = time.perf_counter() - start
    print(json.dumps({"variant": variant, "seconds": seconds, "peak": mem.peak, "shape": tuple(out.shape)}))


def run_child(variant: str, path: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.video_io", "--child", variant, path],
                          capture_output=True, text=True, check=False, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (min time, max RSS)")
    parser.add_argument("--ram-fraction", type=float, default=0.5,
                        help="most of the free RAM the baseline may take (leave room on a shared machine)")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    import psutil

    frame_bytes = args.width * args.height * 3 * 4
    frames = args.frames
    free = psutil.virtual_memory().available
    fit = int(args.ram_fraction * free / (2.2 * frame_bytes))  # the baseline holds ~2 copies
    if fit < frames:
        print(f"note: the baseline at {frames} frames would need more than {args.ram_fraction:.0%} of the "
              f"{free / 2**30:.1f} GiB free RAM; using {fit} frames")
        frames = fit
    tensor = frames * frame_bytes
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.mp4")
        t0 = time.perf_counter()
        make_clip(path, frames, args.width, args.height)
        print(f"clip: {frames} frames {args.width}x{args.height} h264, {os.path.getsize(path) / 2**20:.1f} MiB, "
              f"made in {time.perf_counter() - t0:.1f} s; output tensor {tensor / 2**30:.2f} GiB")
        results: dict[str, list[dict]] = {"baseline": [], "drive": []}
        for _ in range(args.repeats):
            for variant in results:  # interleaved, so drift hits both sides alike
                results[variant].append(run_child(variant, path))
    summary = {}
    for variant in ("baseline", "drive"):
        seconds = min(r["seconds"] for r in results[variant])
        peak = max(r["peak"] for r in results[variant])
        summary[variant] = (seconds, peak)
        print(f"{variant:9s} {seconds:7.2f} s  peak memory of the decode {peak / 2**30:6.2f} GiB = "
              f"{peak / tensor:.3f}x the tensor  shape {tuple(results[variant][0]['shape'])}")
    (b_sec, b_mem), (d_sec, d_mem) = summary["baseline"], summary["drive"]
    print(f"ratios drive/baseline: time {d_sec / b_sec:.3f}, peak memory {d_mem / b_mem:.3f}; "
          f"drive peak / tensor = {d_mem / tensor:.3f} (goal <= 1.1)")


if __name__ == "__main__":
    main()
