#!/usr/bin/env python3
"""Write small random-weight SD3 (MMDiT) and Flux.1 diffusion models and their 16-channel VAE, FOR TESTING ONLY.

    python tools/make_random_sd3_flux.py --comfy .cache/ComfyUI-0.33.0 --sd3 SD3.safetensors \
        --flux FLUX.safetensors --vae VAE.safetensors

Diffusion-model files (Load Diffusion Model) in the official layouts, so ComfyUI's own detection
reads them as SD3 and as Flux.1, but at CPU size:
- SD3: an MMDiT (``joint_blocks.*``) of depth 2, which the detection turns into a width of
  64 x depth = 128 with 2 heads; SD3's 2048-wide pooled text (``y_embedder``) and 4096-wide text
  (``context_embedder``), positions for up to 32 x 32 patches (``pos_embed``; SD3's: 192 x 192).
- Flux.1 [dev]: 1 double and 1 single block, 128 wide (one 128-dim head, the least ``img_in``'s
  width allows), guidance embedding, CLIP-L's 768-wide pooled text and T5-XXL's 4096-wide text.
  Only ComfyUI 0.33 and newer read Flux.1's width from the file; 0.3.64 fixes it at 3072 (a
  one-block file would be ~0.7 GB), so this tool refuses a core that would not detect the small one.
- VAE: SD3's and Flux.1's layout (the same: 16 latent channels, 8x, no quant convolutions, so
  ComfyUI builds its AutoencodingEngine). ComfyUI fixes the encoder's width at 128 (~68 MB in
  fp16); cores that read the decoder's width from ``decoder.conv_in`` (0.33) get a 32-wide decoder,
  older ones (0.3.64) the full 128-wide one (~160 MB in all).
Built on the meta device from ComfyUI's own classes and drawn in each layer's default
initialisation (norm scales 1); what they make is noise, with every shape the real model's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_random_sd15 import random_state_dict, save_safetensors, use_comfy, write_each  # noqa: E402


def sd3_dit_config(depth: int, positions: int) -> dict:
    """SD3 medium's MMDiT configuration as ComfyUI detects it, at ``depth`` blocks (64 x depth wide, depth heads) with
    positions for up to ``positions`` x ``positions`` patches (SD3 medium: depth 24, positions 192)."""
    return {"in_channels": 16, "out_channels": 16, "patch_size": 2, "depth": depth, "input_size": None,
            "adm_in_channels": 2048, "num_patches": positions ** 2, "pos_embed_max_size": positions,
            "pos_embed_scaling_factor": None, "x_block_self_attn_layers": [],
            "context_embedder_config": {"target": "torch.nn.Linear",
                                        "params": {"in_features": 4096, "out_features": 64 * depth}}}


SD3_DIT = sd3_dit_config(depth=2, positions=32)
"""SD3 medium's MMDiT layout at CPU size."""
SD3_TEXT_WIDTH, SD3_POOLED_WIDTH = 4096, 2048
FLUX_DIT = {"image_model": "flux", "in_channels": 16, "out_channels": 16, "vec_in_dim": 768, "context_in_dim": 4096,
            "hidden_size": 128, "mlp_ratio": 4.0, "num_heads": 1, "depth": 1, "depth_single_blocks": 1,
            "axes_dim": [16, 56, 56], "theta": 10000, "patch_size": 2, "qkv_bias": True, "guidance_embed": True,
            "txt_ids_dims": []}
