#!/usr/bin/env python3
"""Random-weight stand-ins under the official model file names, FOR TESTING ONLY.

    python tools/make_stand_in_models.py --models .cache/ComfyUI-0.3.64/models [--comfy .cache/ComfyUI-0.3.64]
    .venv-0.33/bin/python tools/make_stand_in_models.py --models .cache/ComfyUI-0.3.64/models \
        --comfy .cache/ComfyUI-0.33.0          # adds what only a newer core can build (MoGe, Wan VACE, FLUX.2)

The workflows name the real files (``v1-5-pruned-emaonly.safetensors``,
``sam2.1_hiera_tiny.pt``, ...). On a machine without them (CI, a first try on a CPU box)
this writes files of the same names and layouts with seeded random weights into a ComfyUI
models folder, so the README's main command runs end to end; the results are noise. Each
stand-in is listed in ``STAND_INS.txt`` in that folder, and a file that already exists
(a real model) is never touched. ``STAND_INS`` below is the registry: a workflow that uses
another model adds one row and a maker.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core_features import has_flux2, has_moge, has_wan_vace

ROOT = Path(__file__).resolve().parent.parent
NOTICE = "STAND_INS.txt"
RANDOM_SD15 = "sd15_random_fp16.safetensors"


@dataclass(frozen=True)
class StandIn:
    """One model file a workflow names: its folder under models/, its file name, how to make it."""

    folder: str
    name: str
    make: Callable[[Path, argparse.Namespace], None]
    needs_core: str = ""
    """Made only with a ComfyUI that has this (``moge``: core MoGe; ``wan_vace``: core Wan VACE; ``flux2``: core
    FLUX.2; all 0.33 and newer): its maker builds ComfyUI's own class. Empty: any core."""


def make_sd15(path: Path, args: argparse.Namespace) -> None:
    """The random SD1.5 checkpoint: a link to the test set-up's file when it exists, else written anew."""
    existing = path.parent / RANDOM_SD15
    if existing.is_file():
        os.symlink(existing.name, path)
        return
    if args.comfy is None:
        raise SystemExit(f"{existing} is absent: pass --comfy (the ComfyUI folder) to write a random SD1.5")
    sys.path.insert(0, str(ROOT / "tools"))
    import make_random_sd15

    make_random_sd15.main([str(path), "--comfy", str(args.comfy)])


def make_sam2_tiny(path: Path, args: argparse.Namespace) -> None:
    """A SAM 2.1 tiny checkpoint in the official ``.pt`` layout (``{"model": state_dict}``), seeded."""
    import torch

    sys.path.insert(0, str(ROOT))
    from drive_ops.masks.sam2_build import Sam2Variant, build_sam2_video_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_sam2_video_model(Sam2Variant("2.1", "tiny"))
    tmp = path.with_name(path.name + ".partial")
    torch.save({"model": model.state_dict()}, tmp)
    os.replace(tmp, path)


def make_canny_controlnet(path: Path, args: argparse.Namespace) -> None:
    """An SD1.5 ControlNet in the official ``.pth`` layout (tools/make_random_controlnet.py), seeded."""
    if args.comfy is None:
        raise SystemExit(f"pass --comfy (the ComfyUI folder) to write a random ControlNet as {path.name}")
    sys.path.insert(0, str(ROOT / "tools"))
    import make_random_controlnet

    make_random_controlnet.write_random_controlnet(path, args.comfy)


def make_depth_controlnet(path: Path, args: argparse.Namespace) -> None:
    """The depth ControlNet: a link to the Canny stand-in (same layout) when that is one, else a random one."""
    canny = path.parent / "control_v11p_sd15_canny.pth"
    notice = path.parent.parent / NOTICE
    if canny.exists() and notice.is_file() and f"controlnet/{canny.name}" in notice.read_text().splitlines():
        os.symlink(canny.name, path)
        return
    make_canny_controlnet(path, args)


def make_moge(path: Path, args: argparse.Namespace) -> None:
    """A small MoGe v1 in ComfyUI's geometry_estimation layout (tools/make_random_moge.py), seeded."""
    sys.path.insert(0, str(ROOT / "tools"))
    import make_random_moge

    make_random_moge.write_random_moge(path, args.comfy)


