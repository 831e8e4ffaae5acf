"""Overhead of DRIVE's masked-CFG sampler (RAVE grid + masked CFG patches inside comfy.sample) over bare UNet calls.

For 8/16/32 frames it times, per step, (a) the sampler on a patched clone with zero
noise, (b) bare ``diffusion_model`` calls on exactly the batches the sampler sends
(cond+uncond grids, the same chunks), (c) stock ComfyUI sampling (no patches) of
latents that are already tiled into the same grids (all grids in one call), and reports
the ratios a/b and a/c, plus the peak memory of a
sampler run above the level before it (bench.common.PeakMemory: allocated memory on
CUDA, sampled resident memory on the CPU). Random
weights; numbers are ratios measured in one run.

    COMFYUI_DIR=/path/to/ComfyUI python -m bench.sampler_overhead                 # CPU, tiny UNet, 64 px
    COMFYUI_DIR=... python -m bench.sampler_overhead --gpu --full --size 512      # SD1.5 at 512x512
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import PeakMemory
from tests.integration.comfy_inprocess import load_pack, random_model, start_comfy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="run on ComfyUI's torch device")
    parser.add_argument("--full", action="store_true", help="full-size SD1.5 UNet (random weights)")
    parser.add_argument("--size", type=int, default=64, help="frame size in pixels (latent = size/8)")
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--grid", type=int, default=3)
    parser.add_argument("--max-grids-per-call", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds (best of)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    parser.add_argument("--flow-shift", type=float, default=0.0,
                        help="> 0: make the model a flow-matching one with core's ModelSamplingSD3 at this shift "
                             "(CONST sampling, the pack's flow schedule and sampler)")
    opts = parser.parse_args()

    start_comfy(cpu=not opts.gpu)
    import comfy.model_management as mm
    import comfy.sample
    import comfy.samplers

    pack = load_pack()
    grid_wrapper, cfg_hook = pack("nodes.patches.grid_wrapper"), pack("nodes.patches.masked_cfg_hook")
    schedule = pack("drive_ops.diffusion.schedule")
    inversion, rave_grid = pack("drive_ops.diffusion.inversion"), pack("drive_ops.diffusion.rave_grid")
    chunking = pack("drive_ops.core.chunking")
    torch.set_num_threads(opts.threads)
    device = mm.get_torch_device()
    model = random_model(full=opts.full, device=device)
    if opts.flow_shift > 0:
        from comfy_extras.nodes_model_advanced import ModelSamplingSD3

        model = ModelSamplingSD3().patch(model, opts.flow_shift)[0]
    mm.load_models_gpu([model])
    unet = model.model.diffusion_model
    dtype = model.model_dtype()
    table = model.get_model_object("model_sampling").sigmas.float().cpu()
    sigmas = schedule.ddim_sampling_sigmas(table, opts.steps)
    sampler = comfy.samplers.KSAMPLER(inversion.sample_ddim)
    if opts.flow_shift > 0:
        sigmas = pack("nodes.patches.model_family").family_of(model).sampling_sigmas(opts.steps)
        sampler = pack("nodes.patches.samplers").ddim_sampler()
    g, lat = opts.grid, opts.size // 8
    pos = [[torch.randn(1, 77, 768), {}]]
    neg = [[torch.zeros(1, 77, 768), {}]]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    print(f"device {device}, {'SD1.5' if opts.full else 'tiny'} UNet"
          f"{f' as a flow model (shift {opts.flow_shift:g})' if opts.flow_shift > 0 else ''}, {opts.size}px frames, grid {g}, "
          f"{opts.steps} steps, max_grids_per_call {opts.max_grids_per_call}")
    print("frames | grids | sampler s/step | bare UNet s/step | ratio | stock s/step | ratio | peak memory MiB")
    for frames in opts.frames:
        latent = torch.randn(frames, 4, lat, lat)
        mask = torch.zeros(frames, opts.size, opts.size)
        mask[:, opts.size // 4: 3 * opts.size // 4, opts.size // 4: 3 * opts.size // 4] = 1.0
        patched = grid_wrapper.apply_grid_patch(model, g, True, 0, opts.max_grids_per_call)
        patched = cfg_hook.apply_masked_cfg_patch(patched, mask, -1.0, "nearest", 0.5)

        def run():
            return comfy.sample.sample_custom(patched, torch.zeros_like(latent), 7.5, sampler, sigmas, pos, neg,
                                              latent, disable_pbar=True, seed=0)

        n_grids = rave_grid.padded_length(frames, g) // (g * g)
        per_call = opts.max_grids_per_call if opts.max_grids_per_call > 0 else n_grids
        x = torch.randn(2 * n_grids, 4, g * lat, g * lat, device=device, dtype=dtype)
        context = torch.randn(2 * n_grids, 77, 768, device=device, dtype=dtype)
        t = torch.full((2 * n_grids,), 500.0, device=device, dtype=dtype)

        grid_latent = torch.randn(n_grids, 4, g * lat, g * lat)

        def stock():
            return comfy.sample.sample_custom(model, torch.zeros_like(grid_latent), 7.5, sampler, sigmas, pos, neg,
                                              grid_latent, disable_pbar=True, seed=0)

        def bare_steps():
            with torch.no_grad():
                for _ in range(opts.steps):
                    for part in chunking.chunk_slices(n_grids, per_call):
                        rows = torch.cat([torch.arange(n_grids)[part], n_grids + torch.arange(n_grids)[part]])
                        unet(x[rows], t[rows], context[rows])

        run()
        stock()
        bare_steps()
        with PeakMemory(device) as mem:
            run()
        peak = mem.peak
        sampler_step = bare = stock_step = float("inf")
        for _ in range(opts.repeats):  # interleaved, best of: shared machines are noisy
            sync()
            start = time.perf_counter()
            run()
            sync()
            sampler_step = min(sampler_step, (time.perf_counter() - start) / opts.steps)
            start = time.perf_counter()
            stock()
            sync()
            stock_step = min(stock_step, (time.perf_counter() - start) / opts.steps)
            start = time.perf_counter()
            bare_steps()
            sync()
            bare = min(bare, (time.perf_counter() - start) / opts.steps)
        print(f"{frames:6d} | {n_grids:5d} | {sampler_step:14.4f} | {bare:16.4f} | {sampler_step / bare:5.3f} | "
              f"{stock_step:12.4f} | {sampler_step / stock_step:5.3f} | {peak / 2 ** 20:10.1f}")


if __name__ == "__main__":
    main()
