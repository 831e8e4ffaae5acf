"""Video-model latents ``[B,C,T',h,w]`` in the pack's nodes: no RAVE grid, a console note when one was asked for.

Video models (Wan class) attend across frames themselves, and their latent is one clip,
not a batch of frames, so the grid shuffle has nothing to tile: on such a latent the grid
options are ignored (with a note, since the Masked-CFG Sampler's defaults ask for grids)
rather than refused.
"""

from __future__ import annotations

import logging

import torch

from .grid_wrapper import apply_grid_patch

log = logging.getLogger(__name__)

VIDEO_GRID_NOTE = ("%s: the latent is a video model's clip [B,C,T',h,w] (%s), whose model attends across frames "
                   "itself; grid_size %d / shuffle %s / max_grids_per_call %d are ignored (the whole clip goes "
                   "through the model in one call per step). Set grid_size 1 and shuffle off to silence this note.")


def is_video_latent(samples: torch.Tensor) -> bool:
    """Whether ``samples`` are a video model's latent ``[B,C,T',h,w]`` rather than image latents ``[T,C,h,w]``."""
    return samples.dim() == 5


def check_conditioning_frames(samples: torch.Tensor, **conditionings) -> None:
    """Refuse conditioning whose video latents (``[B,C,T,h,w]`` options such as Wan VACE's ``vace_frames`` or an
    image-to-video ``concat_latent_image``) span other latent frames than the latent the sampler edits.

    Wan VACE To Video's reference_image prepends a latent frame (its trim_latent) that an inverted source does not
    have; the model would fail deep in its blocks, so the count is checked here, where the fix can be named.
    """
    if not is_video_latent(samples):
        return
    frames = samples.shape[2]
    for name, conditioning in conditionings.items():
        for _, options in conditioning or ():
            for key, value in options.items():
                for tensor in value if isinstance(value, (list, tuple)) else (value,):
                    if isinstance(tensor, torch.Tensor) and tensor.dim() == 5 and tensor.shape[2] != frames:
                        raise ValueError(
                            f"the {name} conditioning's {key} spans {tensor.shape[2]} latent frames but the latent "
                            f"has {frames}: Wan VACE To Video's reference_image adds a frame the source does not have "
                            "(disconnect it), and its length must be the clip's frame count (connect Get Image Size's "
                            "batch_size)")


def grid_patch_for(model, samples: torch.Tensor, grid_size: int, shuffle: bool, seed: int, max_grids_per_call: int,
                   node: str):
    """``apply_grid_patch`` for image latents; ``model`` itself for a video latent (a note when grids were asked)."""
    if not is_video_latent(samples):
        return apply_grid_patch(model, grid_size, shuffle, seed, max_grids_per_call)
    if grid_size > 1 or shuffle or max_grids_per_call > 0:
        log.warning(VIDEO_GRID_NOTE, node, "x".join(map(str, samples.shape)), grid_size, shuffle, max_grids_per_call)
    return model
