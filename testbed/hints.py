"""Exact depth-like structure hints of the world: what a depth preprocessor would give a ControlNet.

The world is layered (background, then ``objects[0]``, ``objects[1]`` in front), so its
depth is known exactly: the background is 0 (far) and each object's *visible* silhouette
is a constant brightness by its layer, the front brighter (:data:`LAYER_DEPTH`). Edges keep
the renderer's anti-aliasing: a pixel holds ``sum_k depth_k * visible_coverage_k``. The hint
is ``[..., H, W, 3]`` float32 in 0..1 (the grey value in all three channels), the form a
ComfyUI IMAGE hint has; a recolour edit leaves it unchanged, so the source clip's hints
guide the edit.
"""

from __future__ import annotations

import numpy as np

from . import world

LAYER_DEPTH = (1.0, 0.6)
"""Brightness of the front object, then the one behind it (the world draws at most 2)."""


def depth_hint(alphas: np.ndarray) -> np.ndarray:
    """Visible coverage ``[K, ..., H, W]`` (``objects[-1]`` in front, occlusion applied) -> hint ``[..., H, W, 3]``."""
    alphas = np.asarray(alphas, dtype=np.float32)
    if alphas.shape[0] > len(LAYER_DEPTH):
        raise ValueError(f"depth_hint knows {len(LAYER_DEPTH)} layers, got {alphas.shape[0]} objects")
    depth = np.zeros(alphas.shape[1:], np.float32)
    for k in range(alphas.shape[0]):
        depth += LAYER_DEPTH[alphas.shape[0] - 1 - k] * alphas[k]
    return np.repeat(np.clip(depth, 0.0, 1.0)[..., None], 3, axis=-1)


def frame_hint(scene: world.Scene, t: int) -> np.ndarray:
    """Hint ``[H, W, 3]`` of frame ``t`` of ``scene`` (e.g. ``world.sample_image(seed)``'s ``.scene``, ``.t``)."""
    h, w = scene.size
    cover = np.stack([world.shape_coverage(o.shape, float(o.centres[t][0]), float(o.centres[t][1]),
                                           float(o.radii[t]), h, w) for o in scene.objects])
    return depth_hint(world.visible_coverage(cover))


def frames_hints(scene: world.Scene, times) -> np.ndarray:
    """Hints ``[len(times), H, W, 3]`` of the given frames of ``scene`` (``world.sample_frames``' scene and times)."""
    return np.stack([frame_hint(scene, int(t)) for t in times])


def clip_hints(clip: world.Clip) -> np.ndarray:
    """Per-frame hints ``[T, H, W, 3]`` of a rendered clip (``world.make_clip``), from its visible alphas."""
    return depth_hint(clip.alphas)
