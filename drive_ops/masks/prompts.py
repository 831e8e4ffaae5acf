"""Tracking prompts: the Track Object node's points, boxes and mask, turned into per-object prompts."""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class TrackPrompt:
    """One object's prompt on one frame: points (+ labels 1/0), an xyxy box, and/or a mask.

    Coordinates are pixels of the input frames; ``mask`` is ``[H,W]`` (> 0.5 is the object).
    """

    obj_id: int
    frame_index: int
    points: list[tuple[float, float]] | None = None
    labels: list[int] | None = None
    box: tuple[float, float, float, float] | None = None
    mask: torch.Tensor | None = None


BBOX_FORMATS = ("xyxy", "xywh")
FRAME_NOTE = ("Coordinates are pixels of the frames Track Object receives (after Load Video's size_policy / "
              "longer_side resize), not of the source file.")


def _number(value, what: str) -> float:
    """``value`` as a finite float, or a ValueError that says which coordinate is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} is {value!r} ({type(value).__name__}), not a number; coordinates must be numbers "
                         'like [{"x": 120, "y": 80}]')
    if not math.isfinite(value):
        raise ValueError(f"{what} is {value}; coordinates must be finite numbers")
    return float(value)


def _load_text(text: str):
    """JSON, or the Python-literal form some nodes write (single quotes: "[{'x': 1, 'y': 2}]")."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise ValueError(f'points must be JSON like [{{"x": 120, "y": 80}}] (KJNodes Points Editor\'s format), '
                             f"got {text[:80]!r} ({err})") from None


def _outside(what: str, values: tuple[float, ...], width: int, height: int) -> ValueError:
    shown = ", ".join(f"{v:g}" for v in values)
    return ValueError(f"{what} ({shown}) is outside the {width}x{height} frames: x must be in 0..{width} and y in "
                      f"0..{height}. {FRAME_NOTE}")


def parse_points(text: str | None, frame_size: tuple[int, int] | None = None, normalized: bool = False,
                 what: str = "point") -> list[tuple[float, float]]:
    """KJNodes PointsEditor JSON (``[{"x":..,"y":..}, ...]``) or ``[[x, y], ...]`` -> pixel points.

    With ``frame_size`` ``(height, width)`` each point must lie in the frame (0..width,
    0..height); ``normalized`` points (Points Editor's ``normalize``: 0..1 of the frame)
    are scaled to pixels. Pixel points that all lie in 0..1 with a fraction among them
    are refused as normalized ones sent without ``normalized``.
    """
    if text is None or not str(text).strip():
        return []
    data = _load_text(str(text))
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, (list, tuple)):
        raise ValueError(f'points must be a JSON list like [{{"x": 120, "y": 80}}], got {str(text)[:80]!r}')
    points = []
    for n, p in enumerate(data, start=1):
        if isinstance(p, dict) and "x" in p and "y" in p:
            x, y = p["x"], p["y"]
        elif isinstance(p, (list, tuple)) and len(p) == 2:
            x, y = p
        else:
            raise ValueError(f'cannot read {what} {n} ({p!r}); expected {{"x": .., "y": ..}}')
        points.append((_number(x, f"the x of {what} {n}"), _number(y, f"the y of {what} {n}")))
    if frame_size is None or not points:
        return points
    height, width = frame_size
    values = [v for pt in points for v in pt]
    if normalized:
        for n, pt in enumerate(points, start=1):
            if not all(0.0 <= v <= 1.0 for v in pt):
                raise ValueError(f"points_normalized is on, but {what} {n} ({pt[0]:g}, {pt[1]:g}) is not in 0..1; "
                                 "turn points_normalized off for pixel coordinates")
        return [(x * width, y * height) for x, y in points]
    if max(width, height) > 1 and all(0.0 <= v <= 1.0 for v in values) and any(v != int(v) for v in values):
        raise ValueError(f"the {what}s {points[:3]} all lie in 0..1 with fractions: they look normalized (KJNodes "
                         "Points Editor's normalize option), but are read as pixels. Turn points_normalized on, "
                         "or give pixel coordinates")
    for n, (x, y) in enumerate(points, start=1):
        if not (0.0 <= x <= width and 0.0 <= y <= height):
            raise _outside(f"{what} {n}", (x, y), width, height)
    return points


