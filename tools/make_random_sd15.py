#!/usr/bin/env python3
"""Write the random-weight SD1.5 checkpoint the integration tests load.

    python tools/make_random_sd15.py --comfy .cache/ComfyUI-0.3.64 OUT.safetensors

ComfyUI must detect the file as SD15 and load it with its own classes, so the layout is the
original single-file one: ComfyUI's UNetModel under ``model.diffusion_model.``, its
AutoencoderKL under ``first_stage_model.`` and transformers' CLIP ViT-L/14 text encoder under
``cond_stage_model.transformer.``. The modules are built on the meta device (shapes only) and
every tensor is drawn on its own, in PyTorch's default initialisation for its layer type, then
stored as fp16: about 2 GiB on disk and little more than one tensor in RAM while writing.
The outputs are noise, but every code path and tensor shape is SD1.5's.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch

UNET_CONFIG = dict(use_checkpoint=False, image_size=32, in_channels=4, out_channels=4, model_channels=320,
                   num_res_blocks=[2, 2, 2, 2], channel_mult=[1, 2, 4, 4], num_heads=8, context_dim=768,
                   transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0], transformer_depth_middle=1,
                   transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
                   use_spatial_transformer=True, legacy=False, use_linear_in_transformer=False,
                   adm_in_channels=None, use_temporal_attention=False, use_temporal_resblock=False)
VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
CLIP_CONFIG = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                   num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                   projection_dim=768, bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
POSITION_IDS = "cond_stage_model.transformer.text_model.embeddings.position_ids"


def use_comfy(comfy_dir: Path) -> None:
    """Make ComfyUI at ``comfy_dir`` importable, on the CPU and without parsing this script's arguments."""
    sys.path.insert(0, str(comfy_dir))
    import comfy.options

    comfy.options.enable_args_parsing(False)
    from comfy.cli_args import args

    args.cpu = True


def meta_modules(comfy_dir: Path) -> dict[str, torch.nn.Module]:
    """The three parts of SD1.5 on the meta device, keyed by their prefix in the checkpoint."""
    use_comfy(comfy_dir)
    import comfy.ops
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        return {
            "model.diffusion_model.": UNetModel(**UNET_CONFIG, dtype=torch.float32,
                                                operations=comfy.ops.disable_weight_init),
            "first_stage_model.": AutoencoderKL(ddconfig=VAE_DDCONFIG, embed_dim=4),
            "cond_stage_model.transformer.": CLIPTextModel(CLIPTextConfig(**CLIP_CONFIG)),
        }


def default_init(module: torch.nn.Module, name: str, shape: torch.Size, gen: torch.Generator) -> torch.Tensor:
    """One parameter drawn the way ``reset_parameters`` of its layer type draws it."""
    if isinstance(module, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
        return torch.ones(shape) if name == "weight" else torch.zeros(shape)
    if isinstance(module, torch.nn.Embedding):
        return torch.randn(shape, generator=gen)
    if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
        fan_in = math.prod(module.weight.shape[1:])
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) for weights, the same bound for biases
        return torch.empty(shape).uniform_(-bound, bound, generator=gen)
    return torch.randn(shape, generator=gen) * 0.02


def random_state_dict(modules: dict[str, torch.nn.Module], seed: int) -> dict[str, torch.Tensor]:
    """Every parameter of every module drawn in fp32 and stored in fp16, one tensor at a time."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for prefix, model in modules.items():
        for module_name, module in model.named_modules():
            for name, param in module.named_parameters(recurse=False):
                key = f"{prefix}{module_name}.{name}" if module_name else f"{prefix}{name}"
                out[key] = default_init(module, name, param.shape, gen).to(torch.float16)
    return out


def save_safetensors(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """``state`` as a .safetensors file at ``path``, written to ``<path>.partial`` and renamed, so a stopped run
    never leaves a truncated model under the real name."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file({k: v.contiguous() for k, v in state.items()}, str(partial), metadata=metadata)
    os.replace(partial, path)


def write_each(tool: str, writers: tuple, comfy_dir: Path, seed: int) -> None:
    """Call each ``(path, write)`` whose path was given as ``write(path, comfy_dir, seed)``, timed; say what was
    written, or stop when no path was given."""
    if all(path is None for path, _ in writers):
        raise SystemExit(f"{tool}: nothing to write: pass at least one of its output options")
    for path, write in writers:
        if path is None:
            continue
        start = time.perf_counter()
        write(path, comfy_dir, seed)
        print(f"{tool}: {path} ({path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the .safetensors file to write (replaced atomically)")
    parser.add_argument("--comfy", type=Path, required=True, help="the ComfyUI folder whose classes give the layout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    state = random_state_dict(meta_modules(args.comfy.resolve()), args.seed)
    state[POSITION_IDS] = torch.arange(77, dtype=torch.int64).unsqueeze(0)
    save_safetensors(state, args.out, {"format": "pt", "note": "random weights, SD1.5 layout, for tests"})
    values = sum(t.numel() for t in state.values())
    print(f"make_random_sd15: {args.out} ({len(state)} tensors, {values / 1e6:.1f}M values, "
          f"{args.out.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
