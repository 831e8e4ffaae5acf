#!/usr/bin/env python3
"""Edit-quality table for the engine's variants on the clips in ../shared/data.

    python -m bench.quality [--size 64] [--frames 8] [--steps 10] [--device cpu]

Runs the DRIVE step model in pure PyTorch (drive_ops.diffusion.masked_cfg.guided_denoiser:
the same grid / CFG / mask functions the ComfyUI patches compose; the integration test
tests/integration/editing_inprocess.py checks that it gives the nodes' own result) with
DDIM or EasyInv inversion, the grid shuffle on or off, and the instance mask on or off,
all with one seed, then measures each result with drive_ops.evaluate.edit_report. The
denoiser and VAE are diffusers models built from small configs with RANDOM weights (no
weights can be downloaded here): only background preservation (exact composition is not
applied here, so this is the sampler's own leakage) and reconstruction are meaningful;
warp error and flicker of random-weight edits say nothing about a real checkpoint.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import DATA, load_clip
from drive_ops.diffusion import inversion, masked_cfg, schedule
from drive_ops.evaluate.edit_report import build_report
from drive_ops.evaluate.metrics import reconstruction
from tests.tiny_unet import eps_denoiser, tiny_unet

CLIPS = [("wolf-1_original.mp4", "wolf-1_binary_mask.mp4"), ("truck.mp4", None)]
LATENT_SCALE = 0.18215


def build_models(device: torch.device, seed: int):
    """The tests' tiny SD-shaped UNet (cross-attention on both branches) and an 8x VAE, seeded random weights."""
    from diffusers import AutoencoderKL

    unet = tiny_unet(seed).to(device)
    with torch.no_grad():  # a smooth random eps field, so the ODE discretisation converges
        unet.conv_out.weight.mul_(0.1)
        unet.conv_out.bias.mul_(0.1)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32, 64),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=1, norm_num_groups=16, sample_size=64).eval().to(device)
    gen = torch.Generator().manual_seed(seed + 1)
    contexts = [torch.randn(1, 8, 32, generator=gen).to(device) for _ in range(2)]  # edit prompt, empty prompt
    return unet, vae, contexts


def encode(vae, frames: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return vae.encode(frames.movedim(-1, 1) * 2 - 1).latent_dist.mean * LATENT_SCALE


def decode(vae, latents: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return ((vae.decode(latents / LATENT_SCALE).sample + 1) / 2).clamp(0, 1).movedim(1, -1)


def invert(method: str, model, latents: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    if method == "ddim":
        return inversion.sample_ddim_inversion(model, latents, sigmas)
    return inversion.sample_easyinv(model, latents, sigmas)


def clip_and_mask(name: str, mask_name: str | None, frames: int, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    video = load_clip(name, frames, size)
    if mask_name is None:
        return video, None
    return video, (load_clip(mask_name, frames, size)[..., 0] > 0.5).float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=64, help="longer side in pixels (multiple of 16)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--cfg", type=float, default=7.5)
    ap.add_argument("--grid", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is absent: the clips live in shared/data beside the checkout")
    device = torch.device(args.device)
    unet, vae, (edit_ctx, empty_ctx) = build_models(device, args.seed)
    table = schedule.sigma_from_alpha_cumprod(schedule.scaled_linear_alphas_cumprod()).to(device)
    inv_sigmas = schedule.ddim_inversion_sigmas(table, args.steps)
    samp_sigmas = schedule.ddim_sampling_sigmas(table, args.steps)
    branches = [eps_denoiser(unet, table, edit_ctx), eps_denoiser(unet, table, empty_ctx)]

    print(f"random-weight diffusers UNet + VAE, {args.frames} frames at {args.size}px, {args.steps} steps, "
          f"cfg {args.cfg}, grid {args.grid}, seed {args.seed}, device {device}")
    print("MEANINGFUL on random weights: bg PSNR/SSIM (leakage of the edit outside the mask) and the "
          "reconstruction columns. NOT meaningful: warp error, flicker (they measure random edits).")
    head = f"{'clip':<18}{'inversion':<10}{'shuffle':<8}{'mask':<6}{'bg PSNR':>9}{'bg SSIM':>9}" \
           f"{'warp e-3':>10}{'flicker':>9}{'recon PSNR':>12}{'VAE PSNR':>10}{'s':>7}"
    print(head)
    print("-" * len(head))
    for clip_name, mask_name in CLIPS:
        frames, mask = clip_and_mask(clip_name, mask_name, args.frames, args.size)
        frames = frames.to(device)
        latents = encode(vae, frames)
        vae_rt = decode(vae, latents)
        latent_mask = None if mask is None else masked_cfg.mask_to_latent(mask.to(device), *latents.shape[-2:])
        for method in ("ddim", "easyinv"):
            start = time.perf_counter()
            noise = invert(method, branches[1], latents, inv_sigmas)
            recon = reconstruction(frames, vae_rt, decode(vae, inversion.sample_ddim(branches[1], noise, samp_sigmas)))
            recon_db, vae_db = recon.inversion_psnr.mean().item(), recon.vae_psnr.mean().item()
            inv_s = time.perf_counter() - start
            for shuffle in (False, True):
                for use_mask in ((False, True) if mask is not None else (False,)):
                    start = time.perf_counter()
                    model = masked_cfg.guided_denoiser(
                        lambda x, s, branch: branches[branch](x, s), samp_sigmas, args.cfg,
                        mask=latent_mask if use_mask else None, grid_size=args.grid, shuffle=shuffle, seed=args.seed)
                    edited = decode(vae, inversion.sample_ddim(model, noise, samp_sigmas))
                    report = build_report(vae_rt.cpu(), edited.cpu(), mask if use_mask else None)
                    took = time.perf_counter() - start + inv_s
                    print(f"{clip_name[:17]:<18}{method:<10}{str(shuffle):<8}{str(use_mask):<6}"
                          f"{report.bg_psnr:>9.2f}{report.bg_ssim:>9.4f}{report.mean_warp_error * 1e3:>10.3f}"
                          f"{report.flicker_ratio:>9.3f}{recon_db:>12.2f}{vae_db:>10.2f}{took:>7.1f}")
    print("bg PSNR/SSIM are measured against the VAE round trip (the sampler's own leakage, before composition); "
          "without a mask they cover the whole frame.")


if __name__ == "__main__":
    main()
