"""Which newer core models a ComfyUI folder has, read from its files without importing it.

The stand-in makers (make_random_moge / _wan / _flux2), tools/make_stand_in_models.py and the
integration tests' weights ask here before building a model only ComfyUI 0.33 and newer define.
"""

from __future__ import annotations

from pathlib import Path


def has_moge(comfy_dir: Path) -> bool:
    """Core MoGe (comfy/ldm/moge; 0.33 and newer)."""
    return (comfy_dir / "comfy" / "ldm" / "moge" / "model.py").is_file()


def has_wan_vace(comfy_dir: Path) -> bool:
    """Core Wan VACE (VaceWanModel, and WanVaceToVideo in comfy_extras)."""
    return _defines(comfy_dir / "comfy" / "ldm" / "wan" / "model.py", "class VaceWanModel")


def has_flux2(comfy_dir: Path) -> bool:
    """Core FLUX.2 (supported_models.Flux2; 0.3.75 and newer)."""
    return _defines(comfy_dir / "comfy" / "supported_models.py", "class Flux2(")


def _defines(source: Path, text: str) -> bool:
    return source.is_file() and text in source.read_text()
