"""Tune-A-Video on the trained test bed: does one-shot tuning help, as the paper claims?

Held-out test-bed clips of one ball (64x64, ``--frames`` frames) are edited by the
test-bed MODEL as it is ("untuned"), with sparse-causal attention alone (Cross-Frame
Attention, Tune-A-Video's training-free part) and tuned on the clip with its caption by
Tune-A-Video (DRIVE) (the node's own code, Tune-A-Video's recipe unless told). Each is
measured on the same clip, with the same draws:

- loss: the eps-MSE denoising loss on the clip with its caption at 10 fixed timesteps
  (49, 149, .., 949) with fixed noise;
- reconstruction: DDIM inversion (empty prompt, cfg 1, 50 steps, the tuned MODEL for the
  tuned row), then 50 DDIM steps back with the caption at cfg 1 and at cfg 12.5: PSNR (dB)
  vs the source frames; the VAE round trip is the ceiling;
- the shape edit "ball" -> "square" (edit prompt = the caption with "square", cfg 12.5,
  global, grid 1, no shuffle): ``warp`` is the MSE (x1e3, 0..1 RGB) inside the true square's
  mask between edited frame t and edited frame t+1 sampled along the true motion (the
  source's: the square moves as the ball did); ``track`` the mean distance (px) between the
  edited object's centroid (the judge's object mask of the ball's colour) and the true track;
  ``square`` the share of frames the judge calls a square.

    COMFYUI_DIR=/path/to/ComfyUI python -m bench.tune_a_video_testbed --clips 3 --steps 500
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from drive_ops.core.optical_flow import warp_backward
from drive_ops.evaluate.metrics import psnr
from tests.integration.comfy_inprocess import load_pack, start_comfy

LOSS_TIMESTEPS = tuple(range(49, 1000, 100))
INVERSION_STEPS = 50
EDIT_CFG = 12.5


def pick_clips(world, count: int, frames: int, shape: str = "ball") -> list:
    """The first ``count`` held-out one-object clips whose object is a ``shape``."""
    clips = []
    for seed in world.heldout_seeds(2000):
        clip = world.make_clip(seed, frames=frames, size=64, n_objects=1)
        if clip.objects[0].shape == shape:
            clips.append(clip)
            if len(clips) == count:
                return clips
    raise RuntimeError(f"fewer than {count} held-out clips of a {shape}")


def denoising_loss(pack, model, latent: dict, conditioning: list) -> float:
    """Mean eps-MSE of ``model`` on the clip at LOSS_TIMESTEPS with seeded noise, through ComfyUI's guider."""
    from comfy_extras.nodes_custom_sampler import Guider_Basic

    tuning, run = pack("drive_ops.diffusion.tuning"), pack("nodes.patches.tuning")
    sampling = model.get_model_object("model_sampling")
    losses = []

    def measure(denoise, x0: torch.Tensor) -> None:
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for t in LOSS_TIMESTEPS:
                sigma = sampling.sigmas[t].float().repeat(x0.shape[0])
                noise = torch.randn(x0.shape, generator=generator)
                x = sampling.noise_scaling(sigma, noise, x0)
                losses.append(float(tuning.eps_mse(tuning.eps_from_denoised(x, denoise(x, sigma), sigma), noise)))

    guider = Guider_Basic(model)
    guider.set_conds(conditioning)
    guider.sample(torch.zeros_like(latent["samples"]), latent["samples"], run.TuneSampler(measure),
                  torch.stack([sampling.sigma_max, sampling.sigma_min]).float(), seed=0)
    return sum(losses) / len(losses)


def object_warp_error(edited: torch.Tensor, target) -> float:
    """MSE x1e3 inside the true object's mask between frame t and frame t+1 sampled along the true motion."""
    errors = []
    for t in range(edited.shape[0] - 1):
        warped = warp_backward(edited[t + 1], torch.from_numpy(target.flow[t]))
        region = torch.from_numpy(target.masks[0, t])
        errors.append(float((warped - edited[t]).pow(2).mean(-1)[region].mean()))
    return 1e3 * sum(errors) / len(errors)


def track_error(judge, edited: torch.Tensor, target) -> tuple[float, float]:
    """(mean centroid distance in px to the true track, share of frames judged the target's shape)."""
    obj, bg = target.objects[0], target.scene.background.colour
    distances, shapes = [], []
    for t, frame in enumerate(edited.numpy()):
        mask = judge.object_mask(frame, obj.colour, bg)
        ys, xs = np.nonzero(mask)
        distances.append(math.hypot(xs.mean() - obj.centres[t][0], ys.mean() - obj.centres[t][1])
                         if xs.size >= 4 else float("nan"))
        shapes.append(judge.judge_image(frame, bg, obj.colour, obj.shape).shape_ok)
    return float(np.nanmean(distances)) if not all(map(math.isnan, distances)) else float("nan"), float(np.mean(shapes))


