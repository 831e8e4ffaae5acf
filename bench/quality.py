#!/usr/bin/env python3
"""Edit-quality table of the engine's variants on the trained test bed (issue 16).

    python -m bench.quality [--variants ddim,easyinv,...] [--clips 6] [--frames 8] [--threads 1]

Every variant edits the same held-out one-object clips of the synthetic world (64 px,
8 frames) with the same seed: the object is recoloured ("a red ball ..." -> "a green
ball ...") through drive_ops (tests/quality_edit.py: the Masked-CFG Sampler's step model,
proven equal to the nodes' path by tests/integration/editing_inprocess.py) on the test
bed's trained UNet / AE / text encoder. Columns (means over the clips):

- success: share of frames whose object (true mask) has the new colour's median (judge);
- share: share of mask pixels of the new colour;
- bg PSNR: decoded edit vs the AE round trip outside the mask grown by 2 px, BEFORE
  composition (the sampler's own leakage; after composition it is exact by construction);
- warp: object warp error x1e3 along the world's TRUE motion; flicker: object flicker ratio
  (1 = as steady as the source);
- recon: invert then resample at cfg 1 (empty prompt), PSNR vs the frames; AE: the round trip's;
- s: seconds per clip (inversion + sampling, this machine).

A small model trained on synthetic clips: the numbers rank the variants on this world;
they are not SD1.5's. Writes bench/out/quality.json and bench/out/quality.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from tests.quality_edit import CLIP_SEEDS, Variant, make_case, reconstruction_psnr, run_edit

OUT = Path(__file__).resolve().parent / "out"
BASE = Variant()
VARIANTS = {v.name: v for v in (
    BASE,
    Variant("easyinv", inversion="easyinv"),
    Variant("stem", inversion="stem"),
    Variant("steps50", steps=50),
    Variant("no-mask", mask=False),
    Variant("mask-grow4", mask_grow_px=4),
    Variant("cfg12", cfg=12.0),
    Variant("cfg_start0.15", cfg_start=0.15),
    Variant("cfg_start0.3", cfg_start=0.3),
    Variant("cfg_start0.5", cfg_start=0.5),
    Variant("grid2", grid=2),
    Variant("grid2-shuffle", grid=2, shuffle=True),
    Variant("grid3-shuffle", grid=3, shuffle=True),
    Variant("pix2video30", pix2video=30.0),
    Variant("pix2video100", pix2video=100.0),
    Variant("xframe-pix2video", cross_frame="pix2video"),
    Variant("xframe-sparse_causal", cross_frame="sparse_causal"),
    Variant("xframe-anchor_only", cross_frame="anchor_only"),
    Variant("fresh-noise-in-mask", fresh_noise=True),
)}
COLUMNS = ("success", "share", "bg_psnr", "warp", "flicker", "recon", "ae", "seconds")


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
            key = (v.inversion, v.steps)
            if (case.seed,) + key not in recon:
                recon[(case.seed,) + key] = reconstruction_psnr(tb, case, v.inversion, v.steps, inverted)
            rec, ae = recon[(case.seed,) + key]
            per.append(dict(r.numbers, recon=rec, ae=ae, seconds=r.seconds))
        row = {"variant": v.name, **{c: sum(p[c] for p in per) / len(per) for c in COLUMNS},
               "per_clip_success": [round(p["success"], 3) for p in per]}
        rows.append(row)
        log(format_row(row))
    return rows


def format_header() -> str:
    return (f"{'variant':<22}{'success':>8}{'share':>7}{'bg PSNR':>9}{'warp e-3':>9}{'flicker':>8}"
            f"{'recon':>7}{'AE':>7}{'s':>6}")


def format_row(r: dict) -> str:
    return (f"{r['variant']:<22}{r['success']:>8.2f}{r['share']:>7.2f}{r['bg_psnr']:>9.2f}{r['warp'] * 1e3:>9.2f}"
            f"{r['flicker']:>8.2f}{r['recon']:>7.2f}{r['ae']:>7.2f}{r['seconds']:>6.1f}")


def markdown(rows: list[dict]) -> str:
    """The table as README markdown."""
    lines = ["| variant | edit success | mask share | bg PSNR dB | object warp e-3 | object flicker | "
             "recon PSNR dB | AE PSNR dB | s/clip |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['success']:.2f} | {r['share']:.2f} | {r['bg_psnr']:.1f} | {r['warp'] * 1e3:.2f} "
              f"| {r['flicker']:.2f} | {r['recon']:.1f} | {r['ae']:.1f} | {r['seconds']:.1f} |" for r in rows]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Edit success and background PSNR per variant (bars), written with matplotlib's Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["variant"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.35 * len(rows) + 1.5), sharey=True)
    for ax, col, label in zip(axes, ("success", "bg_psnr", "warp"),
                              ("edit success (frames)", "background PSNR dB (before composition)",
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
                    help=f"comma-separated names or 'all': {', '.join(VARIANTS)}")
    ap.add_argument("--clips", type=int, default=len(CLIP_SEEDS), help=f"held-out clips (1-{len(CLIP_SEEDS)})")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="also print the table as README markdown")
    args = ap.parse_args(argv)
    names = list(VARIANTS) if args.variants == "all" else [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if not 1 <= args.clips <= len(CLIP_SEEDS):
        raise SystemExit(f"--clips must be 1-{len(CLIP_SEEDS)}, got {args.clips}")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    print(f"test bed (small LDM trained on synthetic clips), {args.clips} held-out clips x {args.frames} frames "
          f"at 64 px, seed {args.seed}, {args.threads} thread(s); base: {BASE}")
    print(format_header())
    rows = run([VARIANTS[n] for n in names], args.clips, args.frames, args.seed)
    OUT.mkdir(exist_ok=True)
    record = dict(clips=args.clips, frames=args.frames, seed=args.seed, threads=args.threads,
                  wall_s=round(time.perf_counter() - start, 1), rows=rows)
    tmp = OUT / "quality.json.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(OUT / "quality.json")
    plot(rows, OUT / "quality.png")
    if args.markdown:
        print(markdown(rows))
    print(f"wrote {OUT / 'quality.json'} and {OUT / 'quality.png'} ({record['wall_s']} s)")


if __name__ == "__main__":
    main()
