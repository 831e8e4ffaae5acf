"""Judge the colour and shape of an object in an image of the synthetic world.

Colours are judged against the palette of :mod:`testbed.world` (defined there once): each
pixel goes to its nearest reference colour in RGB, the references being the object colours
and the tones a background texture can take (a background colour blended with its dark
tone). Shapes are judged by template fitting: the object's pixels are compared (IoU) with
each of the world's shapes fitted to their bounding box, rendered by the world's own
renderer.

- With a known mask (an edit test: the clip's mask of the edited object):
  :func:`colour_in_mask` (the mask's median colour named) and :func:`colour_fraction`
  (share of the mask's pixels of one colour).
- Without one (a generated image): :func:`judge_image` / :func:`judge_caption` find the
  object as the largest group of object-coloured pixels.

Images are ``[H, W, 3]`` float arrays in 0..1 (numpy or torch).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import vocab, world

OBJECT_NAMES: tuple[str, ...] = tuple(world.OBJECT_COLOURS)
OBJECT_RGB = np.array([world.OBJECT_COLOURS[n] for n in OBJECT_NAMES])
BACKGROUND_TONES = np.linspace(0.0, 1.0, 9)   # texture weights sampled for the background references
MAX_DISTANCE = 0.3                             # a pixel farther than this from every object colour is not one
MIN_AREA_FRACTION = 0.01                       # smallest object (share of the image) judge_image reports


def _np(image) -> np.ndarray:
    a = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    return a.astype(np.float64)


def background_references(colour: str | None = None) -> np.ndarray:
    """RGB ``[N, 3]`` of the tones a background of ``colour`` (None: any background colour) can show."""
    names = [colour] if colour is not None else list(world.BACKGROUND_COLOURS)
    refs = []
    for n in names:
        c = np.asarray(world.BACKGROUND_COLOURS[n])
        refs += [c * (1.0 - (1.0 - world.BACKGROUND_DARK) * w) for w in BACKGROUND_TONES]
    return np.array(refs)


def nearest_colour(rgb) -> tuple[str, float]:
    """The object colour nearest (RGB distance) to ``rgb`` and that distance."""
    d = np.linalg.norm(OBJECT_RGB - np.asarray(rgb, dtype=np.float64)[None, :], axis=1)
    k = int(d.argmin())
    return OBJECT_NAMES[k], float(d[k])


def pixel_labels(image, background_colour: str | None = None) -> np.ndarray:
    """``[H, W]`` int: index into :data:`OBJECT_NAMES` of each pixel's colour, -1 for background / unclear.

    A pixel is object colour k when that is its nearest reference (object colours and the
    background tones) and it is within :data:`MAX_DISTANCE` of it.
    """
    img = _np(image)
    refs = np.concatenate([OBJECT_RGB, background_references(background_colour)])
    d = np.linalg.norm(img[..., None, :] - refs, axis=-1)          # [H, W, R]
    k = d.argmin(axis=-1)
    ok = (k < len(OBJECT_NAMES)) & (np.take_along_axis(d, k[..., None], -1)[..., 0] < MAX_DISTANCE)
    return np.where(ok, k, -1)


def _erode(mask: np.ndarray, px: int) -> np.ndarray:
    if px <= 0:
        return mask
    out = cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0
    return out if out.sum() >= 4 else mask


@dataclass(frozen=True)
class MaskColour:
    """Colour judged inside a mask: the nearest palette name of the median RGB, and that distance."""
    colour: str
    rgb: tuple[float, float, float]
    distance: float
    pixels: int


def colour_in_mask(image, mask, erode_px: int = 1) -> MaskColour:
    """The palette colour of the median RGB inside ``mask`` ``[H, W]`` (eroded by ``erode_px`` to skip the edges)."""
    img, m = _np(image), _erode(np.asarray(mask).astype(bool), erode_px)
    if not m.any():
        raise ValueError("the mask is empty")
    rgb = np.median(img[m], axis=0)
    name, dist = nearest_colour(rgb)
    return MaskColour(name, tuple(float(v) for v in rgb), dist, int(m.sum()))


def colour_fraction(image, mask, colour: str, erode_px: int = 1, background_colour: str | None = None) -> float:
    """Share of the (eroded) mask's pixels that :func:`pixel_labels` calls ``colour``."""
    m = _erode(np.asarray(mask).astype(bool), erode_px)
    if not m.any():
        raise ValueError("the mask is empty")
    labels = pixel_labels(image, background_colour)
    return float((labels[m] == OBJECT_NAMES.index(colour)).mean())


# ---------------------------------------------------------------------------- shapes

