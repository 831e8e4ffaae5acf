#!/usr/bin/env python3
"""UNet passes per step of the Masked-CFG Sampler with and without a `background` prompt (issue 24, item 3).

The main workflow wires the inversion conditioning (empty text + the Canny ControlNet) to the
sampler's `background`: the same content as the negative, in other objects. Three runs of the
one-box node on a tiny random UNet with a random ControlNet, ``--steps`` steps, every step guided:

- background not connected (negative drives the outside, as in DRIVE);
- background = the workflow's inversion conditioning: equal to the negative, distinct objects;
- background = another prompt (a real third prediction).

Printed: UNet passes per step (conditioning rows the UNet evaluated / frames / steps), seconds
per step, and the largest difference of the latents from the run without background.

    COMFYUI_DIR=/path/to/ComfyUI python -m bench.background_pass [--frames 4] [--steps 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from tests.integration.comfy_inprocess import (counting_unet_rows, load_pack, random_controlnet, random_model,
                                               start_comfy, through_controlnet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", type=int, default=64, help="frame size in pixels (latent = size/8)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    opts = parser.parse_args()

    start_comfy()

    pack = load_pack()
    edit, invert = pack("nodes.edit"), pack("nodes.invert")
    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    model, control = random_model(), random_controlnet()
    frames, lat = opts.frames, opts.size // 8
    gen = torch.Generator().manual_seed(0)
    latent = torch.randn(frames, 4, lat, lat, generator=gen)
    hint = torch.rand(frames, 3, opts.size, opts.size, generator=gen)
    empty, prompt, other = torch.zeros(1, 77, 768), torch.randn(1, 77, 768, generator=gen), torch.randn(1, 77, 768)

    def conditioning(text: torch.Tensor) -> list:
        return through_controlnet(control, hint, text)

    pos, neg = conditioning(prompt), conditioning(empty)
    mask = torch.zeros(1, opts.size, opts.size)
    mask[:, opts.size // 4: 3 * opts.size // 4, opts.size // 4: 3 * opts.size // 4] = 1.0
    inverted = invert.InvertVideo.execute(model, conditioning(empty), {"samples": latent}, opts.steps, "ddim", 0.5,
                                          0.05, 0.2, "after", 1.0, 1, 0).args[0]
    counted, rows = counting_unet_rows(model)

    def run(background: list | None) -> tuple[torch.Tensor, float, float]:
        rows[0] = 0
        start = time.perf_counter()
        out = edit.MaskedCFGSampler.execute(counted, pos, neg, inverted, opts.steps, 7.5, -1.0, 1, False, 0, 0,
                                            "nearest", 0.5, mask, background=background).args[0]["samples"]
        seconds = (time.perf_counter() - start) / opts.steps
        return out, rows[0] / frames / opts.steps, seconds

    run(None)                                                    # warm-up
    plain, passes, seconds = run(None)
    print(f"tiny UNet + ControlNet, {frames} frames of {opts.size}px, {opts.steps} steps, cfg 7.5 at every step")
    print(f"{'background':<44}{'passes/step':>12}{'s/step':>9}{'max |diff| vs none':>20}")
    print(f"{'not connected':<44}{passes:>12.2f}{seconds:>9.3f}{0.0:>20.2e}")
    for name, background in (("inversion conditioning (equal to negative)", conditioning(empty)),
                             ("another prompt", conditioning(other))):
        out, passes, seconds = run(background)
        print(f"{name:<44}{passes:>12.2f}{seconds:>9.3f}{float((out - plain).abs().max()):>20.2e}")


if __name__ == "__main__":
    main()
