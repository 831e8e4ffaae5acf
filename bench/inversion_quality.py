"""Inversion quality: reconstruction PSNR of DDIM vs EasyInv vs STEM inversion, with time and memory.

Each clip is VAE-encoded, inverted to the top of the DDIM schedule and sampled back with
the same steps (cond-only, the inversion prompt, cfg 1); PSNR of the decoded frames
against the input is printed next to the VAE round-trip bound (encode -> decode), so the
inversion error is separated from the VAE's. STEM replaces every self-attention with its
EM bases in both passes (docs/algorithms.md, STEM). Latent PSNR (against the encoded
latents) is the inversion error alone.

Without --weights the models are diffusers UNet/VAE built from small configs with random
weights: the numbers then exercise the machinery and compare the methods under one
model, they say nothing about SD1.5 quality. --weights takes a local diffusers SD1.5
folder (unet/, vae/, text_encoder/, tokenizer/); nothing is downloaded.

    python -m bench.inversion_quality --frames 8 --size 128 --steps 20
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import DATA, PeakMemory, load_clip
from drive_ops.diffusion.inversion import sample_ddim, sample_ddim_inversion, sample_easyinv
from drive_ops.diffusion.schedule import (ddim_inversion_sigmas, ddim_sampling_sigmas, scaled_linear_alphas_cumprod,
                                          sigma_from_alpha_cumprod)
from drive_ops.diffusion.stem import stem_attention, stem_memory_bytes
from drive_ops.evaluate.metrics import psnr_from_mse
from tests.tiny_unet import eps_denoiser

LATENT_SCALE = 0.18215
DEFAULT_CLIPS = ("wolf-1_original.mp4", "truck.mp4")


def build_models(weights: str | None):
    """(unet, vae, cond [1, L, D]) from a local diffusers folder, or tiny random ones."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    if weights:
        from transformers import CLIPTextModel, CLIPTokenizer

        unet = UNet2DConditionModel.from_pretrained(weights, subfolder="unet", local_files_only=True).eval()
        vae = AutoencoderKL.from_pretrained(weights, subfolder="vae", local_files_only=True).eval()
        tok = CLIPTokenizer.from_pretrained(weights, subfolder="tokenizer", local_files_only=True)
        enc = CLIPTextModel.from_pretrained(weights, subfolder="text_encoder", local_files_only=True).eval()
        ids = tok([""], padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
        with torch.no_grad():
            return unet, vae, enc(ids)[0]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32).eval()
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32, 64, 64),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=1, norm_num_groups=32, sample_size=64).eval()   # 8x down, as SD
    cond = torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(1))
    return unet, vae, cond


class STEMProcessor:
    """diffusers attention processor: self-attention against STEM's EM bases over all frames of the batch."""

    def __init__(self, num_bases: int, iters: int, tau: float, chunk_frames: int):
        self.options = dict(num_bases=num_bases, iters=iters, tau=tau, chunk_frames=chunk_frames)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        out = stem_attention(q, k, v, attn.heads, **self.options)
        return attn.to_out[1](attn.to_out[0](out))


def set_self_attention(unet, processor) -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0

    unet.set_attn_processor({name: (processor if processor is not None and ".attn1." in name else AttnProcessor2_0())
                             for name in unet.attn_processors})


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float) -> float:
    """PSNR in dB over all elements of two tensors whose values span ``peak``."""
    return float(psnr_from_mse((a - b).pow(2).mean(), peak))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", nargs="+", default=list(DEFAULT_CLIPS), help="files in --data")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="square frame size in pixels (multiple of 8)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--bases", type=int, default=256)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--tau", type=float, default=0.01)
    parser.add_argument("--chunk-frames", type=int, default=0)
    parser.add_argument("--weights", default=None, help="local diffusers SD1.5 folder (default: tiny random models)")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    unet, vae, cond = build_models(args.weights)
    sigma_table = sigma_from_alpha_cumprod(scaled_linear_alphas_cumprod())
    inv_sigmas = ddim_inversion_sigmas(sigma_table, args.steps)
    fwd_sigmas = ddim_sampling_sigmas(sigma_table, args.steps)
    model = eps_denoiser(unet, sigma_table, cond)
    methods = {
        "ddim": (None, sample_ddim_inversion),
        "easyinv": (None, sample_easyinv),
        "stem": (STEMProcessor(args.bases, args.iters, args.tau, args.chunk_frames), sample_ddim_inversion),
    }
    tokens = (args.size // 2 ** (len(vae.config.block_out_channels) - 1)) ** 2
    heads = unet.config.num_attention_heads or unet.config.attention_head_dim   # diffusers' SD naming quirk
    heads = heads if isinstance(heads, int) else heads[0]
    est = stem_memory_bytes(args.frames, tokens, heads, unet.config.block_out_channels[0] // heads, args.bases,
                            args.chunk_frames, dtype_bytes=4)
    print(f"model: {'SD1.5 ' + args.weights if args.weights else 'tiny random diffusers UNet/VAE'}; "
          f"{args.frames} frames at {args.size}x{args.size}, {args.steps} steps, cond-only (cfg 1)")
    print(f"STEM largest layer: {tokens} tokens/frame, {est['bases']} bases, estimate "
          f"{est['stem_bytes'] / 2**20:.1f} MiB vs full spatio-temporal attention "
          f"{est['full_attention_bytes'] / 2**20:.1f} MiB")
    print("| clip | method | latent PSNR dB | pixel PSNR dB | VAE bound dB | invert+recon s | peak mem MiB |")
    print("|---|---|---|---|---|---|---|")
    for clip in args.clips:
        frames = load_clip(f"{args.data}/{clip}", args.frames, args.size, square=True).movedim(-1, 1) * 2 - 1
        latents = vae.encode(frames).latent_dist.mean * LATENT_SCALE
        bound = psnr(vae.decode(latents / LATENT_SCALE).sample.clamp(-1, 1), frames, 2.0)
        for name, (processor, invert) in methods.items():
            set_self_attention(unet, processor)
            with PeakMemory("cpu") as mem:
                start = time.perf_counter()
                noise = invert(model, latents.clone(), inv_sigmas)
                recon = sample_ddim(model, noise, fwd_sigmas)
                seconds = time.perf_counter() - start
            pixels = vae.decode(recon / LATENT_SCALE).sample.clamp(-1, 1)
            lat_psnr = psnr(recon, latents, float(latents.abs().max()) * 2)
            print(f"| {clip} | {name} | {lat_psnr:.2f} | {psnr(pixels, frames, 2.0):.2f} | {bound:.2f} | "
                  f"{seconds:.1f} | {mem.peak / 2**20:.0f} |")
        set_self_attention(unet, None)


if __name__ == "__main__":
    main()