def parse_boxes(bboxes, frame_size: tuple[int, int] | None = None,
                bbox_format: str = "xyxy") -> list[tuple[float, float, float, float]]:
    """A BBOX socket value (one box or a list of them) -> xyxy pixel boxes.

    ``bbox_format`` is how the numbers are laid out: ``xyxy`` corners (x1, y1, x2, y2)
    or ``xywh`` (x, y, width, height: Points Editor's other bbox_format). With
    ``frame_size`` ``(height, width)`` every box must lie in the frame.
    """
    if bbox_format not in BBOX_FORMATS:
        raise ValueError(f"bbox_format must be one of {', '.join(BBOX_FORMATS)}, got {bbox_format!r}")
    if bboxes is None:
        return []
    if isinstance(bboxes, torch.Tensor):
        bboxes = bboxes.tolist()
    if isinstance(bboxes, str):
        bboxes = _load_text(bboxes) if bboxes.strip() else []
    if isinstance(bboxes, dict) or not isinstance(bboxes, (list, tuple)):
        raise ValueError(f"bboxes must be [x1, y1, x2, y2] or a list of such boxes, got {bboxes!r:.80}")
    if len(bboxes) == 4 and not any(isinstance(v, (list, tuple, torch.Tensor)) for v in bboxes):
        bboxes = [bboxes]
    boxes = []
    for n, b in enumerate(bboxes, start=1):
        if isinstance(b, torch.Tensor):
            b = b.tolist()
        if not isinstance(b, (list, tuple)) or len(b) != 4:
            raise ValueError(f"box {n} needs 4 numbers ({bbox_format}); got {b!r}")
        a, c, d, e = (_number(v, f"value {i + 1} of box {n}") for i, v in enumerate(b))
        if bbox_format == "xywh":
            if d <= 0 or e <= 0:
                raise ValueError(f"box {n} {list(b)} has no area: with bbox_format xywh the last two numbers are "
                                 "its width and height, both > 0")
            a, c, d, e = a, c, a + d, c + e
        elif d <= a or e <= c:
            raise ValueError(f"box {n} {list(b)} is empty as corners x1, y1, x2, y2 (x1 < x2 and y1 < y2 needed). "
                             "If it is x, y, width, height (Points Editor's bbox_format xywh), set bbox_format to xywh")
        if frame_size is not None:
            height, width = frame_size
            if not (0.0 <= a and 0.0 <= c and d <= width and e <= height):
                raise _outside(f"box {n} as corners x1, y1, x2, y2", (a, c, d, e), width, height)
        boxes.append((a, c, d, e))
    return boxes


def parse_frame_size(text: str | None) -> tuple[int, int] | None:
    """``"WIDTHxHEIGHT"`` (the canvas's picked_frame_size) -> ``(width, height)``; None when empty."""
    if text is None or not str(text).strip():
        return None
    parts = str(text).lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"picked_frame_size must be WIDTHxHEIGHT like 512x288 (the canvas writes it), got "
                         f"{str(text)[:40]!r}; clear it to skip the size check")
    return int(parts[0]), int(parts[1])


def check_picked_size(picked: str | None, width: int, height: int) -> None:
    """Refuse prompts picked on frames of another size than the ``width x height`` frames being tracked.

    Points are pixels of the frames they were picked on: on a replaced clip or a changed
    resize they would land on the wrong spot, so a mismatch is an error naming the fix.
    """
    size = parse_frame_size(picked)
    if size is None or size == (width, height):
        return
    raise ValueError(f"the points / box were picked on {size[0]}x{size[1]} frames, but Track Object receives "
                     f"{width}x{height} frames (the clip or Load Video's size changed): open Track Object's canvas, "
                     "which rescales them to the new frames, or pick them again. Clearing picked_frame_size uses "
                     "them unchanged.")


def build_prompts(frame_index: int, positive: Sequence[tuple[float, float]] = (),
                  negative: Sequence[tuple[float, float]] = (),
                  boxes: Sequence[tuple[float, float, float, float]] = (), mask: torch.Tensor | None = None,
                  individual_objects: bool = False) -> list[TrackPrompt]:
    """Turn the node's prompt inputs into per-object prompts.

    Together (default) everything is one object. With ``individual_objects`` each box,
    each positive point (not inside a box) and each connected region of the mask is its
    own object; negative points go to every point/box object.
    """
    neg = list(negative)
    if not individual_objects:
        if not (positive or boxes or mask is not None):
            raise ValueError("give the tracker a prompt: positive points, a box, or a mask")
        if len(boxes) > 1:
            raise ValueError("several boxes need individual_objects on (one object per box)")
        if mask is not None and (positive or neg or boxes):
            raise ValueError("give either a mask or points/box as the prompt, not both")
        pts = list(positive) + neg
        return [TrackPrompt(0, frame_index, pts or None, ([1] * len(positive) + [0] * len(neg)) or None,
                            boxes[0] if boxes else None, mask)]
    prompts: list[TrackPrompt] = []
    for box in boxes:
        prompts.append(TrackPrompt(len(prompts), frame_index, neg or None, [0] * len(neg) or None, box))
    for p in positive:
        prompts.append(TrackPrompt(len(prompts), frame_index, [p] + neg, [1] + [0] * len(neg)))
    if mask is not None:
        import cv2

        count, labels = cv2.connectedComponents((mask > 0.5).to(torch.uint8).cpu().numpy(), connectivity=8)
        for c in range(1, count):
            prompts.append(TrackPrompt(len(prompts), frame_index, mask=torch.from_numpy(labels == c).float()))
    if not prompts:
        raise ValueError("give the tracker a prompt: positive points, a box, or a mask")
    return prompts
