#!/usr/bin/env python3
"""Edit-quality table of the engine's variants on the trained test bed (issue 16).

    python -m bench.quality [--variants ddim,easyinv,...] [--clips 24] [--frames 8] [--threads 1]
    python -m bench.quality --model flow [--variants flow-trajectory,...] [--recon-steps 10 25 50]

Every variant edits the same held-out one-object clips of the synthetic world (64 px,
8 frames) with the same seed: the object is recoloured ("a red ball ..." -> "a green
ball ...") through drive_ops (tests/quality_edit.py: the Masked-CFG Sampler's step model,
proven equal to the nodes' path by tests/integration/editing_inprocess.py) on the test
bed's trained UNet / AE / text encoder, then composited over the source (the mask grown
2 px, as the pack's Composite Background). Columns (means over the clips), read from the
COMPOSITED frames, what a user gets:

- in place [95% interval]: share of frames recoloured in place (the new colour's pixels have
  IoU >= 0.5 with the true mask), with a bootstrap interval over clips (2000 resamples);
- elsewhere: frames not in place whose sampler output (before the composite cut it) put the
  new colour mostly off the object (redrawn where it was not); not: the other frames;
- success: share of frames whose object (true mask) has the new colour's median (judge);
- share: share of mask pixels of the new colour;
- bg PSNR: decoded edit vs the AE round trip outside the mask grown by 2 px, BEFORE
  composition (the sampler's own leakage; after composition it is exact by construction);
- warp: object warp error x1e3 along the world's TRUE motion; flicker: object flicker ratio
  (1 = as steady as the source);
- recon: invert then resample at cfg 1 (empty prompt), PSNR vs the frames; AE: the round trip's;
- s: seconds per clip (inversion + sampling, this machine).

The ``structure*`` variants run inversion and edit under the test bed's depth ControlNet
(``testbed/weights_controlnet``, strength 1, the source's exact depth hints tiled into the
grids with the latents), as DRIVE does with a depth ControlNet on SD1.5.

Pix2Video's guidance weight is given in SD units: its per-element step is weight * 2/(C*H*W),
so the test bed's 4x8x8 latents get the weight scaled by C*H*W / (4*64*64) to move each
latent element as the same weight does on SD1.5 at 512 px.

``--model flow`` runs the flow test bed (``testbed/weights_flow``: the same world, a UNet trained
with the rectified-flow objective, SD3's shift 3) through tests/quality_flow.py, the nodes' flow
path: ``flow-masked_cfg*`` = masked CFG (M*guided + (1-M)*uncond), ``flow-trajectory*`` = the
source's trajectory kept outside the mask (the nodes' cfg-1 edit; at cfg 5 guided against the
empty prompt), ``flow-flowedit*`` = masked FlowEdit (no inversion, so no recon); ``-fireflow``
inverts and samples with FireFlow's midpoint solver instead of Euler, ``-grid2-shuffle`` edits on
shuffled 2x2 RAVE grids. The extra column "exact" is the share of clips whose every pixel outside
the grown mask equals the source after Composite. ``--recon-steps`` first prints reconstruction
PSNR against steps per inversion (Euler, Euler + EasyInv's blend, FireFlow; AE bound in brackets).

A small model trained on synthetic clips: the numbers rank the variants on this world;
they are not SD1.5's. Writes bench/out/quality.json and bench/out/quality.png (quality_flow.* with
``--model flow``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from tests.quality_edit import (CLIP_SEEDS, PLACEMENTS, Variant, make_case, placement, reconstruction_psnr,
                                run_edit, success)

OUT = Path(__file__).resolve().parent / "out"
SD_LATENT = 4 * 64 * 64          # SD1.5 latent elements per frame at 512 px
TESTBED_LATENT = 4 * 8 * 8       # the test bed's at 64 px
BOOTSTRAP = 2000


def sd_pix2video(weight: float) -> float:
    """A Pix2Video weight in SD units for the test bed's latents (same per-element step)."""
    return weight * TESTBED_LATENT / SD_LATENT


