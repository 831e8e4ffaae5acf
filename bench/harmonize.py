"""Frames per second of video harmonisation at 1080p, with and without the regressor.

Measures, on each available device (CPU, and CUDA when present):
- filters only (fixed arguments: the cost of restoring at full resolution),
- the Harmonizer path (regressor on a 256x256 copy + EMA + filters),
- Harmonize without weights (a pass-through copy),
- composition (alpha and Laplacian) of edited over original frames.
The regressor uses random weights (speed does not depend on their values), or
``--weights harmonizer.pth`` when given. The paper reports 56 fps at 1080p on a GPU.

    python -m bench.harmonize --frames 8 --chunk 4 [--size 1080x1920] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from drive_ops.composite.color_filters import apply_filters
from drive_ops.composite.compositing import composite_video
from drive_ops.composite.harmonize import harmonize_video, map_frames
from drive_ops.composite.harmonizer_model import build_harmonizer, load_state_dict_file, random_state_dict


def _clip(frames: int, height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    video = torch.rand(frames, height, width, 3, generator=gen)
    mask = torch.zeros(frames, height, width)
    mask[:, height // 4: 3 * height // 4, width // 3: 2 * width // 3] = 1.0
    return video.to(device), mask.to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _measure(fn, frames: int, device: torch.device, repeats: int) -> tuple[float, float]:
    """(frames per wall-clock second, CPU seconds per frame), best of ``repeats`` after a warm-up.

    The CPU seconds (all threads of this process) stay meaningful on a shared, busy machine
    where wall-clock fps mostly measures the neighbours.
    """
    fn()                                                       # warm-up (kernels, allocator)
    _sync(device)
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return frames / wall, cpu / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--size", default="1080x1920", help="HxW")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--weights", default=None, help="harmonizer.pth / .safetensors (default: random)")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    height, width = (int(v) for v in opts.size.split("x"))
    state = load_state_dict_file(opts.weights) if opts.weights else random_state_dict(0)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {opts.frames} frames of {width}x{height}, chunk {opts.chunk}, "
          f"{torch.get_num_threads()} CPU threads, best of {opts.repeats}")
    for device in devices:
        model = build_harmonizer(state).to(device)
        video, mask = _clip(opts.frames, height, width, device)
        edited = video.flip(-1)
        args = torch.tensor([[0.3, -0.2, 0.2, 0.1, -0.1, 0.1]], device=device).expand(opts.chunk, -1)

        def filters_only() -> None:
            map_frames(video, mask, lambda c, m, sl: apply_filters(c, m, args[: c.shape[0]]), device, opts.chunk)

        def regressor_only() -> None:
            for s in range(0, opts.frames, opts.chunk):
                chw = video[s:s + opts.chunk].movedim(-1, 1).contiguous()
                model.predict_arguments(chw, mask[s:s + opts.chunk].unsqueeze(1))

        rows = {
            "filters only (fixed arguments)": filters_only,
            "regressor only (256x256)": regressor_only,
            "Harmonizer: regressor + EMA + filters": lambda: harmonize_video(video, mask, model, device=device,
                                                                             chunk=opts.chunk),
            "pass-through (no weights)": lambda: harmonize_video(video, mask, None, device=device, chunk=opts.chunk),
            "composite, alpha, feather 4": lambda: composite_video(edited, video, mask, feather=4.0,
                                                                   chunk=opts.chunk),
            "composite, laplacian": lambda: composite_video(edited, video, mask, blend="laplacian",
                                                            chunk=opts.chunk),
        }
        print(f"\n[{device}]")
        for name, fn in rows.items():
            fps, cpu = _measure(fn, opts.frames, device, opts.repeats)
            print(f"  {name:40s} {fps:8.2f} fps  {cpu:7.3f} CPU-s/frame")


if __name__ == "__main__":
    main()
