#!/usr/bin/env python3
"""Write a small random-weight MoGe v1 in ComfyUI's ``geometry_estimation`` layout, FOR TESTING ONLY.

    python tools/make_random_moge.py --comfy .cache/ComfyUI-0.33.0 OUT.safetensors

The depth workflow (``drive_instance_edit_depth``) estimates depth with core's MoGe nodes
(ComfyUI 0.33 and newer), which load ``moge_1_vitl_fp16.safetensors`` (1.3 GB, a ViT-L).
This writes a file Load MoGe Model builds the same way (a DINOv2 backbone and MoGe v1's
head, sizes read from the tensors) but with a 4-layer, 128-wide backbone and a narrow head:
a few MB that run on a CPU in seconds. Built on the meta device from ComfyUI's own class and
drawn in each layer's default initialisation; the depth it predicts is noise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core_features import has_moge  # noqa: E402
from make_random_sd15 import random_state_dict, save_safetensors, use_comfy  # noqa: E402

BACKBONE = {"hidden_size": 128, "num_attention_heads": 2, "num_hidden_layers": 4, "layer_norm_eps": 1e-6,
            "use_swiglu_ffn": False}
DIM_UPSAMPLE = (32, 16, 16)
MASK_BIAS_KEY = "head.output_block.1.2.bias"
"""The mask head's last bias: set high, every pixel is valid geometry, so the depth map is finite noise
(random weights alone mark every pixel invalid and the rendered depth is all zero)."""


def write_random_moge(path: Path, comfy_dir: Path, seed: int = 0) -> None:
    """The small random MoGe v1 at ``path`` (a temp file, then renamed)."""
    use_comfy(comfy_dir.resolve())
    import comfy.ops
    from comfy.ldm.moge.model import MoGeModelV1

    with torch.device("meta"):
        model = MoGeModelV1(backbone=BACKBONE, dim_upsample=DIM_UPSAMPLE, operations=comfy.ops.disable_weight_init)
    state = random_state_dict({"": model}, seed)
    state[MASK_BIAS_KEY] = torch.full_like(state[MASK_BIAS_KEY], 8.0)
    state.update({name: buf for name, buf in (("image_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)),
                                              ("image_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)))})
    save_safetensors(state, path, {"note": "random weights, MoGe v1 layout (small), for tests"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the .safetensors file to write (replaced atomically)")
    parser.add_argument("--comfy", type=Path, required=True, help="a ComfyUI folder with core MoGe (0.33 or newer)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not has_moge(args.comfy):
        raise SystemExit(f"{args.comfy} has no core MoGe (comfy/ldm/moge): use ComfyUI 0.33 or newer")
    start = time.perf_counter()
    write_random_moge(args.out, args.comfy, args.seed)
    print(f"make_random_moge: {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB) in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