BASE = Variant()
STRUCTURE = Variant("structure", mask_mode="area", mask_threshold=0.0, controlnet=1.0)
"""The main workflow's structure guidance: its sampler mask (area, threshold 0) and a depth ControlNet at
strength 1 on inversion and edit (the test bed's own, trained on the world's exact depth)."""
VARIANTS = {v.name: v for v in (
    BASE,
    Variant("easyinv", inversion="easyinv"),
    Variant("stem", inversion="stem"),
    Variant("steps50", steps=50),
    Variant("no-mask", mask=False),
    Variant("mask-grow4", mask_grow_px=4),
    Variant("mask-grow8", mask_grow_px=8),
    Variant("mask-area0", mask_mode="area", mask_threshold=0.0),
    Variant("mask-area0-grow4", mask_grow_px=4, mask_mode="area", mask_threshold=0.0),
    Variant("cfg12", cfg=12.0),
    Variant("cfg_start0.15", cfg_start=0.15),
    Variant("cfg_start0.3", cfg_start=0.3),
    Variant("cfg_start0.5", cfg_start=0.5),
    Variant("grid2", grid=2),
    Variant("grid2-shuffle", grid=2, shuffle=True),
    Variant("grid3-shuffle", grid=3, shuffle=True),
    Variant("pix2video30", pix2video=sd_pix2video(30.0)),
    Variant("pix2video100", pix2video=sd_pix2video(100.0)),
    Variant("xframe-pix2video", cross_frame="pix2video"),
    Variant("xframe-sparse_causal", cross_frame="sparse_causal"),
    Variant("xframe-anchor_only", cross_frame="anchor_only"),
    Variant("fresh-noise-in-mask", fresh_noise=True),
    STRUCTURE,
    replace(STRUCTURE, name="structure-cfg_start0.3", cfg_start=0.3),
    replace(STRUCTURE, name="structure-grid3-shuffle", grid=3, shuffle=True),
)}
FLOW_STEPS = 20
FLOW_VARIANTS = {
    "flow-masked_cfg5": ("masked_cfg", dict(cfg=5.0)),
    "flow-masked_cfg5-fireflow": ("masked_cfg", dict(cfg=5.0, method="fireflow")),
    "flow-masked_cfg5-grid2-shuffle": ("masked_cfg", dict(cfg=5.0, grid=2, shuffle=True)),
    "flow-trajectory": ("trajectory", {}),
    "flow-trajectory-fireflow": ("trajectory", dict(method="fireflow")),
    "flow-trajectory-grid2-shuffle": ("trajectory", dict(grid=2, shuffle=True)),
    "flow-trajectory-cfg5": ("trajectory", dict(cfg=5.0)),
    "flow-trajectory-cfg5-grid2-shuffle": ("trajectory", dict(cfg=5.0, grid=2, shuffle=True)),
    "flow-flowedit": ("flowedit", {}),
    "flow-flowedit-cfg5": ("flowedit", dict(cfg=5.0)),
}
"""Flow test bed variants: (tests.quality_flow.edit mode, its options), all at ``FLOW_STEPS`` steps."""
COLUMNS = ("in_place", "elsewhere", "not_recoloured", "success", "share", "bg_psnr", "warp", "flicker", "recon", "ae",
           "seconds")


