"""Cost of the nodes' finiteness check (drive_ops.core.validate) on a big IMAGE, next to the obvious alternatives.

Every node that takes an IMAGE or LATENT checks it once, so the check must be cheap:
one read of the tensor and no full-size temporary. Printed per method: wall seconds,
CPU seconds, GB/s and the peak memory above the clip, on a clip with no bad value (the
common case, where the whole tensor is read) and on one with a NaN in its last frame.

    python -m bench.finite_check [--frames 120] [--size 1080x1920] [--dtype float32] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import PeakMemory
from drive_ops.core.validate import non_finite_frames


def _isfinite_all(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all())


def _whole_sum(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x.sum(dtype=torch.float32)))


def _chunked_sums(x: torch.Tensor) -> bool:
    step = max(1, (1 << 26) // x[0].numel())
    dims = tuple(range(1, x.dim()))
    return all(bool(torch.isfinite(x[i:i + step].sum(dim=dims, dtype=torch.float32)).all())
               for i in range(0, x.shape[0], step))


METHODS = {
    "validate.non_finite_frames (aminmax)": lambda x: not non_finite_frames(x),
    "torch.isfinite(x).all()": _isfinite_all,
    "x.amax() and x.amin() finite (two passes)": lambda x: bool(torch.isfinite(x.amax()) & torch.isfinite(x.amin())),
    "x.sum(dtype=float32) finite": _whole_sum,
    "per-frame x.sum(dim, dtype=float32), 2^26-element chunks": _chunked_sums,
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", default="1080x1920", help="HxW")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.size.split("x"))
    device = torch.device(args.device)
    clip = torch.rand(args.frames, height, width, 3, generator=torch.Generator().manual_seed(0))
    clip = clip.to(device=device, dtype=getattr(torch, args.dtype))
    gb = clip.numel() * clip.element_size() / 1e9
    print(f"IMAGE {tuple(clip.shape)} {args.dtype} on {device}: {gb:.2f} GB, {torch.get_num_threads()} threads")
    print(f"{'method':58s} {'clip':>9s} {'wall s':>8s} {'cpu s':>8s} {'GB/s':>7s} {'peak MiB':>9s}")
    for case in ("all finite", "NaN in last frame"):
        if case != "all finite":
            clip[-1, height // 2, width // 2, 0] = float("nan")
        for name, method in METHODS.items():
            expected = case == "all finite"
            assert method(clip) == expected, (name, case)
            wall, cpu, peak = float("inf"), float("inf"), 0
            for _ in range(args.repeats):
                _sync(device)
                with PeakMemory(device) as mem:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    method(clip)
                    _sync(device)
                    wall = min(wall, time.perf_counter() - start)
                    cpu = min(cpu, time.process_time() - start_cpu)
                peak = max(peak, mem.peak)
            print(f"{name:58s} {case:>9.9s} {wall:8.3f} {cpu:8.3f} {gb / wall:7.2f} {peak / 2**20:9.1f}")


if __name__ == "__main__":
    main()