"""Flux.1 [dev]'s layout at CPU size (the real one: 3072 wide, 19 double and 38 single blocks)."""
FLUX_TEXT_WIDTH, FLUX_POOLED_WIDTH = FLUX_DIT["context_in_dim"], FLUX_DIT["vec_in_dim"]
VAE_CONFIG = {"double_z": True, "z_channels": 16, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
              "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
"""ComfyUI's configuration for a 16-channel VAE file (comfy/sd.py): the width 128 is fixed."""
VAE_DECODER_WIDTH = 32
"""The decoder's base width where the core reads it from the file (the real one: 128)."""


def _checked(state: dict, detected: dict | None, expected: dict, family: str) -> dict:
    """``state`` when ComfyUI's detection gave ``expected`` for it, else stop naming what differs."""
    wrong = {k: (v, (detected or {}).get(k)) for k, v in expected.items() if (detected or {}).get(k, v) != v}
    if detected is None or wrong:
        raise SystemExit(f"this ComfyUI does not detect the small {family} as written (expected, detected): "
                         f"{wrong or detected}; use ComfyUI 0.33 or newer")
    return state


def write_random_sd3(path: Path, comfy_dir: Path, seed: int = 0) -> None:
    """The small random SD3 MMDiT at ``path``; ``pos_embed`` (a buffer: SD3's fixed sin-cos table) is drawn small."""
    use_comfy(comfy_dir.resolve())
    import comfy.model_detection
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT

    with torch.device("meta"):
        model = MMDiT(**SD3_DIT, operations=comfy.ops.disable_weight_init)
    state = random_state_dict({"": model}, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    state["pos_embed"] = (torch.randn(model.pos_embed.shape, generator=gen) * 0.02).half()
    detected = comfy.model_detection.detect_unet_config(state, "")
    _checked(state, detected, {k: v for k, v in SD3_DIT.items() if k != "context_embedder_config"}, "SD3")
    if comfy.model_detection.model_config_from_unet_config(detected, state).__class__.__name__ != "SD3":
        raise SystemExit("this ComfyUI does not match the small MMDiT to SD3")
    save_safetensors(state, path, {"note": "random weights, SD3 MMDiT layout (small), for tests"})


def write_random_flux(path: Path, comfy_dir: Path, seed: int = 0) -> None:
    """The small random Flux.1 [dev] transformer at ``path``; refused where the core would read it 3072 wide."""
    use_comfy(comfy_dir.resolve())
    import comfy.model_detection
    import comfy.ops
    from comfy.ldm.flux.model import Flux, FluxParams

    fields = set(FluxParams.__dataclass_fields__)
    config = {k: v for k, v in FLUX_DIT.items() if k in fields or k == "image_model"}
    with torch.device("meta"):
        model = Flux(**config, operations=comfy.ops.disable_weight_init)
    state = random_state_dict({"": model}, seed)
    state.update({k: torch.ones_like(v) for k, v in state.items() if k.endswith(("_norm.scale", "_norm.weight"))})
    detected = comfy.model_detection.detect_unet_config(state, "")
    save_safetensors(_checked(state, detected, config, "Flux.1"), path,
                     {"note": "random weights, Flux.1 [dev] layout (small), for tests"})


def write_random_vae(path: Path, comfy_dir: Path, seed: int = 0) -> None:
    """The random SD3 / Flux.1 VAE at ``path``: a narrow decoder where the core reads its width."""
    use_comfy(comfy_dir.resolve())
    from comfy.ldm.modules.diffusionmodules.model import Decoder, Encoder

    sd_source = (comfy_dir / "comfy" / "sd.py").read_text()
    decoder_width = VAE_DECODER_WIDTH if "decoder_ddconfig" in sd_source else VAE_CONFIG["ch"]
    with torch.device("meta"):
        parts = {"encoder.": Encoder(**VAE_CONFIG), "decoder.": Decoder(**{**VAE_CONFIG, "ch": decoder_width})}
    save_safetensors(random_state_dict(parts, seed), path,
                     {"note": f"random weights, SD3 / Flux.1 VAE layout (decoder {decoder_width} wide), for tests"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfy", type=Path, required=True, help="the ComfyUI folder whose classes give the layout")
    parser.add_argument("--sd3", type=Path, help="the SD3 diffusion model .safetensors to write (replaced atomically)")
    parser.add_argument("--flux", type=Path, help="the Flux.1 diffusion model .safetensors to write (ComfyUI 0.33+)")
    parser.add_argument("--vae", type=Path, help="the 16-channel VAE .safetensors to write (replaced atomically)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    writers = ((args.sd3, write_random_sd3), (args.flux, write_random_flux), (args.vae, write_random_vae))
    write_each("make_random_sd3_flux", writers, args.comfy, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
