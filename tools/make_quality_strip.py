#!/usr/bin/env python3
"""The README's test-bed strip: a real diffusion edit made by the pack's nodes on the trained test bed.

    python -m tools.make_quality_strip [--out docs/testbed_strip.png] [--seeds 23,21]    # repository root

Runs the nodes' own ``execute()`` in an in-process ComfyUI (COMFYUI_DIR, or the set-up's
cache) on the test bed's MODEL / VAE / CONDITIONING (testbed.comfy_wrap): VAE encode ->
Invert Video (ddim, empty prompt) -> Masked-CFG Sampler (target prompt, the true mask) ->
VAE decode -> Composite Background -> Harmonize (no weights: pass-through, so the strip
shows the edit itself). Each held-out clip gives rows of source | result | mask
(frames 0, 3, 7), scaled 3x with nearest pixels. A small model trained on synthetic clips
(64 px): it shows what the path does on that world, not SD1.5 quality.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
NODE_DEFAULTS = dict(steps=20, cfg=7.5, cfg_start=0.0)


def edit_through_nodes(case, steps: int = 20, cfg: float = 7.5, cfg_start: float = 0.0, grow: int = 0,
                       harmonize_strength: float = 0.0, seed: int = 0) -> dict:
    """Run the pack's nodes on a :class:`tests.quality_edit.Case`; returns IMAGEs edited / composited / harmonised.

    Needs ComfyUI importable (``comfy_inprocess.start_comfy()`` done by :func:`start`).
    """
    from comfy_inprocess import load_pack

    from testbed import comfy_wrap

    pack = load_pack()
    invert, edit, composite = pack("nodes.invert"), pack("nodes.edit"), pack("nodes.composite")
    model, vae = comfy_wrap.testbed_model(), comfy_wrap.testbed_vae()
    empty = comfy_wrap.testbed_conditioning("")
    latent = {"samples": vae.encode(case.frames)}
    inverted = invert.InvertVideo.execute(model, empty, latent, steps, "ddim", 0.5, 0.05, 0.2, "after", 1.0, 1, seed)
    sampled = edit.MaskedCFGSampler.execute(model, comfy_wrap.testbed_conditioning(case.target_caption), empty,
                                            inverted.args[0], steps, cfg, cfg_start, 1, False, seed, 0, "nearest",
                                            0.5, case.mask)
    with torch.no_grad():
        edited = vae.decode(sampled.args[0]["samples"]).float()
    comp = composite.CompositeBackground.execute(edited, case.frames, case.mask, grow, 0.0, "alpha").args[0]
    harmonized = composite.Harmonize.execute(comp, case.mask, harmonize_strength, 0.96, 25.0, 8).args[0]
    return dict(edited=edited, composited=comp, harmonized=harmonized)


def start() -> None:
    """Put tests/integration on the path and start ComfyUI in-process (CPU)."""
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT))
    import os

    if not os.environ.get("COMFYUI_DIR"):
        cached = ROOT / ".cache" / "ComfyUI-0.3.64"
        os.environ["COMFYUI_DIR"] = str(cached if cached.is_dir() else Path("/work/main/.cache/ComfyUI-0.3.64"))
    from comfy_inprocess import start_comfy

    start_comfy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "testbed_strip.png")
    ap.add_argument("--seeds", default="23,21", help="held-out clip offsets (tests/quality_edit.CLIP_SEEDS)")
    ap.add_argument("--frames", default="0,3,7")
    ap.add_argument("--scale", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    start()
    from PIL import Image
    from quality_edit import make_case, success

    from drive_ops.evaluate.compare_strip import compare_strip

    frames = [int(f) for f in args.frames.split(",")]
    sheets = []
    for seed in (int(s) for s in args.seeds.split(",")):
        case = make_case(seed)
        out = edit_through_nodes(case, **NODE_DEFAULTS)
        ok, share = success(case, out["edited"])
        print(f"clip {seed}: {case.clip.caption!r} -> {case.target_caption!r}: object in the new colour in "
              f"{ok:.2f} of frames, {share:.2f} of mask pixels")
        sheets.append(compare_strip(case.frames, out["harmonized"], case.mask, frames, gap_px=2)[0])
    width = max(s.shape[1] for s in sheets)
    gap = torch.ones(4, width, 3)
    sheet = torch.cat([t for s in sheets for t in (s, gap)][:-1])
    img = (sheet.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    img = img.repeat(args.scale, 0).repeat(args.scale, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.png")
    Image.fromarray(img).save(tmp, optimize=True)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
