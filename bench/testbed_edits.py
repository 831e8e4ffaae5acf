#!/usr/bin/env python3
"""Edit-quality table of the engine's main path on the trained test bed (issue 16's model).

    python -m bench.testbed_edits [--clips 3] [--frames 8] [--steps 20] [--threads 1]

Each held-out one-object clip of the test bed's world is edited to the same scene with the
object in another colour ("a red ball on ..." -> "a green ball on ..."): EasyInv inversion
with the empty prompt, then DRIVE's step model (drive_ops.diffusion.masked_cfg.guided_denoiser:
RAVE grid 2 with shuffle, mask-guided CFG 7.5, cfg_start 0), the functions the nodes
compose. Columns: background PSNR outside the object's mask grown by 7 px against the
autoencoder's round trip (before compositing: the sampler's own leakage), edit success
(share of frames whose object the test bed's judge names in the target colour) and warp
error (x1e-3: MSE of frame t+1 against frame t warped by the source clip's flow).

Rows: DRIVE as published (empty negative prompt); a real negative prompt (a caption of an
unrelated scene: other object, other background), which in DRIVE also drives the area
outside the mask; the same with the `background` prompt set to the inversion prompt; a
partial edit (denoise 0.6). A row needing a feature this checkout lacks is printed as
absent, so the same script measures an older commit.
"""

from __future__ import annotations

import argparse
import inspect
import time

import torch

from drive_ops.diffusion import inversion, masked_cfg, schedule
from drive_ops.evaluate.metrics import background_preservation, source_flows, warp_error
from testbed import judge, world
from testbed.load import load_testbed

ROWS = [  # name, negative prompt ("unrelated" = an unrelated scene's caption), background prompt, denoise
    ("DRIVE: negative ''", "", None, 1.0),
    ("negative: unrelated scene", "unrelated", None, 1.0),
    ("  + background ''", "unrelated", "", 1.0),
    ("partial edit, denoise 0.6", "", None, 0.6),
]


def supports(background: bool, partial: bool) -> bool:
    """Whether this checkout's drive_ops has what a row needs."""
    return (not background or "background" in inspect.signature(masked_cfg.guided_denoiser).parameters) and (
        not partial or "denoise" in inspect.signature(schedule.ddim_sampling_sigmas).parameters)


def other(options, *taken: str) -> str:
    return next(o for o in options if o not in taken)


def prompts(clip) -> tuple[str, str, str]:
    """(target colour, edit prompt, an unrelated scene's caption) for a one-object clip."""
    obj, bg = clip.objects[0], clip.scene.background
    colour = other(world.OBJECT_COLOURS, obj.colour, bg.colour)
    unrelated_bg = other(world.BACKGROUND_COLOURS, bg.colour)
    unrelated = world.caption_for([(other(world.OBJECT_COLOURS, obj.colour, colour, unrelated_bg),
                                    other(world.SHAPES, obj.shape))], unrelated_bg, other(world.TEXTURES, bg.texture))
    return colour, clip.scene.replace_object(0, colour=colour).caption, unrelated


class ClipRun:
    """One clip's latents, round trip, flows and inversions (shared by the rows)."""

    def __init__(self, tb, clip, steps: int):
        self.tb, self.clip, self.steps = tb, clip, steps
        self.frames = torch.from_numpy(clip.frames)
        self.mask = torch.from_numpy(clip.masks[0]).float()
        self.z0 = tb.encode(self.frames) * tb.latent_scale
        self.roundtrip = tb.decode(self.z0 / tb.latent_scale)
        self.flows = source_flows(self.frames)
        self.noise: dict[float, torch.Tensor] = {}

    def inverted(self, denoise: float) -> torch.Tensor:
        if denoise not in self.noise:
            partial = {} if denoise == 1.0 else {"denoise": denoise}
            window = {} if denoise == 1.0 else {"schedule_steps": self.steps}
            sigmas = schedule.ddim_inversion_sigmas(self.tb.sigmas, self.steps, **partial)
            self.noise[denoise] = inversion.sample_easyinv(self.tb.denoiser(self.tb.text_context("")[0]), self.z0,
                                                           sigmas, **window)
        return self.noise[denoise]

    def edit(self, negative: str, background: str | None, denoise: float) -> dict:
        tb = self.tb
        colour, prompt, unrelated = prompts(self.clip)
        partial = {} if denoise == 1.0 else {"denoise": denoise}
        extra = {} if denoise == 1.0 else {"schedule_steps": self.steps}
        sigmas = schedule.ddim_sampling_sigmas(tb.sigmas, self.steps, **partial)
        texts = [prompt, unrelated if negative == "unrelated" else negative]
        if background is not None:
            texts.append(background)
            extra["background"] = True
        branches = [tb.denoiser(tb.text_context(t)[0]) for t in texts]
        latent_mask = masked_cfg.mask_to_latent(self.mask, *self.z0.shape[-2:])
        model = masked_cfg.guided_denoiser(lambda x, s, b: branches[b](x, s), sigmas, 7.5, latent_mask, 0.0, 2,
                                           True, 0, **extra)
        edited = tb.decode(inversion.sample_ddim(model, self.inverted(denoise), sigmas) / tb.latent_scale)
        bg = background_preservation(self.roundtrip, edited, self.mask).psnr
        hits = [judge.colour_in_mask(edited[t].numpy(), self.clip.masks[0, t]).colour == colour
                for t in range(edited.shape[0])]
        warp = warp_error(edited, self.flows)
        return {"bg_psnr": float(bg[torch.isfinite(bg)].mean()), "success": sum(hits) / len(hits),
                "warp": float(warp[torch.isfinite(warp)].mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tb = load_testbed()
    runs = [ClipRun(tb, world.make_clip(seed, frames=args.frames, size=64, n_objects=1), args.steps)
            for seed in world.heldout_seeds(args.clips, 0)]
    print(f"test bed: {args.clips} held-out one-object clips x {args.frames} frames at 64 px, {args.steps} steps, "
          "EasyInv, grid 2 + shuffle, cfg 7.5, cfg_start 0")
    for run in runs:
        print("  ", run.clip.caption, "->", prompts(run.clip)[1], "| unrelated:", prompts(run.clip)[2])
    head = f"{'variant':<28}{'bg PSNR dB':>11}{'edit success':>14}{'warp e-3':>10}{'s':>7}"
    print(head)
    print("-" * len(head))
    for name, negative, background, denoise in ROWS:
        if not supports(background is not None, denoise != 1.0):
            print(f"{name:<28}{'(not in this checkout)':>35}")
            continue
        start = time.perf_counter()
        scores = [run.edit(negative, background, denoise) for run in runs]
        mean = {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}
        print(f"{name:<28}{mean['bg_psnr']:>11.2f}{mean['success']:>14.3f}{mean['warp'] * 1e3:>10.3f}"
              f"{time.perf_counter() - start:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
