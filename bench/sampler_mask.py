#!/usr/bin/env python3
"""Which mask should the Masked-CFG Sampler get (issue 24, item 2)?

Two tables:

1. Coverage, no model: world clips at 64 and 512 px and a 30 px object at 512 px; for each way
   of bringing the object mask to latent size, the share of object pixels whose 8x8 block is
   OUTSIDE the latent mask (resampled unguided, then composited in) and the latent mask's area
   over the object's (how much background the sampler redraws).
2. Edits on the trained test bed (tests/quality_edit.py, 64 px, 8 frames, 20 DDIM steps): the
   same recolour with each sampler mask, composited with the tracked mask feathered about its
   edge (what the main workflow does); in place (bench.quality's placement), success / share read
   the composited frames in the true mask, the object's warp error and flicker as in bench.quality.
3. The main workflow's mask handling before and after issue 24, end to end on the same edits:
   old = Mask Tools grows 8 px, the sampler samples it nearest, Composite feathers 4 px inward;
   new = the sampler reads the tracked mask area / 0, a second Mask Tools feathers it 4 px about
   the tracked edge for Composite, which takes it as it is. Ring PSNR: the composite against the source on the pixels within 8 px
   outside the tracked mask (the band the old composite pasted sampler output into).

    python -m bench.sampler_mask [--clips 6] [--threads 1] [--no-edits]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from drive_ops.core.mask_morphology import feather_mask, grow_mask
from drive_ops.diffusion import masked_cfg

FEATHER_PX = 4.0
# name -> (pixel-mask grow before conversion, mask_mode, mask_threshold)
SAMPLER_MASKS = {
    "nearest (DRIVE)": (0, "nearest", 0.5),
    "nearest, grown 8 px (old workflow)": (8, "nearest", 0.5),
    "area, threshold 0": (0, "area", 0.0),
    "area, threshold 0, grown 4 px": (4, "area", 0.0),   # ~ the support of a mask feathered by 4 px
}


def sampler_latent_mask(mask: torch.Tensor, how: tuple[int, str, float]) -> torch.Tensor:
    """Pixel masks ``[T,H,W]`` -> the sampler's binary latent mask ``[T,H//8,W//8]`` for one row of SAMPLER_MASKS."""
    grow, mode, threshold = how
    if grow:
        mask = grow_mask(mask, grow)
    return masked_cfg.mask_to_latent(mask, mask.shape[-2] // 8, mask.shape[-1] // 8, mode, threshold)


def coverage(mask: torch.Tensor, latent: torch.Tensor) -> tuple[float, float]:
    """(share of object pixels outside the latent mask, latent area in pixels / object area)."""
    up = latent.repeat_interleave(8, -2).repeat_interleave(8, -1) > 0
    obj = mask > 0.5
    return float((obj & ~up).sum() / obj.sum()), float(up.sum() / obj.sum())


def coverage_clips() -> dict[str, list[torch.Tensor]]:
    """Object masks ``[T,H,W]`` of held-out world clips: 64 px, 512 px, and a 30 px object at 512 px."""
    from testbed import world

    seeds = world.heldout_seeds(8, offset=300)
    out: dict[str, list[torch.Tensor]] = {"64 px": [], "512 px": [], "30 px object at 512 px": []}
    for seed in seeds:
        out["64 px"].append(torch.from_numpy(world.make_clip(seed, frames=4, size=64, n_objects=1).masks[0]).float())
        scene = world.sample_scene(seed, frames=4, size=512, n_objects=1)
        out["512 px"].append(torch.from_numpy(world.render_clip(scene).masks[0]).float())
        small = dataclasses.replace(scene.objects[0], radii=np.full(4, 15.0))
        tiny = dataclasses.replace(scene, objects=(small,))
        out["30 px object at 512 px"].append(torch.from_numpy(world.render_clip(tiny).masks[0]).float())
    return out


def coverage_table() -> None:
    print(f"{'clips':<26}{'sampler mask':<38}{'object outside %':>17}{'latent/object':>14}")
    for clips_name, masks in coverage_clips().items():
        for name, how in SAMPLER_MASKS.items():
            numbers = [coverage(m, sampler_latent_mask(m, how)) for m in masks]
            missed = 100 * float(np.mean([n[0] for n in numbers]))
            area = float(np.mean([n[1] for n in numbers]))
            print(f"{clips_name:<26}{name:<38}{missed:>17.2f}{area:>14.2f}")


def edit_table(clips: int) -> None:
    from testbed.load import load_testbed
    from tests.quality_edit import (CLIP_SEEDS, Variant, make_case, object_flicker, object_warp_error, placement,
                                    run_edit, success)

    from drive_ops.composite.compositing import composite_video

    tb = load_testbed()
    cases = [make_case(s) for s in CLIP_SEEDS[:clips]]
    inverted: dict = {}
    print(f"\n{'sampler mask':<38}{'in place':>9}{'success':>8}{'share':>7}{'warp e-3':>9}{'flicker':>8}"
          f"{'ring PSNR':>10}")
    old = Variant("old workflow", mask_grow_px=8)
    new = Variant("new workflow", mask_mode="area", mask_threshold=0.0)
    runs = [(Variant(name, mask_grow_px=grow, mask_mode=mode, mask_threshold=threshold), "feathered")
            for name, (grow, mode, threshold) in SAMPLER_MASKS.items()] + [(old, "old"), (new, "feathered")]
    for variant, how in runs:
        rows = []
        for case in cases:
            r = run_edit(tb, case, variant, 0, inverted)
            if how == "old":
                comp = composite_video(r.edited, case.frames, grow_mask(case.mask, 8), feather=FEATHER_PX)
            else:
                comp = composite_video(r.edited, case.frames, feather_mask(case.mask, FEATHER_PX))
            ok, share = success(case, comp)
            where = placement(case, comp, r.edited)
            ring = (grow_mask(case.mask, 8) > 0) & (case.mask <= 0)
            mse = float(((comp - case.frames) ** 2).mean(-1)[ring].mean())
            rows.append((where.count("in place") / len(where), ok, share, object_warp_error(comp, case.clip),
                         object_flicker(case, comp), 10 * np.log10(1.0 / max(mse, 1e-12))))
        mean = np.mean(np.array(rows), axis=0)
        print(f"{variant.name:<38}{mean[0]:>9.2f}{mean[1]:>8.2f}{mean[2]:>7.2f}{mean[3] * 1e3:>9.2f}{mean[4]:>8.2f}"
              f"{mean[5]:>10.1f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-edits", action="store_true", help="coverage table only (no test-bed model)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    coverage_table()
    if not args.no_edits:
        edit_table(args.clips)


if __name__ == "__main__":
    main()
