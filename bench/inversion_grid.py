"""Invert per frame or on grids? Reconstruction PSNR of Invert Video at grid 1 vs 2 (vs 3) on the test bed.

The main workflow inverts with ``grid_size`` 1 (RAVE and DRIVE invert frame by frame). This
measures the alternative on the trained test bed (``testbed/``) through the pack's own nodes in
an in-process ComfyUI: each held-out clip is VAE-encoded, inverted by Invert Video (empty
prompt, cfg 1) at each grid size, and sampled back by the Masked-CFG Sampler with the same
empty prompt at cfg 1 and no mask, either on the inversion's own layout (fixed grids, the
exact reverse path) or on the workflow's editing layout (shuffled grids). The test bed's
UNet was trained on single frames and 2x2 grids, so grid 2 is its RAVE grid; grid 3 is off
its training distribution and shown for reference. PSNR (dB, frames 0..1) is against the
autoencoder's own round trip, so it counts the inversion's error alone.

    COMFYUI_DIR=/path/to/ComfyUI python -m bench.inversion_grid [--clips 6 --frames 16 --steps 50]
"""

from __future__ import annotations

import argparse
import time

import torch

from drive_ops.evaluate.metrics import psnr
from tests.integration.comfy_inprocess import load_pack, start_comfy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=6, help="held-out test-bed clips")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="frame size (the test bed was trained at 64)")
    parser.add_argument("--steps", type=int, default=50, help="inversion = sampling steps (the workflow: 50)")
    parser.add_argument("--grids", type=int, nargs="+", default=[1, 2, 3], help="inversion grid sizes")
    parser.add_argument("--edit-grid", type=int, default=2, help="the editing layout's grid (test bed: 2)")
    parser.add_argument("--methods", nargs="+", default=["easyinv", "ddim"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    opts = parser.parse_args()

    start_comfy()
    torch.set_num_threads(opts.threads)
    from testbed import comfy_wrap, world

    pack = load_pack()
    invert, edit = pack("nodes.invert"), pack("nodes.edit")
    model, vae = comfy_wrap.testbed_model(), comfy_wrap.testbed_vae()
    empty = comfy_wrap.testbed_conditioning("")

    def invert_clip(latent: torch.Tensor, method: str, grid: int) -> dict:
        return invert.InvertVideo.execute(model=model, conditioning=empty, latent={"samples": latent},
                                          steps=opts.steps, method=method, eta=0.5, window_start=0.05,
                                          window_length=0.2, blend="after", cfg=1.0, grid_size=grid,
                                          max_grids_per_call=0).args[0]

    def sample_back(inverted: dict, grid: int, shuffle: bool) -> torch.Tensor:
        out = edit.MaskedCFGSampler.execute(model=model, positive=empty, negative=empty, latent=inverted,
                                            steps=opts.steps, cfg=1.0, cfg_start=-1.0, grid_size=grid,
                                            shuffle=shuffle, seed=0, max_grids_per_call=0, mask_mode="nearest",
                                            mask_threshold=0.5).args[0]
        return vae.decode(out["samples"]).float().clamp(0, 1)

    print(f"test bed, {opts.clips} held-out clips x {opts.frames} frames at {opts.size} px, {opts.steps} steps; "
          f"PSNR (dB) of the reconstruction vs the AE round trip, mean over clips [min, max]")
    print(f"{'method':8} {'invert grid':>11} {'own layout (fixed grids)':>26} "
          f"{f'edit layout (grid {opts.edit_grid}, shuffled)':>32} {'s/clip':>7}")
    seeds = world.heldout_seeds(opts.clips, 0)
    clips = [torch.from_numpy(world.make_clip(s, frames=opts.frames, size=opts.size).frames) for s in seeds]
    latents = [vae.encode(c) for c in clips]
    references = [vae.decode(z).float().clamp(0, 1) for z in latents]
    for method in opts.methods:
        for grid in opts.grids:
            own, shuffled, start = [], [], time.perf_counter()
            for latent, reference in zip(latents, references):
                inverted = invert_clip(latent, method, grid)
                own.append(float(psnr(reference, sample_back(inverted, grid, False)).mean()))
                shuffled.append(float(psnr(reference, sample_back(inverted, opts.edit_grid, True)).mean()))
            took = (time.perf_counter() - start) / len(latents)

            def cell(v: list[float]) -> str:
                return f"{sum(v) / len(v):6.2f} [{min(v):5.2f}, {max(v):5.2f}]"

            print(f"{method:8} {grid:>11} {cell(own):>26} {cell(shuffled):>32} {took:7.1f}", flush=True)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
