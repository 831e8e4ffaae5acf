"""max_grids_per_call: time per step and peak memory of the Masked-CFG Sampler for 1, 2 and auto (0) grids per call.

For each frame size, the sampler (grid 3, shuffle, a centre mask, cfg 7.5) runs at every
setting in interleaved rounds; printed per setting: the grids per UNet call the wrapper
chose (auto: the largest chunk whose ComfyUI memory estimate, x1.5, fits the free memory),
seconds per step (best of the rounds), the peak memory of a run above the level before it
(bench.common.PeakMemory: allocated memory on CUDA, sampled resident memory on the CPU) and
time and memory relative to auto. Random weights.

    COMFYUI_DIR=/path/to/ComfyUI python -m bench.grid_chunking [--full] [--sizes 64 128] [--frames 36]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import PeakMemory
from tests.integration.comfy_inprocess import load_pack, random_model, start_comfy

SETTINGS = (1, 2, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="run on ComfyUI's torch device")
    parser.add_argument("--full", action="store_true", help="full-size SD1.5 UNet (random weights)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="frame sizes in pixels")
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--grid", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved timing rounds (best of)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    opts = parser.parse_args()

    start_comfy(cpu=not opts.gpu)
    import comfy.model_management as mm

    pack = load_pack()
    edit, rave_grid = pack("nodes.edit"), pack("drive_ops.diffusion.rave_grid")
    torch.set_num_threads(opts.threads)
    device = mm.get_torch_device()
    model = random_model(full=opts.full, device=device)
    positive = [[torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(1)), {}]]
    negative = [[torch.zeros(1, 77, 768), {}]]
    n_grids = rave_grid.padded_length(opts.frames, opts.grid) // opts.grid ** 2
    print(f"device {device}, {'SD1.5' if opts.full else 'tiny'} UNet, {opts.frames} frames = {n_grids} grids of "
          f"{opts.grid}x{opts.grid}, cfg 7.5 with a mask, {opts.steps} steps, best of {opts.repeats}")
    print("size px | max_grids_per_call | grids per call | s/step | peak MiB | time vs auto | memory vs auto")
    for size in opts.sizes:
        latent = {"samples": torch.randn(opts.frames, 4, size // 8, size // 8,
                                         generator=torch.Generator().manual_seed(0))}
        mask = torch.zeros(opts.frames, size, size)
        mask[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1.0
        batches: list[int] = []

        def unet(apply_model, a):
            batches.append(int(a["input"].shape[0]))
            return apply_model(a["input"], a["timestep"], **a["c"])

        watched = model.clone()
        watched.set_model_unet_function_wrapper(unet)

        def run(per_call: int) -> None:
            edit.MaskedCFGSampler.execute(watched, positive, negative, latent, opts.steps, 7.5, -1.0, opts.grid, True,
                                          0, per_call, "nearest", 0.5, mask)

        def sync():
            if device.type == "cuda":
                torch.cuda.synchronize()

        chunk, peak, best = {}, {}, {k: float("inf") for k in SETTINGS}
        for per_call in SETTINGS:  # warm-up, the chosen chunk (cond and uncond share a call) and the memory
            batches.clear()
            run(per_call)
            chunk[per_call] = max(batches) // 2
            sync()
            with PeakMemory(device) as mem:
                run(per_call)
            peak[per_call] = mem.peak
        for _ in range(opts.repeats):
            for per_call in SETTINGS:  # interleaved
                sync()
                start = time.perf_counter()
                run(per_call)
                sync()
                best[per_call] = min(best[per_call], (time.perf_counter() - start) / opts.steps)
        for per_call in SETTINGS:
            name = "0 (auto)" if per_call == 0 else str(per_call)
            print(f"{size:7d} | {name:18s} | {chunk[per_call]:14d} | {best[per_call]:6.3f} | "
                  f"{peak[per_call] / 2**20:8.1f} | {best[per_call] / best[0]:12.2f} | "
                  f"{peak[per_call] / max(peak[0], 1):14.2f}")


if __name__ == "__main__":
    main()
