"""Seconds per frame and peak memory of Fill Background, vs resolution and frame count.

A synthetic pan over a textured background with a disc moving across it (the unit
tests' scene, scaled to the size), so every case has both recovered and never-seen
background. For each size and frame count it prints wall and CPU seconds per frame and
the peak memory the fill needs above the loaded clip, with and without its two outputs
(the filled copy and the unseen mask, ``T x H x W x 16`` bytes): what is left over is
the working set, which should stay flat in the frame count. The keyframe fill is
OpenCV's (the diffusion fill adds one sampling run per keyframe, whatever the clip length).

    python -m bench.fill [--sizes 512 1080] [--frames 30 120] [--device cpu] [--flow-quality auto]

:func:`seconds_per_frame` is the entry point other suites call.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import PeakMemory
from drive_ops.composite.fill_background import fill_background
from tests.fill_scenes import scaled_scene

SHAPES = {512: (512, 512), 1080: (1080, 1920)}


def seconds_per_frame(frames: torch.Tensor, mask: torch.Tensor, device: str = "cpu",
                      flow_quality: str = "auto") -> dict:
    """Run one fill of ``frames`` ``[T,H,W,3]`` / ``mask`` ``[T,H,W]``: wall and CPU seconds per frame, peak MiB.

    ``unseen_fraction`` is the invented (never seen) area over the object's mask area; the
    fill's hole is the mask grown by 4 px, so on small frames it can pass 100 %.
    """
    count = frames.shape[0]
    with PeakMemory(device) as memory:
        start, start_cpu = time.perf_counter(), time.process_time()
        out, unrecovered = fill_background(frames, mask, flow_quality=flow_quality, device=device)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    outputs = (out.numel() * out.element_size() + unrecovered.numel() * unrecovered.element_size()) / 2**20
    return {"frames": count, "wall_s_per_frame": wall / count, "cpu_s_per_frame": cpu / count,
            "peak_mib": memory.mib, "working_mib": memory.mib - outputs,
            "unseen_fraction": float(unrecovered.sum() / (mask > 0.5).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1080], choices=sorted(SHAPES))
    parser.add_argument("--frames", type=int, nargs="+", default=[30, 120])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--flow-quality", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"Fill Background on {args.device}, flow {args.flow_quality}, torch threads {torch.get_num_threads()}")
    print(f"{'size':>10} {'frames':>6} {'wall s/frame':>12} {'cpu s/frame':>11} {'peak MiB':>9} "
          f"{'working MiB':>11} {'unseen':>7}  (invented px / object px)")
    for size in args.sizes:
        height, width = SHAPES[size]
        for count in args.frames:
            scene = scaled_scene(count, height, width)
            frames, mask = scene.frames, scene.masks
            r = seconds_per_frame(frames, mask, args.device, args.flow_quality)
            print(f"{width}x{height:<5} {count:>6} {r['wall_s_per_frame']:>12.3f} {r['cpu_s_per_frame']:>11.3f} "
                  f"{r['peak_mib']:>9.0f} {r['working_mib']:>11.0f} {r['unseen_fraction']:>7.1%}", flush=True)
            del scene, frames, mask


if __name__ == "__main__":
    main()
