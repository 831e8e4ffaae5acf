#!/usr/bin/env python3
"""Write a random-weight SD1.5 ControlNet in the official ``.pth`` layout, FOR TESTING ONLY.

    python tools/make_random_controlnet.py --comfy .cache/ComfyUI-0.3.64 OUT.pth

The main workflow applies ``control_v11p_sd15_canny.pth``; without the real file the runner
and the integration tests need one ComfyUI's ControlNetLoader detects as an SD1.5 ControlNet
(``control_model.*`` keys, 3-channel pixel hints) and whose outputs fit SD1.5's UNet. The
module is built on the meta device from ComfyUI's own class with SD1.5's UNet config
(tools/make_random_sd15.py) and every tensor drawn in its layer's default initialisation,
stored as fp16: about 0.7 GB. The hints it adds are noise, but every code path is the real one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_random_sd15 import UNET_CONFIG, random_state_dict, use_comfy  # noqa: E402

PREFIX = "control_model."


def meta_controlnet(comfy_dir: Path) -> dict[str, torch.nn.Module]:
    """SD1.5's ControlNet on the meta device, keyed by its prefix in the official .pth files."""
    use_comfy(comfy_dir)
    import comfy.ops
    from comfy.cldm.cldm import ControlNet

    config = {k: v for k, v in UNET_CONFIG.items() if k != "out_channels"}
    with torch.device("meta"):
        return {PREFIX: ControlNet(**config, hint_channels=3, dtype=torch.float32,
                                   operations=comfy.ops.disable_weight_init)}


def write_random_controlnet(path: Path, comfy_dir: Path, seed: int = 0) -> None:
    """The random ControlNet at ``path`` (written to a temp file, then renamed)."""
    state = random_state_dict(meta_controlnet(comfy_dir.resolve()), seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the .pth file to write (replaced atomically)")
    parser.add_argument("--comfy", type=Path, required=True, help="the ComfyUI folder whose classes give the layout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    write_random_controlnet(args.out, args.comfy, args.seed)
    print(f"make_random_controlnet: {args.out} ({args.out.stat().st_size / 2**30:.2f} GiB) in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
