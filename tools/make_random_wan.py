#!/usr/bin/env python3
"""Write a small random-weight Wan 2.1 VACE diffusion model and Wan 2.1 VAE, FOR TESTING ONLY.

    python tools/make_random_wan.py --comfy .cache/ComfyUI-0.33.0 --vace OUT.safetensors --vae VAE.safetensors \
        --lora LORA.safetensors

The Wan VACE workflow (``wan_vace_finish``) loads ``wan2.1_vace_14B_fp16.safetensors`` (Load
Diffusion Model), ``wan_2.1_vae.safetensors`` (Load VAE) and the CausVid LoRA (LoraLoaderModelOnly).
These files have their layouts
and ComfyUI 0.33's detection reads them the same way (a Wan 2.1 DiT with VACE blocks: sizes
from ``head.modulation``, ``blocks.*``, ``vace_blocks.*``; the Wan 2.1 VAE: its width from
``decoder.head.0.gamma``), but at CPU size: a 128-wide DiT (one 128-dim head, the least
the detection's ``dim // 128`` allows) with 2 blocks and 1 VACE block, a 16-wide VAE, and a
rank-4 LoRA on the DiT's attention and feed-forward layers (``diffusion_model.<layer>.lora_up/down``).
Built on the meta device from ComfyUI's own classes and drawn in each layer's default
initialisation; what they make is noise, with every shape and frame count Wan's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core_features import has_wan_vace  # noqa: E402
from make_random_sd15 import random_state_dict, save_safetensors, use_comfy, write_each  # noqa: E402

DIT = {"model_type": "vace", "patch_size": (1, 2, 2), "in_dim": 16, "dim": 128, "ffn_dim": 256, "freq_dim": 256,
       "text_dim": 4096, "out_dim": 16, "num_heads": 1, "num_layers": 2, "vace_layers": 1, "vace_in_dim": 96}
"""Wan 2.1 VACE's layout at CPU size: text_dim stays umt5-xxl's 4096 (the conditioning's width), vace_in_dim is
VACE's 2 x 16 latent channels of control video plus the 64 of the 8x8 mask."""
VAE_DIM = 16
"""The VAE's base width (the real one: 96); ComfyUI reads it from the file."""
LORA_RANK = 4
LORA_LAYERS = ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "cross_attn.q", "cross_attn.k",
               "cross_attn.v", "cross_attn.o", "ffn.0", "ffn.2")
"""The layers of each DiT block a CausVid-style LoRA adapts."""


def write_random_wan_vace(path: Path, comfy_dir: Path, seed: int = 0) -> None:
    """The small random Wan 2.1 VACE DiT at ``path`` (a temp file, then renamed)."""
    use_comfy(comfy_dir.resolve())
    import comfy.ops
    from comfy.ldm.wan.model import VaceWanModel

    with torch.device("meta"):
        model = VaceWanModel(**DIT, operations=comfy.ops.disable_weight_init)
    save_safetensors(random_state_dict({"": model}, seed), path,
                     {"note": "random weights, Wan 2.1 VACE layout (small), for tests"})


def write_random_wan_vae(path: Path, comfy_dir: Path, seed: int = 0) -> None:
    """The small random Wan 2.1 VAE at ``path``: RMS norm scales are 1 (drawn like other parameters they would
    shrink every activation 50-fold per norm)."""
    use_comfy(comfy_dir.resolve())
    from comfy.ldm.wan.vae import WanVAE

    with torch.device("meta"):
        model = WanVAE(dim=VAE_DIM, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                       temperal_downsample=[False, True, True], dropout=0.0)
    state = random_state_dict({"": model}, seed)
    state.update({k: torch.ones_like(v) for k, v in state.items() if k.endswith(".gamma")})
    save_safetensors(state, path, {"note": "random weights, Wan 2.1 VAE layout (small), for tests"})


def write_random_wan_lora(path: Path, comfy_dir: Path, seed: int = 0) -> None:
    """A small random LoRA for the DiT of ``write_random_wan_vace`` (down drawn, up small, alpha = rank)."""
    use_comfy(comfy_dir.resolve())
    import comfy.ops
    from comfy.ldm.wan.model import VaceWanModel

    with torch.device("meta"):
        model = VaceWanModel(**DIT, operations=comfy.ops.disable_weight_init)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for i, _ in enumerate(model.blocks):
        for layer in LORA_LAYERS:
            out_dim, in_dim = model.get_submodule(f"blocks.{i}.{layer}").weight.shape
            key = f"diffusion_model.blocks.{i}.{layer}"
            state[f"{key}.lora_down.weight"] = torch.randn(LORA_RANK, in_dim, generator=gen).half() / in_dim ** 0.5
            state[f"{key}.lora_up.weight"] = (torch.randn(out_dim, LORA_RANK, generator=gen) * 0.01).half()
            state[f"{key}.alpha"] = torch.tensor(float(LORA_RANK)).half()
    save_safetensors(state, path, {"note": "random weights, a LoRA for the small Wan 2.1 layout, for tests"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfy", type=Path, required=True, help="a ComfyUI folder with core Wan VACE (0.33 or newer)")
    parser.add_argument("--vace", type=Path, help="the diffusion model .safetensors to write (replaced atomically)")
    parser.add_argument("--vae", type=Path, help="the VAE .safetensors to write (replaced atomically)")
    parser.add_argument("--lora", type=Path, help="the LoRA .safetensors to write (replaced atomically)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not has_wan_vace(args.comfy):
        raise SystemExit(f"{args.comfy} has no core Wan VACE (comfy/ldm/wan/model.py VaceWanModel): use ComfyUI 0.33 "
                         "or newer")
    writers = ((args.vace, write_random_wan_vace), (args.vae, write_random_wan_vae), (args.lora, write_random_wan_lora))
    write_each("make_random_wan", writers, args.comfy, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
