"""The synthetic world: seeded clips of coloured shapes moving over a textured background.

Everything here is deterministic from a seed (numpy's PCG64 via ``default_rng``) and made by
code, so no dataset is stored. A clip is rendered from a :class:`Scene`:

- a static background: one of :data:`BACKGROUND_COLOURS` and one of :data:`TEXTURES`
  (plain, soft stripes, soft checks, a linear gradient, or low-frequency "noise" made of a
  few plane waves); textures blend the colour with a darker tone of it;
- 1-2 objects, each one of :data:`OBJECT_COLOURS` (never the background's colour name, never
  the other object's colour) and one of :data:`SHAPES` (ball, square, triangle, star;
  upright, never rotated), moving along a straight line at constant velocity and scaling
  linearly; the later object in ``Scene.objects`` is drawn in front. Two-object clips make
  the objects cross (one passes behind the other) about half of the time.

Pixel coordinates: pixel ``[i, j]`` (row, column) has its centre at ``x = j + 0.5``,
``y = i + 0.5``; object centres and flow are in pixels, ``(x, y)`` order. Edges are
anti-aliased (coverage ``clip(0.5 - signed_distance, 0, 1)``), so masks come both as soft
coverage (``Clip.alphas``) and as the exact binary masks ``coverage >= 0.5``
(``Clip.masks``).

Seeds ``0 <= seed < HELDOUT_START`` are the training split, seeds from
:data:`HELDOUT_START` on are held out (tests and quality checks use those).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

# The palette, defined once: names are the caption words, values linear RGB in [0, 1].
OBJECT_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.92, 0.14, 0.12),
    "yellow": (0.96, 0.84, 0.12),
    "green": (0.16, 0.78, 0.22),
    "blue": (0.14, 0.30, 0.96),
    "purple": (0.62, 0.18, 0.84),
    "white": (0.96, 0.96, 0.96),
}
# Background colours are muted and darker than every object colour; a texture blends the
# colour (weight 0) with BACKGROUND_DARK times it (weight 1).
BACKGROUND_COLOURS: dict[str, tuple[float, float, float]] = {
    "blue": (0.20, 0.30, 0.52),
    "green": (0.22, 0.42, 0.26),
    "gray": (0.44, 0.44, 0.44),
    "brown": (0.46, 0.32, 0.20),
}
BACKGROUND_DARK = 0.5
SHAPES: tuple[str, ...] = ("ball", "square", "triangle", "star")
TEXTURES: tuple[str, ...] = ("plain", "striped", "checkered", "gradient", "noisy")

HELDOUT_START = 1_000_000_000
"""Seeds below this are the training split; seeds from here on are held out."""

# Sizes are given for a 64 px frame and scale with min(H, W) / 64.
RADIUS_RANGE = (9.0, 15.0)         # object radius (the "scale"; a ball's radius)
SCALE_CHANGE = (0.8, 1.25)         # radius at the last frame / radius at the first
SPEED_RANGE = (0.25, 1.25)         # pixels per frame
STRIPE_PERIOD = (14.0, 22.0)
CHECK_PERIOD = (16.0, 26.0)
NOISE_WAVELENGTH = (24.0, 64.0)
ONE_OBJECT_P = 0.6                 # chance of one object when n_objects is None
CROSSING_P = 0.5                   # chance that two objects cross (occlude) when occlusion is None


def _unit(size: int | tuple[int, int]) -> tuple[int, int, float]:
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 16 or w < 16:
        raise ValueError(f"frames must be at least 16x16 pixels, got {h}x{w}")
    return h, w, min(h, w) / 64.0


# ---------------------------------------------------------------------------- scene spec

@dataclass(frozen=True, eq=False)
class Background:
    """A static background: colour name, texture name and the texture's parameters (pixels)."""
    colour: str
    texture: str
    angle: float = 0.0                 # radians: stripe normal / gradient direction / check axes
    period: float = 16.0               # stripes and checks
    phase: tuple[float, float] = (0.0, 0.0)
    waves: tuple[tuple[float, float, float, float], ...] = ()  # noisy: (kx, ky, phase, amplitude)


