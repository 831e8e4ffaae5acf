"""Random-weight model files with the real layouts, written by the integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tools.core_features import has_flux2, has_moge, has_wan_vace


def write_random_sam2(path: Path) -> None:
    """A SAM 2.1 tiny state dict (image_size 256) with seeded random weights: .safetensors, or the
    official ``.pt`` layout (``{"model": state_dict}``) when ``path`` ends in .pt."""
    pytest.importorskip("sam2")
    from safetensors.torch import save_file

    from drive_ops.masks.sam2_build import Sam2Variant, build_sam2_video_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_sam2_video_model(Sam2Variant("2.1", "tiny"), image_size=256)
    if path.suffix == ".pt":
        torch.save({"model": model.state_dict()}, path)
    else:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def provide_random_controlnet(models_dir: Path, comfy_dir: Path, name: str) -> None:
    """``name`` in ``models_dir``/controlnet: ComfyUI's own controlnet folder's file when it has one, else
    a random SD1.5 ControlNet (tools/make_random_controlnet.py, ~0.7 GB, written in a subprocess so this
    process never imports comfy)."""
    target = models_dir / "controlnet" / name
    if target.exists() or (comfy_dir / "models" / "controlnet" / name).exists():
        return
    run_maker("make_random_controlnet.py", comfy_dir, target)


def run_maker(tool: str, comfy_dir: Path, *outputs) -> None:
    """Run ``tools/<tool> --comfy comfy_dir *outputs`` under ComfyUI's python (in a subprocess: this process never
    imports comfy)."""
    import os
    import subprocess
    import sys

    path = Path(__file__).resolve().parents[2] / "tools" / tool
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    done = subprocess.run([python, str(path), "--comfy", str(comfy_dir), *map(str, outputs)], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def provide_parts(tool: str, files: dict[str, tuple[str, str]], models_dir: Path, comfy_dir: Path) -> None:
    """The parts of ``files`` ({tool option: (folder, name)}) that ``models_dir`` lacks, written by one run of
    ``tools/<tool>``."""
    args = []
    for part, (folder, name) in files.items():
        if not (models_dir / folder / name).exists():
            args += [f"--{part}", models_dir / folder / name]
    if args:
        run_maker(tool, comfy_dir, *args)


DEPTH_CONTROLNET = "control_v11f1p_sd15_depth.pth"
MOGE_FILE = "moge_1_vitl_fp16.safetensors"


def provide_depth_stand_ins(models_dir: Path, comfy_dir: Path, controlnet: str) -> None:
    """What the depth workflow names: the depth ControlNet as a link to the random ``controlnet`` (same layout),
    and, on a core with MoGe, a small random MoGe (tools/make_random_moge.py)."""
    depth = models_dir / "controlnet" / DEPTH_CONTROLNET
    if not (depth.exists() or (comfy_dir / "models" / "controlnet" / DEPTH_CONTROLNET).exists()):
        source = models_dir / "controlnet" / controlnet
        depth.symlink_to(source if source.exists() else comfy_dir / "models" / "controlnet" / controlnet)
    moge = models_dir / "geometry_estimation" / MOGE_FILE
    if not moge.exists() and has_moge(comfy_dir):
        run_maker("make_random_moge.py", comfy_dir, moge)


WAN_FILES = {"vace": ("diffusion_models", "wan2.1_vace_14B_fp16.safetensors"),
             "vae": ("vae", "wan_2.1_vae.safetensors"),
             "lora": ("loras", "Wan21_CausVid_14B_T2V_lora_rank32.safetensors")}
"""The Wan VACE workflow's files the tests stand in (tools/make_random_wan.py's parts); its text encoder is
replaced by a conditioning node instead."""


def provide_wan_stand_ins(models_dir: Path, comfy_dir: Path) -> None:
    """On a core with Wan VACE (0.33 and newer): the small random Wan 2.1 VACE DiT, VAE and LoRA under the official
    names (tools/make_random_wan.py), unless the files are there."""
    if has_wan_vace(comfy_dir):
        provide_parts("make_random_wan.py", WAN_FILES, models_dir, comfy_dir)


FLUX2_FILES = {"dit": ("diffusion_models", "flux-2-klein-4b.safetensors"), "vae": ("vae", "flux2-vae.safetensors")}
"""The flow-model workflow's files the tests stand in (tools/make_random_flux2.py's parts); its text encoder
(Qwen3-4B) is replaced by a conditioning node instead."""


def provide_flux2_stand_ins(models_dir: Path, comfy_dir: Path) -> None:
    """On a core with FLUX.2 (0.33 and newer): the small random FLUX.2 [klein] transformer and FLUX.2 VAE under the
    official names (tools/make_random_flux2.py), unless the files are there."""
    if has_flux2(comfy_dir):
        provide_parts("make_random_flux2.py", FLUX2_FILES, models_dir, comfy_dir)
