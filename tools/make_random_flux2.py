#!/usr/bin/env python3
"""Write a small random-weight FLUX.2 [klein] diffusion model and FLUX.2 VAE, FOR TESTING ONLY.

    python tools/make_random_flux2.py --comfy .cache/ComfyUI-0.33.0 --dit OUT.safetensors --vae VAE.safetensors

The flow-model workflow (``drive_flow_edit``) loads ``flux-2-klein-4b.safetensors`` (Load Diffusion
Model) and ``flux2-vae.safetensors`` (Load VAE), as the official FLUX.2 [klein] templates do. These
files have their layouts and ComfyUI 0.33's detection reads them the same way (a FLUX.2 transformer:
``double_stream_modulation_img``, width from ``img_in``, heads = width / 128, block counts from the
keys, text width from ``txt_in``; the VAE: 32 latent channels from ``decoder.conv_in`` and the
latent batch norm ``bn.*`` that makes ComfyUI's 128-channel, 16x latents; quant convolutions, so
ComfyUI builds its AutoencoderKL), but at CPU size: a
128-wide transformer (one 128-dim head, the least the detection allows) with 1 double and 1 single
block reading klein 4B's 7680-wide text (Qwen3-4B, three layers of 2560), and a VAE whose decoder
is 32 wide (the encoder's width is fixed by ComfyUI at 128). Built on the meta device from
ComfyUI's own classes and drawn in each layer's default initialisation; what they make is noise,
with every shape FLUX.2's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core_features import has_flux2  # noqa: E402
from make_random_sd15 import random_state_dict, save_safetensors, use_comfy, write_each  # noqa: E402

DIT = {"image_model": "flux2", "in_channels": 128, "out_channels": 128, "vec_in_dim": None, "context_in_dim": 7680,
       "hidden_size": 128, "mlp_ratio": 3.0, "num_heads": 1, "depth": 1, "depth_single_blocks": 1,
       "axes_dim": [32, 32, 32, 32], "theta": 2000, "patch_size": 1, "qkv_bias": False, "guidance_embed": False,
       "txt_ids_dims": [3], "global_modulation": True, "mlp_silu_act": True, "ops_bias": False,
       "default_ref_method": "index", "ref_index_scale": 10.0}
"""FLUX.2 [klein] 4B's layout at CPU size (the real one: 3072 wide, 5 double and 20 single blocks); the latent is
the VAE's 32 channels patchified 2x2 (128), the text klein 4B's Qwen3-4B taps (3 x 2560)."""
TEXT_WIDTH = DIT["context_in_dim"]
VAE_ENCODER = {"double_z": True, "z_channels": 32, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
               "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
               "batch_norm_latent": True}
"""ComfyUI's configuration for a FLUX.2 VAE file (comfy/sd.py): the encoder's width is fixed at 128."""
VAE_DECODER_WIDTH = 32
"""The decoder's base width (the real one: 128); ComfyUI reads it from ``decoder.conv_in``."""


def write_random_flux2_dit(path: Path, comfy_dir: Path, seed: int = 0) -> None:
    """The small random FLUX.2 transformer at ``path`` (a temp file, then renamed); checked against ComfyUI's own
    detection before it is written."""
    use_comfy(comfy_dir.resolve())
    import comfy.model_detection
    import comfy.ops
    from comfy.ldm.flux.model import Flux

    with torch.device("meta"):
        model = Flux(**DIT, operations=comfy.ops.disable_weight_init)
    state = random_state_dict({"": model}, seed)
    detected = comfy.model_detection.detect_unet_config(state, "")
    wrong = {k: (v, detected.get(k)) for k, v in DIT.items() if k in detected and detected[k] != v}
    if detected.get("image_model") != "flux2" or wrong:
        raise SystemExit(f"ComfyUI does not detect the small FLUX.2 as written: {wrong or detected}")
    save_safetensors(state, path, {"note": "random weights, FLUX.2 [klein] layout (small), for tests"})


def write_random_flux2_vae(path: Path, comfy_dir: Path, seed: int = 0) -> None:
    """The small random FLUX.2 VAE at ``path``: the latent batch norm's statistics are the identity (mean 0,
    variance 1), which the random state would not give (they are buffers, not parameters)."""
    use_comfy(comfy_dir.resolve())
    from comfy.ldm.models.autoencoder import AutoencoderKL

    with torch.device("meta"):
        model = AutoencoderKL(ddconfig=VAE_ENCODER, embed_dim=VAE_ENCODER["z_channels"],
                              decoder_ddconfig={**VAE_ENCODER, "ch": VAE_DECODER_WIDTH})
    state = random_state_dict({"": model}, seed)
    channels = model.bn.num_features
    state.update({"bn.running_mean": torch.zeros(channels), "bn.running_var": torch.ones(channels),
                  "bn.num_batches_tracked": torch.tensor(0)})
    save_safetensors(state, path, {"note": "random weights, FLUX.2 VAE layout (small decoder), for tests"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfy", type=Path, required=True, help="a ComfyUI folder with core FLUX.2 (0.33 or newer)")
    parser.add_argument("--dit", type=Path, help="the diffusion model .safetensors to write (replaced atomically)")
    parser.add_argument("--vae", type=Path, help="the VAE .safetensors to write (replaced atomically)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not has_flux2(args.comfy):
        raise SystemExit(f"{args.comfy} has no core FLUX.2 (comfy/supported_models.py Flux2): use ComfyUI 0.33 or "
                         "newer")
    writers = ((args.dit, write_random_flux2_dit), (args.vae, write_random_flux2_vae))
    write_each("make_random_flux2", writers, args.comfy, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