def make_wan(part: str) -> Callable[[Path, argparse.Namespace], None]:
    """A maker of one part (``vace``, ``vae``, ``lora``) of the small Wan 2.1 VACE (tools/make_random_wan.py)."""
    def make(path: Path, args: argparse.Namespace) -> None:
        sys.path.insert(0, str(ROOT / "tools"))
        import make_random_wan

        make_random_wan.main(["--comfy", str(args.comfy), f"--{part}", str(path)])
    return make


def make_flux2(part: str) -> Callable[[Path, argparse.Namespace], None]:
    """A maker of one part (``dit``, ``vae``) of the small FLUX.2 [klein] (tools/make_random_flux2.py)."""
    def make(path: Path, args: argparse.Namespace) -> None:
        sys.path.insert(0, str(ROOT / "tools"))
        import make_random_flux2

        make_random_flux2.main(["--comfy", str(args.comfy), f"--{part}", str(path)])
    return make


CORE_FEATURES = {"moge": ("core MoGe", has_moge), "wan_vace": ("core Wan VACE", has_wan_vace),
                 "flux2": ("core FLUX.2", has_flux2)}
"""What a ``needs_core`` names: its words, and whether a ComfyUI folder has it."""

STAND_INS = [
    StandIn("checkpoints", "v1-5-pruned-emaonly.safetensors", make_sd15),
    StandIn("sam2", "sam2.1_hiera_tiny.pt", make_sam2_tiny),
    StandIn("controlnet", "control_v11p_sd15_canny.pth", make_canny_controlnet),
    StandIn("controlnet", "control_v11f1p_sd15_depth.pth", make_depth_controlnet),
    StandIn("geometry_estimation", "moge_1_vitl_fp16.safetensors", make_moge, needs_core="moge"),
    StandIn("diffusion_models", "wan2.1_vace_14B_fp16.safetensors", make_wan("vace"), needs_core="wan_vace"),
    StandIn("vae", "wan_2.1_vae.safetensors", make_wan("vae"), needs_core="wan_vace"),
    StandIn("loras", "Wan21_CausVid_14B_T2V_lora_rank32.safetensors", make_wan("lora"), needs_core="wan_vace"),
    StandIn("diffusion_models", "flux-2-klein-4b.safetensors", make_flux2("dit"), needs_core="flux2"),
    StandIn("vae", "flux2-vae.safetensors", make_flux2("vae"), needs_core="flux2"),
]
"""Wan's text encoder (umt5_xxl_fp8_e4m3fn_scaled.safetensors, 6.7 GB) and FLUX.2 [klein]'s (qwen_3_4b.safetensors,
8 GB) have no stand-in: their vocabularies alone are hundreds of M values at the widths the DiTs read; the tests make
their conditioning directly."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, required=True, help="a ComfyUI models folder (the test set-up's)")
    ap.add_argument("--comfy", type=Path, help="the ComfyUI folder, to write a random SD1.5 (when none exists) "
                                               "and ControlNet")
    args = ap.parse_args(argv)
    made = []
    for stand_in in STAND_INS:
        path = args.models / stand_in.folder / stand_in.name
        if path.exists() or path.is_symlink():
            continue
        if stand_in.needs_core:
            words, has = CORE_FEATURES[stand_in.needs_core]
            if not (args.comfy and has(args.comfy)):
                print(f"make_stand_in_models: no {stand_in.folder}/{stand_in.name} (its maker needs a ComfyUI with "
                      f"{words}, 0.33 or newer, as --comfy)", file=sys.stderr)
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        stand_in.make(path, args)
        made.append(f"{stand_in.folder}/{stand_in.name}")
        print(f"make_stand_in_models: wrote {path} (random weights)", file=sys.stderr)
    if made:
        notice = args.models / NOTICE
        old = notice.read_text().splitlines() if notice.exists() else [
            "Random-weight stand-ins written by tools/make_stand_in_models.py for testing: their outputs are noise.",
            "Replace each with the real file (README, Models) to edit real videos."]
        notice.write_text("\n".join(old + made) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
