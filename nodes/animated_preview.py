"""An animated preview of a frame batch, shown in the node itself (ComfyUI's UI output "images" + "animated").

Mask Preview writes its overlay here so the user sees the tracked mask play in the node
without a Save Video; the file goes to ComfyUI's temp folder (cleared at start-up) through
``folder_paths.get_save_image_path``, as core's previews do.
"""

from __future__ import annotations

import os

import folder_paths
import torch
from comfy_api.latest import io, ui
from PIL import Image

PREVIEW_LONGER_SIDE = 512
"""Frames larger than this are scaled down for every preview the pack shows (core's default --preview-size):
they are for checking, not for keeping."""


def preview_frames(images: torch.Tensor, longer_side: int = PREVIEW_LONGER_SIDE) -> list[Image.Image]:
    """IMAGE ``[T,H,W,3]`` (0..1) -> PIL frames, scaled so the longer side is at most ``longer_side``."""
    frames = images[..., :3].float().clamp(0, 1)
    h, w = frames.shape[1:3]
    scale = min(1.0, longer_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        frames = torch.nn.functional.interpolate(frames.movedim(-1, 1), size=size, mode="area").movedim(1, -1)
    data = (frames * 255).round().to(torch.uint8).cpu().numpy()
    return [Image.fromarray(frame) for frame in data]


def animated_preview(images: torch.Tensor, fps: float, prefix: str = "DRIVE/preview") -> ui.SavedImages:
    """Save ``images`` ``[T,H,W,3]`` as one animated WEBP in the temp folder and return the node's UI output."""
    frames = preview_frames(images)
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        prefix, folder_paths.get_temp_directory(), frames[0].width, frames[0].height)
    file = f"{name}_{counter:05}_.webp"
    frames[0].save(os.path.join(folder, file), save_all=True, append_images=frames[1:],
                   duration=max(1, round(1000.0 / fps)), loop=0, quality=80, method=4)
    return ui.SavedImages([ui.SavedResult(file, subfolder, io.FolderType.temp)], is_animated=len(frames) > 1)
