"""Tracking prompts: the Track Object node's points, boxes and mask, turned into per-object prompts."""

from __future__ import annotations

import json
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


def parse_points(text: str | None) -> list[tuple[float, float]]:
    """KJNodes PointsEditor JSON (``[{"x":..,"y":..}, ...]``) or ``[[x, y], ...]`` -> points."""
    if text is None or not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f'points must be JSON like [{{"x": 120, "y": 80}}] ({err})') from err
    if isinstance(data, dict):
        data = [data]
    points = []
    for p in data:
        if isinstance(p, dict) and "x" in p and "y" in p:
            points.append((float(p["x"]), float(p["y"])))
        elif isinstance(p, (list, tuple)) and len(p) == 2:
            points.append((float(p[0]), float(p[1])))
        else:
            raise ValueError(f'cannot read point {p!r}; expected {{"x": .., "y": ..}}')
    return points


def parse_boxes(bboxes) -> list[tuple[float, float, float, float]]:
    """A BBOX socket value (one ``[x1,y1,x2,y2]`` or a list of them) -> xyxy boxes."""
    if bboxes is None:
        return []
    if isinstance(bboxes, torch.Tensor):
        bboxes = bboxes.tolist()
    if len(bboxes) == 4 and all(isinstance(v, (int, float)) for v in bboxes):
        bboxes = [bboxes]
    boxes = []
    for b in bboxes:
        if len(b) != 4:
            raise ValueError(f"a box needs 4 numbers x1, y1, x2, y2; got {b!r}")
        x1, y1, x2, y2 = (float(v) for v in b)
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"box {b!r} is empty: give x1 < x2 and y1 < y2 (corner coordinates)")
        boxes.append((x1, y1, x2, y2))
    return boxes


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
