"""Frames per second and peak memory of SAM2 tracking against the clip length.

SAM2 (tiny by default; ``--sizes tiny base_plus`` compares trunks; random weights, SAM 2.1 shapes) tracks a square sliding over 512x512 frames
from a box on frame 0, with and without offloading (video frames prepared on the CPU
on demand + tracker memory on the CPU). Each configuration runs in a fresh process;
its peak is the tracker's own memory above the level before tracking (bench.common's
probe: resident memory on the CPU, allocated memory on a GPU). The goal is memory flat
in T with offloading (old per-frame memories are pruned).

    python -m bench.tracking [--frames 8 16 32] [--image-size 512] [--device cpu|cuda] [--sizes tiny base_plus]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import REPO, PeakMemory


def _child(frames: int, offload: bool, image_size: int, device: str, size: str = "tiny") -> dict:
    import torch

    from drive_ops.masks.sam2_build import Sam2Variant, build_sam2_video_model
    from drive_ops.masks.tracking import track_masks

    torch.manual_seed(0)
    model = build_sam2_video_model(Sam2Variant("2.1", size), image_size=image_size).to(device)
    gen = torch.Generator().manual_seed(0)
    clip = torch.rand(frames, 512, 512, 3, generator=gen) * 0.3
    for t in range(frames):
        clip[t, 150:300, 50 + 8 * t:200 + 8 * t] = 0.9
    with PeakMemory(device) as mem:
        start = time.perf_counter()
        track_masks(model, clip, bboxes=[50, 150, 200, 300], offload_video_to_cpu=offload,
                    offload_state_to_cpu=offload)
        seconds = time.perf_counter() - start
    return {"size": size, "frames": frames, "offload": offload, "fps": frames / seconds, "seconds": seconds,
            "peak_mib": mem.mib, "clip_mib": clip.numel() * 4 / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--sizes", nargs="+", default=["tiny"], help="SAM 2.1 trunks: tiny small base_plus large")
    parser.add_argument("--offload", choices=("both", "off", "on"), default="both")
    parser.add_argument("--child", nargs=3, metavar=("FRAMES", "OFFLOAD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(_child(int(args.child[0]), args.child[1] == "1", args.image_size, args.device, args.child[2])))
        return
    print(f"SAM 2.1 (random weights), 512x512 frames, image_size {args.image_size}, device {args.device}")
    print(f"{'size':>9} {'frames':>6} {'offload':>7} {'fps':>6} {'peak MiB':>9} {'clip MiB':>8}   (peak: above the level before "
          f"tracking, {'allocated GPU' if args.device.startswith('cuda') else 'resident CPU'} memory)")
    offloads = {"both": (False, True), "off": (False,), "on": (True,)}[args.offload]
    for size, offload, frames in ((s, o, f) for s in args.sizes for o in offloads for f in args.frames):
        cmd = [sys.executable, "-m", "bench.tracking", "--child", str(frames), "1" if offload else "0", size,
               "--image-size", str(args.image_size), "--device", args.device, "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{r['size']:>9} {r['frames']:6d} {str(r['offload']):>7} {r['fps']:6.2f} {r['peak_mib']:9.0f} "
              f"{r['clip_mib']:8.0f}", flush=True)


if __name__ == "__main__":
    main()