@dataclass(frozen=True, eq=False)
class ObjectTrack:
    """One object through a clip: colour and shape names, per-frame centre ``[T, 2]`` (x, y) and radius ``[T]``."""
    colour: str
    shape: str
    centres: np.ndarray
    radii: np.ndarray

    @property
    def name(self) -> str:
        """``"red ball"``."""
        return f"{self.colour} {self.shape}"

    @property
    def velocities(self) -> np.ndarray:
        """Centre displacement from frame t to t+1, ``[T-1, 2]`` pixels (constant along a track)."""
        return np.diff(self.centres, axis=0)

    @property
    def scale_rates(self) -> np.ndarray:
        """``radius[t+1] / radius[t]``, ``[T-1]``."""
        return self.radii[1:] / self.radii[:-1]


@dataclass(frozen=True, eq=False)
class Scene:
    """What a clip shows; :func:`render_clip` turns it into pixels. ``objects[-1]`` is in front."""
    size: tuple[int, int]
    background: Background
    objects: tuple[ObjectTrack, ...]
    seed: int | None = None

    @property
    def frames(self) -> int:
        return int(self.objects[0].centres.shape[0])

    @property
    def caption(self) -> str:
        return caption_for([(o.colour, o.shape) for o in self.objects], self.background.colour,
                           self.background.texture)

    def replace_object(self, index: int, colour: str | None = None, shape: str | None = None) -> "Scene":
        """The same scene with object ``index`` recoloured and/or reshaped (same motion): an edit's ground truth."""
        if colour is not None and colour not in OBJECT_COLOURS:
            raise ValueError(f"unknown object colour {colour!r}; known: {sorted(OBJECT_COLOURS)}")
        if shape is not None and shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")
        objects = list(self.objects)
        old = objects[index]
        objects[index] = dataclasses.replace(old, colour=colour or old.colour, shape=shape or old.shape)
        return dataclasses.replace(self, objects=tuple(objects))

    def replace_background(self, colour: str | None = None, texture: str | None = None) -> "Scene":
        """The same scene on another background colour and/or texture (texture parameters kept)."""
        if colour is not None and colour not in BACKGROUND_COLOURS:
            raise ValueError(f"unknown background colour {colour!r}; known: {sorted(BACKGROUND_COLOURS)}")
        if texture is not None and texture not in TEXTURES:
            raise ValueError(f"unknown texture {texture!r}; known: {TEXTURES}")
        bg = dataclasses.replace(self.background, colour=colour or self.background.colour,
                                 texture=texture or self.background.texture)
        return dataclasses.replace(self, background=bg)


def caption_for(objects: list[tuple[str, str]], background_colour: str | None = None,
                texture: str | None = None) -> str:
    """``[("red", "ball")], "blue", "striped"`` -> ``"a red ball on a blue striped background"``.

    Without a background colour the caption is the object phrase alone (``"a red ball"``).
    """
    phrase = " and ".join(f"a {colour} {shape}" for colour, shape in objects)
    if background_colour is None:
        return phrase
    return f"{phrase} on a {background_colour} {texture} background"


# ---------------------------------------------------------------------------- sampling