def _shape_fits(shape: str, x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float, float]]:
    """Candidate (cx, cy, r) of ``shape`` whose bounding box matches ``[x0, x1] x [y0, y1]`` by width or by height."""
    w, h = x1 - x0, y1 - y0
    cx = 0.5 * (x0 + x1)
    if shape == "ball":
        return [(cx, 0.5 * (y0 + y1), 0.5 * w), (cx, 0.5 * (y0 + y1), 0.5 * h)]
    if shape == "square":
        return [(cx, 0.5 * (y0 + y1), 0.5 * w / 0.86), (cx, 0.5 * (y0 + y1), 0.5 * h / 0.86)]
    if shape == "triangle":      # top vertex at cy - 1.35 r, base at cy + 0.675 r, width sqrt(3) * 1.35 r
        out = []
        for r in (w / (np.sqrt(3) * 1.35), h / (1.5 * 1.35)):
            out += [(cx, y0 + 1.35 * r, r), (cx, y1 - 0.675 * r, r)]
        return out
    if shape == "star":          # top tip at cy - 1.35 r, bottom tips at cy + 1.35 r cos 36, width 2 * 1.35 r cos 18
        c18, c36 = np.cos(np.deg2rad(18)), np.cos(np.deg2rad(36))
        out = []
        for r in (w / (2 * 1.35 * c18), h / (1.35 * (1 + c36))):
            out += [(cx, y0 + 1.35 * r, r), (cx, y1 - 1.35 * c36 * r, r)]
        return out
    raise ValueError(f"unknown shape {shape!r}")


def shape_scores(mask) -> dict[str, float]:
    """Best IoU of each world shape fitted to the bounding box of ``mask`` ``[H, W]``."""
    m = np.asarray(mask).astype(bool)
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return {s: 0.0 for s in world.SHAPES}
    h, w = m.shape
    x0, x1, y0, y1 = xs.min(), xs.max() + 1.0, ys.min(), ys.max() + 1.0
    scores = {}
    for shape in world.SHAPES:
        best = 0.0
        for cx, cy, r in _shape_fits(shape, x0, y0, x1, y1):
            if r <= 0.5:
                continue
            t = world.shape_coverage(shape, cx, cy, r, h, w) >= 0.5
            union = (t | m).sum()
            best = max(best, float((t & m).sum() / union) if union else 0.0)
        scores[shape] = best
    return scores


def classify_shape(mask) -> tuple[str, float]:
    """The world shape that fits ``mask`` best, and its IoU."""
    scores = shape_scores(mask)
    shape = max(scores, key=scores.get)
    return shape, scores[shape]


# ---------------------------------------------------------------------------- whole images

@dataclass(frozen=True)
class Verdict:
    """What :func:`judge_image` saw: the object's colour and shape (None if no object was found)."""
    colour: str | None
    shape: str | None
    area: int
    iou: float
    expected_colour: str | None = None
    expected_shape: str | None = None

    @property
    def found(self) -> bool:
        return self.colour is not None

    @property
    def colour_ok(self) -> bool:
        return self.found and self.colour == self.expected_colour

    @property
    def shape_ok(self) -> bool:
        return self.found and self.shape == self.expected_shape


def object_mask(image, colour: str, background_colour: str | None = None) -> np.ndarray:
    """``[H, W]`` bool: the largest 8-connected group of pixels of ``colour``."""
    labels = pixel_labels(image, background_colour) == OBJECT_NAMES.index(colour)
    n, comp = cv2.connectedComponents(labels.astype(np.uint8), connectivity=8)
    if n <= 1:
        return labels
    sizes = np.bincount(comp.reshape(-1))[1:]
    return comp == 1 + int(sizes.argmax())


def judge_image(image, background_colour: str | None = None, expected_colour: str | None = None,
                expected_shape: str | None = None) -> Verdict:
    """The dominant object colour of ``image`` (most pixels; at least 1% of the image) and its shape."""
    labels = pixel_labels(image, background_colour)
    counts = np.bincount(labels[labels >= 0].reshape(-1), minlength=len(OBJECT_NAMES))
    k = int(counts.argmax())
    if counts[k] < MIN_AREA_FRACTION * labels.size:
        return Verdict(None, None, int(counts[k]), 0.0, expected_colour, expected_shape)
    colour = OBJECT_NAMES[k]
    m = object_mask(image, colour, background_colour)
    shape, iou = classify_shape(m)
    return Verdict(colour, shape, int(m.sum()), iou, expected_colour, expected_shape)


def judge_caption(image, caption: str) -> Verdict:
    """:func:`judge_image` with the background colour and expectations read from a one-object caption."""
    parts = vocab.parse_caption(caption)
    colour, shape = parts.objects[0] if parts.objects else (None, None)
    bg = parts.background[0] if parts.background else None
    return judge_image(image, bg, colour, shape)
