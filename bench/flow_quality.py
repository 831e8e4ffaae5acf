"""Flow test bed numbers: reconstruction PSNR against steps per inversion, and masked edits at cfg > 1 and cfg 1.

    python -m bench.flow_quality [--clips 3] [--steps 10 25 50]

Reconstruction: invert the AE latents with the empty prompt (Euler, Euler + EasyInv's blend,
FireFlow) and sample back at cfg 1; PSNR vs the frames (the AE round trip is the bound).
Edits (tests/quality_flow.py): masked CFG at cfg 5 (per frame and with the RAVE shuffle),
and the source trajectory outside the mask vs masked FlowEdit at cfg 1 (the guidance-distilled
case) and with both guided at cfg 5; success = share of
frames whose object turned the new colour, bg PSNR = outside the grown mask before
Composite, exact = every pixel outside the mask equal after Composite.
"""

from __future__ import annotations

import argparse
import time

import torch

from tests.quality_edit import CLIP_SEEDS, make_case
from tests.quality_flow import INVERSIONS, edit, reconstruction_psnr
from testbed.flow import load_flow_testbed


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.flow_quality", description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=3)
    p.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50])
    p.add_argument("--edit-steps", type=int, default=20)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ftb = load_flow_testbed()
    cases = [make_case(s) for s in CLIP_SEEDS[:args.clips]]
    print("reconstruction PSNR dB (mean over clips; AE round trip in brackets)")
    for steps in args.steps:
        row = []
        for method in INVERSIONS:
            got = [reconstruction_psnr(ftb, c, method, steps) for c in cases]
            row.append(f"{method} {sum(g[0] for g in got) / len(got):6.2f}")
        print(f"  steps {steps:3d}: " + "  ".join(row) + f"  [{sum(g[1] for g in got) / len(got):.2f}]")
    variants = [("masked_cfg", dict(cfg=5.0)), ("masked_cfg", dict(cfg=5.0, method="fireflow")),
                ("masked_cfg", dict(cfg=5.0, grid=2, shuffle=True)), ("trajectory", {}),
                ("trajectory", dict(method="fireflow")), ("flowedit", {}), ("trajectory", dict(cfg=5.0)),
                ("flowedit", dict(cfg=5.0)), ("trajectory", dict(cfg=5.0, grid=2, shuffle=True))]
    print(f"edits, {args.edit_steps} steps (mean over clips)")
    for mode, options in variants:
        t0 = time.perf_counter()
        runs = [edit(ftb, c, mode, args.edit_steps, **options).numbers for c in cases]
        mean = {k: sum(float(r[k]) for r in runs) / len(runs) for k in runs[0]}
        print(f"  {mode:10s} {str(options):40s} success {mean['success']:.2f} share {mean['share']:.2f} "
              f"bg {mean['bg_psnr']:5.2f} dB exact {mean['bg_exact_after_composite']:.0f} warp {mean['warp']:.4f} "
              f"flicker {mean['flicker']:.2f} ({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
