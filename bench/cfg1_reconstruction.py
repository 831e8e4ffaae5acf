"""Reconstruction at cfg 1: the Masked-CFG Sampler's time per step against core KSamplerAdvanced, interleaved.

The ``inversion_roundtrip`` workflow samples the inverted latents back with the inversion
prompt on both inputs at cfg 1. Core KSamplerAdvanced then runs one UNet pass per step
(ComfyUI's cfg-1 shortcut). Variants, all on the same model, latents and steps:

- ``ksampler_advanced``: core KSamplerAdvanced (ddim / ddim_uniform, no added noise);
- ``drive_same_prompt``: Masked-CFG Sampler (DRIVE), one prompt wired to both inputs (the workflow);
- ``drive_no_mask``: the same with a separate (empty) negative and no mask, cfg_start 0: the
  gate keeps the shortcut except at the unguided first step;
- ``drive_shortcut_off``: that run with ``disable_cfg1_optimization`` forced on the MODEL, i.e.
  what the pack did before the gate (two passes at every step).

Prints the UNet passes per step each variant runs (batch rows / frames), wall and CPU seconds
per step (best of ``--repeats`` interleaved rounds; on one thread CPU seconds are the steadier
measure on a busy machine) and their ratios to KSamplerAdvanced. Random weights: only the
timing means anything.

    COMFYUI_DIR=/path/to/ComfyUI python -m bench.cfg1_reconstruction [--full] [--size 64] [--frames 8]
"""

from __future__ import annotations

import argparse
import time

import torch

from tests.integration.comfy_inprocess import load_pack, random_model, start_comfy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="run on ComfyUI's torch device")
    parser.add_argument("--full", action="store_true", help="full-size SD1.5 UNet (random weights)")
    parser.add_argument("--size", type=int, default=64, help="frame size in pixels (latent = size/8)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds (best of)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    opts = parser.parse_args()

    start_comfy(cpu=not opts.gpu)
    import comfy.model_management as mm
    import nodes as core_nodes

    edit = load_pack()("nodes.edit")
    torch.set_num_threads(opts.threads)
    device = mm.get_torch_device()
    model = random_model(full=opts.full, device=device)
    latent = {"samples": torch.randn(opts.frames, 4, opts.size // 8, opts.size // 8,
                                     generator=torch.Generator().manual_seed(0))}
    prompt = [[torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(1)), {}]]
    empty = [[torch.zeros(1, 77, 768), {}]]
    rows: list[int] = []

    def count_rows(apply_model, a):
        rows.append(int(a["input"].shape[0]))
        return apply_model(a["input"], a["timestep"], **a["c"])

    model.set_model_unet_function_wrapper(count_rows)
    forced = model.clone()
    forced.model_options["disable_cfg1_optimization"] = True

    def drive(m, negative):
        return lambda: edit.MaskedCFGSampler.execute(m, prompt, negative, latent, opts.steps, 1.0, 0.0, 1, False, 0, 0,
                                                     "nearest", 0.5)

    variants = {
        "ksampler_advanced": lambda: core_nodes.KSamplerAdvanced().sample(
            model, "disable", 0, opts.steps, 1.0, "ddim", "ddim_uniform", prompt, prompt, latent, 0, 10000, "disable"),
        "drive_same_prompt": drive(model, prompt),
        "drive_no_mask": drive(model, empty),
        "drive_shortcut_off": drive(forced, empty),
    }

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    passes = {}
    for name, run in variants.items():  # warm-up (model load, kernels) and the UNet rows each variant sends
        rows.clear()
        run()
        passes[name] = sum(rows) / (opts.frames * opts.steps)
    best = {name: float("inf") for name in variants}
    best_cpu = dict(best)
    for _ in range(opts.repeats):
        for name, run in variants.items():  # interleaved: drift on a shared machine hits every variant alike
            sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            sync()
            best[name] = min(best[name], (time.perf_counter() - start) / opts.steps)
            best_cpu[name] = min(best_cpu[name], (time.process_time() - start_cpu) / opts.steps)
    print(f"device {device}, {'SD1.5' if opts.full else 'tiny'} UNet, {opts.frames} frames {opts.size}px, "
          f"{opts.steps} steps, cfg 1, best of {opts.repeats}, {opts.threads} thread(s)")
    print("variant            | UNet passes/step | s/step | ratio | CPU s/step | ratio  (ratios to KSamplerAdvanced)")
    for name in variants:
        print(f"{name:18s} | {passes[name]:16.2f} | {best[name]:6.3f} | {best[name] / best['ksampler_advanced']:5.3f} | "
              f"{best_cpu[name]:10.3f} | {best_cpu[name] / best_cpu['ksampler_advanced']:5.3f}")


if __name__ == "__main__":
    main()
