"""Quality numbers of the trained testbed on held-out seeds: ``python -m testbed.evaluate``.

- :func:`autoencoder_psnr`: PSNR of ``decode(encode(frame))`` on held-out world frames.
- :func:`generation_accuracy`: generate from single-object captions, judge the colour and
  shape of the generated object (:mod:`testbed.judge`).
- :func:`inversion_psnr`: DDIM-invert AE latents of held-out frames at cfg 1 and sample
  them back, PSNR against the frames and against the AE round trip.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from . import judge, load, world


def _psnr_pooled(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB, peak 1) of the MSE pooled over every pixel of ``a`` vs ``b``."""
    return 10.0 * math.log10(1.0 / max(float(((a.float() - b.float()) ** 2).mean()), 1e-12))


@torch.no_grad()
def autoencoder_psnr(ae, n: int = 256, size: int = 64, offset: int = 0) -> float:
    """Pooled PSNR of the autoencoder's round trip (posterior mean) on ``n`` held-out frames."""
    frames, _ = world.image_batch(world.heldout_seeds(n, offset), size)
    x = torch.from_numpy(frames).movedim(-1, 1) * 2.0 - 1.0
    rec = torch.cat([ae.decode(ae.encode(x[i:i + 64]).latent_dist.mean).sample for i in range(0, n, 64)])
    return _psnr_pooled((rec.clamp(-1, 1) + 1) / 2, (x + 1) / 2)


def single_object_captions(n: int, offset: int = 0) -> list[str]:
    """``n`` held-out single-object captions (the captions of held-out one-object scenes)."""
    return [world.sample_scene(s, 1, 64, n_objects=1).caption for s in world.heldout_seeds(n, offset)]


@torch.no_grad()
def generation_accuracy(tb: load.Testbed, captions: list[str], steps: int = 50, cfg: float = 7.5, seed: int = 0,
                        batch: int = 64) -> dict:
    """Generate one image per caption and judge it; returns accuracies and the per-sample verdicts."""
    verdicts = []
    for i in range(0, len(captions), batch):
        images = tb.generate(captions[i:i + batch], steps=steps, cfg=cfg, seed=seed + i)
        verdicts += [judge.judge_caption(img.numpy(), cap) for img, cap in zip(images, captions[i:i + batch])]
    n = len(verdicts)
    return dict(samples=n, steps=steps, cfg=cfg,
                colour_accuracy=sum(v.colour_ok for v in verdicts) / n,
                shape_accuracy=sum(v.shape_ok for v in verdicts) / n,
                found=sum(v.found for v in verdicts) / n,
                verdicts=verdicts)


@torch.no_grad()
def grid_generation_accuracy(tb: load.Testbed, captions: list[str], steps: int = 50, cfg: float = 7.5,
                             seed: int = 0, batch: int = 16) -> dict:
    """Generate 2x2 grids (16x16 latents, what RAVE's grid shuffle samples) and judge each 64 px cell."""
    cells = []
    for i in range(0, len(captions), batch):
        images = tb.generate(captions[i:i + batch], steps=steps, cfg=cfg, seed=seed + i, size=128)
        for img, cap in zip(images, captions[i:i + batch]):
            cells.append([judge.judge_caption(img[r:r + 64, c:c + 64].numpy(), cap)
                          for r in (0, 64) for c in (0, 64)])
    n = len(cells)
    return dict(grids=n, steps=steps, cfg=cfg,
                cell_colour_accuracy=sum(v.colour_ok for g in cells for v in g) / (4 * n),
                cell_shape_accuracy=sum(v.shape_ok for g in cells for v in g) / (4 * n),
                grids_all_cells_right_colour=sum(all(v.colour_ok for v in g) for g in cells) / n)


@torch.no_grad()
def inversion_psnr(tb: load.Testbed, n: int = 16, steps: int = 50, offset: int = 0) -> dict:
    """DDIM inversion (cfg 1, the frame's own caption) then DDIM sampling back, on ``n`` held-out frames."""
    from drive_ops.diffusion import inversion, schedule

    frames, captions = world.image_batch(world.heldout_seeds(n, offset), 64)
    frames_t = torch.from_numpy(frames)
    z0 = tb.encode(frames_t) * tb.latent_scale
    roundtrip = tb.decode(z0 / tb.latent_scale)
    context = tb.text_context(captions)[0]
    fwd = schedule.ddim_inversion_sigmas(tb.sigmas, steps)
    back = schedule.ddim_sampling_sigmas(tb.sigmas, steps)
    model = tb.denoiser(context, cfg=1.0)
    noise = inversion.sample_ddim_inversion(model, z0, fwd)
    rec = inversion.sample_ddim(model, noise, back)
    recon = tb.decode(rec / tb.latent_scale)
    return dict(frames=n, steps=steps, psnr_vs_frames_db=_psnr_pooled(recon, frames_t),
                psnr_vs_ae_roundtrip_db=_psnr_pooled(recon, roundtrip),
                ae_roundtrip_psnr_db=_psnr_pooled(roundtrip, frames_t),
                latent_rmse=float(((rec - z0) ** 2).mean().sqrt()))


def evaluate(tb: load.Testbed, samples: int = 120, log=print) -> dict:
    """The numbers the record and the report quote."""
    out = {}
    t = time.time()
    out["autoencoder_psnr_db"] = round(autoencoder_psnr(tb.autoencoder, 256), 3)
    out["autoencoder_psnr_128px_db"] = round(autoencoder_psnr(tb.autoencoder, 64, size=128), 3)
    log(f"eval: AE PSNR {out['autoencoder_psnr_db']:.2f} dB (64 px), {out['autoencoder_psnr_128px_db']:.2f} dB "
        f"(128 px) ({time.time() - t:.0f}s)")
    captions = single_object_captions(samples)
    for cfg in (7.5, 1.0):
        t = time.time()
        r = generation_accuracy(tb, captions, steps=50, cfg=cfg)
        verdicts = r.pop("verdicts")
        confusion: dict[str, dict[str, int]] = {}
        for v in verdicts:
            row = confusion.setdefault(v.expected_colour, {})
            row[v.colour] = row.get(v.colour, 0) + 1
        r["colour_confusion"] = confusion
        out[f"generation_cfg{cfg:g}"] = r
        log(f"eval: 50 steps cfg {cfg}: colour {r['colour_accuracy']:.3f} shape {r['shape_accuracy']:.3f} "
            f"found {r['found']:.3f} on {r['samples']} samples ({time.time() - t:.0f}s)")
    t = time.time()
    out["grid2x2_generation_cfg7.5"] = grid_generation_accuracy(tb, captions[: max(samples // 4, 4)], 50, 7.5)
    log(f"eval: 2x2 grids {json.dumps(out['grid2x2_generation_cfg7.5'])} ({time.time() - t:.0f}s)")
    t = time.time()
    out["inversion_cfg1_50steps"] = inversion_psnr(tb, 16, 50)
    log(f"eval: inversion {json.dumps(out['inversion_cfg1_50steps'])} ({time.time() - t:.0f}s)")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m testbed.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(load.WEIGHTS_DIR))
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    metrics = evaluate(load.load_testbed(args.weights), samples=args.samples)
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