def bootstrap_interval(values: list[float], seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` over ``BOOTSTRAP`` resamples (with replacement)."""
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(BOOTSTRAP, len(data)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def run(variants: list[Variant], clips: int, frames: int, seed: int, log=print) -> list[dict]:
    """One row per variant: the means over ``clips`` held-out clips of every column."""
    from testbed.load import load_testbed

    tb = load_testbed()
    cases = [make_case(s, frames) for s in CLIP_SEEDS[:clips]]
    inverted: dict = {}
    recon: dict = {}
    rows = []
    for v in variants:
        per = []
        for case in cases:
            r = run_edit(tb, case, v, seed, inverted)
            key = (v.inversion, v.steps, v.controlnet)
            if (case.seed,) + key not in recon:
                recon[(case.seed,) + key] = reconstruction_psnr(tb, case, v.inversion, v.steps, inverted,
                                                                v.controlnet)
            rec, ae = recon[(case.seed,) + key]
            ok, share = success(case, r.composited)
            where = placement(case, r.composited, r.edited)
            shares = {p.replace(" ", "_"): where.count(p) / len(where) for p in PLACEMENTS}
            per.append(dict(r.numbers, success=ok, share=share, **shares, recon=rec, ae=ae, seconds=r.seconds))
        row = {"variant": v.name, **{c: sum(p[c] for p in per) / len(per) for c in COLUMNS},
               "in_place_interval": bootstrap_interval([p["in_place"] for p in per]),
               "per_clip_in_place": [round(p["in_place"], 3) for p in per]}
        rows.append(row)
        log(format_row(row))
    return rows


def run_flow(names: list[str], clips: int, frames: int, seed: int, log=print) -> list[dict]:
    """One row per flow variant (``FLOW_VARIANTS``) on the flow test bed, the columns of :func:`run` plus "exact"."""
    from testbed.flow import load_flow_testbed
    from tests.quality_flow import edit, reconstruction_psnr

    ftb = load_flow_testbed()
    cases = [make_case(s, frames) for s in CLIP_SEEDS[:clips]]
    recon: dict = {}
    rows = []
    for name in names:
        mode, options = FLOW_VARIANTS[name]
        method = options.get("method", "euler")
        per = []
        for case in cases:
            t0 = time.perf_counter()
            r = edit(ftb, case, mode, FLOW_STEPS, seed=seed, **options)
            seconds = time.perf_counter() - t0
            if mode == "flowedit":
                rec, ae = float("nan"), float("nan")
            else:
                if (case.seed, method) not in recon:
                    recon[(case.seed, method)] = reconstruction_psnr(ftb, case, method, FLOW_STEPS)
                rec, ae = recon[(case.seed, method)]
            where = placement(case, r.composited, r.edited)
            shares = {p.replace(" ", "_"): where.count(p) / len(where) for p in PLACEMENTS}
            per.append(dict(r.numbers, **shares, exact=float(r.numbers["bg_exact_after_composite"]), recon=rec,
                            ae=ae, seconds=seconds))
        row = {"variant": name, **{c: sum(p[c] for p in per) / len(per) for c in COLUMNS + ("exact",)},
               "in_place_interval": bootstrap_interval([p["in_place"] for p in per]),
               "per_clip_in_place": [round(p["in_place"], 3) for p in per]}
        rows.append(row)
        log(format_row(row))
    return rows


def flow_reconstruction(steps: list[int], clips: int, frames: int, log=print) -> list[dict]:
    """Reconstruction PSNR (dB, mean over clips) against steps per flow inversion, and the AE round trip's."""
    from testbed.flow import load_flow_testbed
    from tests.quality_flow import INVERSIONS, reconstruction_psnr

    ftb = load_flow_testbed()
    cases = [make_case(s, frames) for s in CLIP_SEEDS[:clips]]
    log("reconstruction PSNR dB (mean over clips; AE round trip in brackets)")
    rows = []
    for n in steps:
        row: dict = {"steps": n}
        for method in INVERSIONS:
            got = [reconstruction_psnr(ftb, c, method, n) for c in cases]
            row[method] = sum(g[0] for g in got) / len(got)
            row["ae"] = sum(g[1] for g in got) / len(got)
        rows.append(row)
        log(f"  steps {n:3d}: " + "  ".join(f"{m} {row[m]:6.2f}" for m in INVERSIONS) + f"  [{row['ae']:.2f}]")
    return rows


def format_header() -> str:
    return (f"{'variant':<35}{'in place [95%]':>19}{'elsewh':>7}{'not':>6}{'success':>8}{'share':>7}{'bg PSNR':>9}"
            f"{'warp e-3':>9}{'flicker':>8}{'recon':>7}{'AE':>7}{'s':>6}")


def _in_place(r: dict) -> str:
    lo, hi = r["in_place_interval"]
    return f"{r['in_place']:.2f} [{lo:.2f}, {hi:.2f}]"


def format_row(r: dict) -> str:
    return (f"{r['variant']:<35}{_in_place(r):>19}{r['elsewhere']:>7.2f}{r['not_recoloured']:>6.2f}"
            f"{r['success']:>8.2f}{r['share']:>7.2f}{r['bg_psnr']:>9.2f}{r['warp'] * 1e3:>9.2f}"
            f"{r['flicker']:>8.2f}{r['recon']:>7.2f}{r['ae']:>7.2f}{r['seconds']:>6.1f}"
            + (f"{r['exact']:>7.2f}" if "exact" in r else ""))


def markdown(rows: list[dict]) -> str:
    """The table as README markdown (with the flow rows' "bg exact after Composite" column when they have it)."""
    exact = all("exact" in r for r in rows)
    lines = ["| variant | recoloured in place [95%] | elsewhere | not recoloured | edit success | mask share | "
             "bg PSNR dB | object warp e-3 | object flicker | recon PSNR dB | AE PSNR dB | s/clip |"
             + (" bg exact after Composite |" if exact else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if exact else "")]
    lines += [f"| {r['variant']} | {_in_place(r)} | {r['elsewhere']:.2f} | {r['not_recoloured']:.2f} | "
              f"{r['success']:.2f} | {r['share']:.2f} | {r['bg_psnr']:.1f} | {r['warp'] * 1e3:.2f} "
              f"| {r['flicker']:.2f} | {r['recon']:.1f} | {r['ae']:.1f} | {r['seconds']:.1f} |"
              + (f" {r['exact']:.2f} |" if exact else "") for r in rows]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Edit success and background PSNR per variant (bars), written with matplotlib's Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["variant"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.35 * len(rows) + 1.5), sharey=True)
    for ax, col, label in zip(axes, ("in_place", "bg_psnr", "warp"),
                              ("recoloured in place (frames, composited)", "background PSNR dB (before composition)",
                               "object warp error x1e3")):
        ax.barh(names, [r[col] * (1e3 if col == "warp" else 1) for r in rows])
        ax.set_xlabel(label)
    axes[0].invert_yaxis()
    fig.suptitle("DRIVE variants on the test bed (small model trained on synthetic clips, 64 px)")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default="all",
                    help=f"comma-separated names or 'all': {', '.join(VARIANTS)}; with --model flow: "
                         f"{', '.join(FLOW_VARIANTS)}")
    ap.add_argument("--clips", type=int, default=len(CLIP_SEEDS), help=f"held-out clips (1-{len(CLIP_SEEDS)})")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="also print the table as README markdown")
    ap.add_argument("--model", choices=("eps", "flow"), default="eps",
                    help="eps: the test bed's eps UNet; flow: the flow test bed (testbed/weights_flow)")
    ap.add_argument("--recon-steps", type=int, nargs="*", default=[],
                    help="with --model flow: first print reconstruction PSNR against these step counts")
    args = ap.parse_args(argv)
    table = FLOW_VARIANTS if args.model == "flow" else VARIANTS
    names = list(table) if args.variants == "all" else [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(table)}")
    if args.recon_steps and args.model != "flow":
        raise SystemExit("--recon-steps needs --model flow")
    if not 1 <= args.clips <= len(CLIP_SEEDS):
        raise SystemExit(f"--clips must be 1-{len(CLIP_SEEDS)}, got {args.clips}")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    flow = args.model == "flow"
    if flow:
        print(f"flow test bed (rectified-flow UNet trained on synthetic clips, shift 3), {args.clips} held-out clips "
              f"x {args.frames} frames at 64 px, {FLOW_STEPS} steps, seed {args.seed}, {args.threads} thread(s)")
        recon_rows = flow_reconstruction(args.recon_steps, args.clips, args.frames) if args.recon_steps else []
        print(format_header() + f"{'exact':>7}")
        rows = run_flow(names, args.clips, args.frames, args.seed)
    else:
        print(f"test bed (small LDM trained on synthetic clips), {args.clips} held-out clips x {args.frames} frames "
              f"at 64 px, seed {args.seed}, {args.threads} thread(s); base: {BASE}")
        print(format_header())
        rows = run([VARIANTS[n] for n in names], args.clips, args.frames, args.seed)
    OUT.mkdir(exist_ok=True)
    record = dict(model=args.model, clips=args.clips, frames=args.frames, seed=args.seed, threads=args.threads,
                  wall_s=round(time.perf_counter() - start, 1), rows=rows)
    if flow:
        record["reconstruction"] = recon_rows
    stem = "quality_flow" if flow else "quality"
    tmp = OUT / f"{stem}.json.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(OUT / f"{stem}.json")
    plot(rows, OUT / f"{stem}.png")
    if args.markdown:
        print(markdown(rows))
    print(f"wrote {OUT / (stem + '.json')} and {OUT / (stem + '.png')} ({record['wall_s']} s)")


if __name__ == "__main__":
    main()