def _object_bounds(h: int, w: int, r_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Box for object centres: the object's radius stays inside the frame (star tips may poke out)."""
    lo = np.array([r_max, r_max])
    hi = np.array([w - r_max, h - r_max])
    return lo, np.maximum(hi, lo + 1e-3)


def _travel_to_edge(start: np.ndarray, direction: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """How far one can go from ``start`` along the unit ``direction`` inside the box."""
    limits = []
    for k in range(2):
        if direction[k] > 1e-9:
            limits.append((hi[k] - start[k]) / direction[k])
        elif direction[k] < -1e-9:
            limits.append((lo[k] - start[k]) / direction[k])
    return max(0.0, min(limits)) if limits else 0.0


def _sample_radii(rng: np.random.Generator, frames: int, unit: float) -> np.ndarray:
    r_lo, r_hi = RADIUS_RANGE[0] * unit, RADIUS_RANGE[1] * unit
    r0 = rng.uniform(r_lo, r_hi)
    r1 = float(np.clip(r0 * rng.uniform(*SCALE_CHANGE), r_lo, r_hi))
    return np.linspace(r0, r1, frames)


def _free_track(rng: np.random.Generator, frames: int, h: int, w: int, unit: float,
                radii: np.ndarray) -> np.ndarray:
    lo, hi = _object_bounds(h, w, float(radii.max()))
    start = rng.uniform(lo, hi)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    direction = np.array([math.cos(angle), math.sin(angle)])
    speed = rng.uniform(*SPEED_RANGE) * unit
    travel = min(speed * max(frames - 1, 1), _travel_to_edge(start, direction, lo, hi))
    steps = np.arange(frames)[:, None] / max(frames - 1, 1)
    return start[None, :] + steps * (travel * direction)[None, :]


def _crossing_tracks(rng: np.random.Generator, frames: int, h: int, w: int, unit: float,
                     radii: list[np.ndarray]) -> list[np.ndarray]:
    """The back object drifts slowly; the front one crosses the whole frame through the back
    object's position at the meeting frame, so it passes over it."""
    lo, hi = _object_bounds(h, w, float(max(r.max() for r in radii)))
    meet = rng.uniform(lo + 0.25 * (hi - lo), hi - 0.25 * (hi - lo))
    angle = rng.uniform(0.0, 2.0 * math.pi)
    direction = np.array([math.cos(angle), math.sin(angle)])
    start = meet - _travel_to_edge(meet, -direction, lo, hi) * direction
    end = meet + _travel_to_edge(meet, direction, lo, hi) * direction
    steps = np.arange(frames)[:, None] / max(frames - 1, 1)
    front = start[None, :] + steps * (end - start)[None, :]
    t_meet = (frames - 1) * float(np.linalg.norm(meet - start) / max(np.linalg.norm(end - start), 1e-9))
    b_angle = rng.uniform(0.0, 2.0 * math.pi)
    b_dir = np.array([math.cos(b_angle), math.sin(b_angle)])
    speed = rng.uniform(0.0, SPEED_RANGE[0]) * unit
    speed = min(speed, _travel_to_edge(meet, b_dir, lo, hi) / max(frames - 1 - t_meet, 1e-6),
                _travel_to_edge(meet, -b_dir, lo, hi) / max(t_meet, 1e-6))
    back = meet[None, :] + (np.arange(frames)[:, None] - t_meet) * (speed * b_dir)[None, :]
    return [back, front]


def _sample_background(rng: np.random.Generator, unit: float, colour: str | None = None,
                       texture: str | None = None) -> Background:
    colour = colour or str(rng.choice(sorted(BACKGROUND_COLOURS)))
    texture = texture or str(rng.choice(TEXTURES))
    angle = float(rng.uniform(0.0, math.pi))
    phase = (float(rng.uniform()), float(rng.uniform()))
    if texture == "checkered":
        period = float(rng.uniform(*CHECK_PERIOD) * unit)
    else:
        period = float(rng.uniform(*STRIPE_PERIOD) * unit)
    waves = []
    for _ in range(4):
        wl = rng.uniform(*NOISE_WAVELENGTH) * unit
        a = rng.uniform(0.0, 2.0 * math.pi)
        waves.append((float(2 * math.pi / wl * math.cos(a)), float(2 * math.pi / wl * math.sin(a)),
                      float(rng.uniform(0.0, 2 * math.pi)), float(rng.uniform(0.5, 1.0))))
    return Background(colour, texture, angle, period, phase, tuple(waves))


def sample_scene(seed: int, frames: int = 16, size: int | tuple[int, int] = 64, n_objects: int | None = None,
                 occlusion: bool | None = None) -> Scene:
    """A random scene from ``seed``: background, 1-2 objects, their straight-line motion and scaling.

    ``n_objects`` None draws 1 (60%) or 2; ``occlusion`` None makes two objects cross half
    of the time, True always, False leaves their paths independent (they may still overlap).
    """
    if not 1 <= frames <= 1024:
        raise ValueError(f"frames must be in 1..1024, got {frames}")
    h, w, unit = _unit(size)
    rng = np.random.default_rng(seed)
    background = _sample_background(rng, unit)
    if n_objects is None:
        n_objects = 1 if rng.uniform() < ONE_OBJECT_P else 2
    if n_objects not in (1, 2):
        raise ValueError(f"n_objects must be 1 or 2, got {n_objects}")
    palette = [c for c in sorted(OBJECT_COLOURS) if c != background.colour]
    colours = [str(c) for c in rng.choice(palette, size=n_objects, replace=False)]
    shapes = [str(rng.choice(SHAPES)) for _ in range(n_objects)]
    radii = [_sample_radii(rng, frames, unit) for _ in range(n_objects)]
    cross = rng.uniform() < CROSSING_P
    if occlusion is not None:
        cross = bool(occlusion)
    if n_objects == 2 and cross and frames > 1:
        centres = _crossing_tracks(rng, frames, h, w, unit, radii)
    else:
        centres = [_free_track(rng, frames, h, w, unit, r) for r in radii]
    objects = tuple(ObjectTrack(c, s, p.astype(np.float64), r.astype(np.float64))
                    for c, s, p, r in zip(colours, shapes, centres, radii))
    return Scene((h, w), background, objects, seed)


# ---------------------------------------------------------------------------- rendering

def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return xs + 0.5, ys + 0.5


def _soft_square_wave(u: np.ndarray, sharpness: float = 2.5) -> np.ndarray:
    """A square wave in [-1, 1] with soft (a few pixels wide) edges; period 1 in ``u``."""
    return np.clip(sharpness * np.sin(2.0 * math.pi * u), -1.0, 1.0)


def background_weight(bg: Background, h: int, w: int) -> np.ndarray:
    """The texture as a weight ``[H, W]`` in [0, 1]: 0 is the colour, 1 its dark tone."""
    x, y = _grid(h, w)
    c, s = math.cos(bg.angle), math.sin(bg.angle)
    u, v = x * c + y * s, -x * s + y * c
    if bg.texture == "plain":
        return np.zeros((h, w))
    if bg.texture == "striped":
        return 0.5 + 0.5 * _soft_square_wave(u / bg.period + bg.phase[0])
    if bg.texture == "checkered":
        g = _soft_square_wave(u / bg.period + bg.phase[0]) * _soft_square_wave(v / bg.period + bg.phase[1])
        return 0.5 + 0.5 * g
    if bg.texture == "gradient":
        corners = [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h)]
        proj = [px * c + py * s for px, py in corners]
        return np.clip((u - min(proj)) / (max(proj) - min(proj)), 0.0, 1.0)
    if bg.texture == "noisy":
        total = sum(a for *_, a in bg.waves)
        field = sum(a * np.sin(kx * x + ky * y + ph) for kx, ky, ph, a in bg.waves)
        return np.clip(0.5 + 0.8 * field / total, 0.0, 1.0)
    raise ValueError(f"unknown texture {bg.texture!r}; known: {TEXTURES}")


def render_background(bg: Background, h: int, w: int) -> np.ndarray:
    """``[H, W, 3]`` float64 background image."""
    colour = np.asarray(BACKGROUND_COLOURS[bg.colour])
    weight = background_weight(bg, h, w)[..., None]
    return colour * (1.0 - (1.0 - BACKGROUND_DARK) * weight)


def shape_polygon(shape: str, cx: float, cy: float, r: float) -> np.ndarray | None:
    """Vertices ``[N, 2]`` (x, y) of an upright polygon shape, or None for the ball."""
    if shape == "ball":
        return None
    if shape == "square":
        a = 0.86 * r
        return np.array([[cx - a, cy - a], [cx + a, cy - a], [cx + a, cy + a], [cx - a, cy + a]])
    if shape == "triangle":
        big = 1.35 * r
        angles = np.deg2rad([-90.0, 30.0, 150.0])  # y points down: -90 degrees is the top vertex
        return np.stack([cx + big * np.cos(angles), cy + big * np.sin(angles)], axis=1)
    if shape == "star":
        outer, inner = 1.35 * r, 0.675 * r
        angles = np.deg2rad(-90.0 + 36.0 * np.arange(10))
        rad = np.where(np.arange(10) % 2 == 0, outer, inner)
        return np.stack([cx + rad * np.cos(angles), cy + rad * np.sin(angles)], axis=1)
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def shape_sdf(shape: str, cx: float, cy: float, r: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, negative inside) from points ``(x, y)`` to the shape."""
    if shape == "ball":
        return np.hypot(x - cx, y - cy) - r
    poly = shape_polygon(shape, cx, cy, r)
    a = poly
    b = np.roll(poly, -1, axis=0)
    px, py = x[..., None], y[..., None]
    ex, ey = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
    wx, wy = px - a[:, 0], py - a[:, 1]
    t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
    dist = np.hypot(wx - t * ex, wy - t * ey).min(axis=-1)
    # even-odd crossing test for the sign
    crosses = ((a[:, 1] > py) != (b[:, 1] > py)) & (px < a[:, 0] + (py - a[:, 1]) * ex / np.where(ey == 0, 1e-12, ey))
    inside = crosses.sum(axis=-1) % 2 == 1
    return np.where(inside, -dist, dist)


def shape_coverage(shape: str, cx: float, cy: float, r: float, h: int, w: int) -> np.ndarray:
    """Anti-aliased coverage ``[H, W]`` in [0, 1] of one shape: ``clip(0.5 - sdf, 0, 1)``."""
    x, y = _grid(h, w)
    return np.clip(0.5 - shape_sdf(shape, cx, cy, r, x, y), 0.0, 1.0)


def render_frame(scene: Scene, t: int, background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t``: image ``[H, W, 3]`` float32 and each object's own coverage ``[K, H, W]`` (before occlusion)."""
    h, w = scene.size
    image = render_background(scene.background, h, w) if background is None else background.copy()
    cover = np.zeros((len(scene.objects), h, w))
    for k, obj in enumerate(scene.objects):
        cx, cy = obj.centres[t]
        cover[k] = shape_coverage(obj.shape, float(cx), float(cy), float(obj.radii[t]), h, w)
        image = image * (1.0 - cover[k][..., None]) + np.asarray(OBJECT_COLOURS[obj.colour]) * cover[k][..., None]
    return image.astype(np.float32), cover


def visible_coverage(cover: np.ndarray) -> np.ndarray:
    """Each object's visible coverage ``[K, ...]``: its own times what the objects in front leave."""
    vis = cover.copy()
    for k in range(cover.shape[0]):
        for j in range(k + 1, cover.shape[0]):
            vis[k] = vis[k] * (1.0 - cover[j])
    return vis


@dataclass(eq=False)
class Clip:
    """A rendered clip.

    frames  ``[T, H, W, 3]`` float32 in [0, 1] (a ComfyUI IMAGE batch once made a tensor);
    alphas  ``[K, T, H, W]`` float32, visible coverage of each object (occlusion applied);
    masks   ``[K, T, H, W]`` bool, ``alphas >= 0.5``: the exact per-object masks;
    amodal  ``[K, T, H, W]`` bool, each object's whole silhouette, hidden parts included;
    flow    ``[T-1, H, W, 2]`` float32 forward flow (dx, dy) in pixels from frame t to t+1:
            a pixel of object k moves to ``c[t+1] + (p - c[t]) * r[t+1] / r[t]``, the
            background (static) does not move.
    """
    scene: Scene
    frames: np.ndarray
    alphas: np.ndarray
    masks: np.ndarray
    amodal: np.ndarray
    flow: np.ndarray

    @property
    def caption(self) -> str:
        return self.scene.caption

    @property
    def objects(self) -> tuple[ObjectTrack, ...]:
        return self.scene.objects

    @property
    def union(self) -> np.ndarray:
        """``[T, H, W]`` bool: pixels of any object."""
        return self.masks.any(axis=0)

    @property
    def velocities(self) -> np.ndarray:
        """``[K, T-1, 2]`` per-object centre displacement per frame (pixels)."""
        return np.stack([o.velocities for o in self.objects])


def true_flow(scene: Scene, masks: np.ndarray) -> np.ndarray:
    """Forward flow ``[T-1, H, W, 2]`` from the objects' motion and the visible ``masks`` ``[K, T, H, W]``."""
    h, w = scene.size
    x, y = _grid(h, w)
    flow = np.zeros((max(scene.frames - 1, 0), h, w, 2), np.float32)
    for t in range(scene.frames - 1):
        for k, obj in enumerate(scene.objects):
            m = masks[k, t]
            if not m.any():
                continue
            (cx, cy), (nx, ny) = obj.centres[t], obj.centres[t + 1]
            rate = obj.radii[t + 1] / obj.radii[t]
            flow[t, ..., 0][m] = (nx + (x[m] - cx) * rate - x[m])
            flow[t, ..., 1][m] = (ny + (y[m] - cy) * rate - y[m])
    return flow


def render_clip(scene: Scene) -> Clip:
    """Pixels, masks and flow of every frame of ``scene``."""
    h, w = scene.size
    bg = render_background(scene.background, h, w)
    frames, covers = [], []
    for t in range(scene.frames):
        image, cover = render_frame(scene, t, bg)
        frames.append(image)
        covers.append(cover)
    cover = np.stack(covers, axis=1)                  # [K, T, H, W]
    alphas = visible_coverage(cover).astype(np.float32)
    masks = alphas >= 0.5
    return Clip(scene, np.stack(frames), alphas, masks, cover >= 0.5, true_flow(scene, masks))


def make_clip(seed: int, frames: int = 16, size: int | tuple[int, int] = 64, n_objects: int | None = None,
              occlusion: bool | None = None) -> Clip:
    """A clip of ``frames`` frames at ``size`` (int or (H, W)) from ``seed``; see :func:`sample_scene`."""
    return render_clip(sample_scene(seed, frames, size, n_objects, occlusion))


# ---------------------------------------------------------------------------- single images

TRAIN_CLIP_FRAMES = 16
"""Training images are frames of 16-frame scenes, so their object positions and sizes are
distributed like the frames of the clips the tests use."""


@dataclass(eq=False)
class Frame:
    """One training image: ``image [H, W, 3]`` float32, ``masks [K, H, W]`` bool (visible), its caption."""
    image: np.ndarray
    masks: np.ndarray
    caption: str
    scene: Scene
    t: int


def sample_image(seed: int, size: int | tuple[int, int] = 64, n_objects: int | None = None) -> Frame:
    """Frame ``t`` (drawn from the seed) of the 16-frame scene of ``seed``: what the model is trained on."""
    scene = sample_scene(seed, TRAIN_CLIP_FRAMES, size, n_objects)
    t = int(np.random.default_rng([seed, 7]).integers(TRAIN_CLIP_FRAMES))
    image, cover = render_frame(scene, t)
    return Frame(image, visible_coverage(cover) >= 0.5, scene.caption, scene, t)


def sample_frames(seed: int, count: int = 4, size: int | tuple[int, int] = 64) -> tuple[np.ndarray, Scene, list[int]]:
    """``count`` distinct frames ``[count, H, W, 3]`` (random times, drawn from the seed) of the 16-frame scene of ``seed``.

    The UNet's training pool: single frames, and 2x2 latent grids of one scene's frames
    (what RAVE's grid shuffle shows the model).
    """
    scene = sample_scene(seed, TRAIN_CLIP_FRAMES, size)
    times = sorted(int(t) for t in np.random.default_rng([seed, 8]).choice(TRAIN_CLIP_FRAMES, count, replace=False))
    h, w = scene.size
    bg = render_background(scene.background, h, w)
    return np.stack([render_frame(scene, t, bg)[0] for t in times]), scene, times


def image_batch(seeds, size: int | tuple[int, int] = 64) -> tuple[np.ndarray, list[str]]:
    """Images ``[B, H, W, 3]`` float32 and captions of :func:`sample_image` for each seed."""
    frames = [sample_image(int(s), size) for s in seeds]
    return np.stack([f.image for f in frames]), [f.caption for f in frames]


def heldout_seeds(n: int, offset: int = 0) -> list[int]:
    """``n`` held-out seeds (never used in training), starting ``offset`` into the held-out range."""
    return [HELDOUT_START + offset + i for i in range(n)]