def evaluate(pack, judge, model, vae, clip, target, cond: dict, latent: dict) -> dict:
    """Loss, reconstruction PSNR and shape-edit motion of one MODEL on one clip."""
    invert, edit = pack("nodes.invert").InvertVideo, pack("nodes.edit").MaskedCFGSampler
    source = torch.from_numpy(clip.frames)

    def sample(positive: list, inverted: dict, cfg: float) -> torch.Tensor:
        out = edit.execute(model, positive, cond["empty"], inverted, INVERSION_STEPS, cfg, -1.0, 1, False, 0, 0,
                           "nearest", 0.5).args[0]
        return vae.decode(out["samples"]).float().clamp(0, 1)

    inverted = invert.execute(model, cond["empty"], latent, INVERSION_STEPS, "ddim", 0.5, 0.05, 0.2, "after", 1.0,
                              1, 0).args[0]
    row = {"loss": denoising_loss(pack, model, latent, cond["caption"])}
    for cfg in (1.0, EDIT_CFG):
        row[f"psnr_cfg{cfg:g}"] = float(psnr(source, sample(cond["caption"], inverted, cfg)).mean())
    edited = sample(cond["edit"], inverted, EDIT_CFG)
    row["warp"] = object_warp_error(edited, target)
    row["track"], row["square"] = track_error(judge, edited, target)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=500, help="tuning steps (Tune-A-Video: 300-500)")
    parser.add_argument("--lr", type=float, default=3e-5, help="tuning learning rate (Tune-A-Video: 3e-5)")
    parser.add_argument("--weights", type=Path, default=None, help="test-bed weights folder (default: committed)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    opts = parser.parse_args()

    start_comfy(cpu=True)
    torch.set_num_threads(opts.threads)
    from testbed import comfy_wrap, judge, world

    pack = load_pack()
    tune, attention = pack("nodes.tune").TuneAVideo, pack("nodes.patches.attention")
    tuned_of = pack("nodes.patches.tuned_weights").tuned_of
    kw = {} if opts.weights is None else {"weights_dir": opts.weights, "check": False}
    print(f"test bed, CPU, {opts.clips} held-out ball clips of {opts.frames} frames at 64x64; tuning "
          f"{opts.steps} steps, lr {opts.lr:g}, fp32, sparse-causal; inversion/sampling {INVERSION_STEPS} DDIM steps")
    print("clip | model         | loss    | PSNR cfg1 | PSNR cfg12.5 | warp x1e3 | track px | square | tuning")
    totals: dict[str, list[dict]] = {}
    with torch.inference_mode():
        base, vae = comfy_wrap.testbed_model(**kw), comfy_wrap.testbed_vae(**kw)
        for i, clip in enumerate(pick_clips(world, opts.clips, opts.frames)):
            target = world.render_clip(clip.scene.replace_object(0, shape="square"))
            cond = {"caption": comfy_wrap.testbed_conditioning(clip.caption, **kw),
                    "edit": comfy_wrap.testbed_conditioning(target.caption, **kw),
                    "empty": comfy_wrap.testbed_conditioning("", **kw)}
            latent = {"samples": vae.encode(torch.from_numpy(clip.frames))}
            ceiling = float(psnr(torch.from_numpy(clip.frames), vae.decode(latent["samples"]).float().clamp(0, 1)).mean())
            start = time.perf_counter()
            tuned = tune.execute(base, latent, cond["caption"], opts.steps, opts.lr, "tune_a_video", 16,
                                 0, False, "fp32", 33, True).args[0]
            losses = tuned_of(tuned).metadata["summary"]
            tuning_note = (f"{time.perf_counter() - start:.0f} s, train loss (first / last tenth) "
                           f"{losses['mean_first_tenth']:.4f} -> {losses['mean_last_tenth']:.4f}")
            models = {"untuned": base,
                      "sparse-causal": attention.apply_cross_frame_patch(base, "sparse_causal", 0, False, "all", 0.0,
                                                                         1.0),
                      "tuned": tuned}
            for name, model in models.items():
                row = evaluate(pack, judge, model, vae, clip, target, cond, latent)
                totals.setdefault(name, []).append(row)
                print(f"{i:4d} | {name:13s} | {row['loss']:.5f} | {row['psnr_cfg1']:9.2f} | {row['psnr_cfg12.5']:12.2f} "
                      f"| {row['warp']:9.2f} | {row['track']:8.2f} | {row['square']:6.2f} | "
                      f"{tuning_note if name == 'tuned' else ''}", flush=True)
            print(f"{i:4d} | VAE ceiling   |         | {ceiling:9.2f} |   ({clip.caption} -> {target.caption})")
    for name, rows in totals.items():
        mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
        print(f"mean | {name:13s} | {mean['loss']:.5f} | {mean['psnr_cfg1']:9.2f} | {mean['psnr_cfg12.5']:12.2f} "
              f"| {mean['warp']:9.2f} | {mean['track']:8.2f} | {mean['square']:6.2f} |")


if __name__ == "__main__":
    main()
