"""SAM 2 video tracking on in-memory frames, with SAMURAI's motion model as an option.

``track_video`` runs sam2's video predictor on an IMAGE-style tensor: the inference
state is built here from the tensor (no JPEG dump), prompts (points, boxes, masks) may
sit on any frame, and tracking runs forwards and then backwards from them. Old
per-frame memories are dropped as the tracker moves on, so state memory stays flat in
the clip length; the output is a bool mask per object and frame.

SAMURAI (docs/drive-algorithms.md §8) is our own code on top of sam2's modules:
``SamuraiSelector`` re-ranks SAM 2's three candidate masks with a Kalman-filtered box
(kalman_box), and ``select_memory_frames`` picks the memory frames by quality. They
are wired into ``SamuraiVideoPredictor`` through a forward hook on the mask decoder and
thin overrides; their state lives in a per-run object that every run creates afresh.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .kalman_box import (KalmanBox, box_iou, kalman_initiate, kalman_predict, kalman_update, mask_boxes_xyxy,
                         xyah_to_xyxy, xyxy_to_xyah)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class SamuraiConfig:
    """SAMURAI's thresholds (defaults from its sam2.1 configs; kf_score_weight is 0.15 for large)."""

    stable_frames_threshold: int = 15
    stable_ious_threshold: float = 0.3
    min_obj_score_logits: float = -1.0
    kf_score_weight: float = 0.25
    memory_bank_iou_threshold: float = 0.5
    memory_bank_obj_score_threshold: float = 0.0
    memory_bank_kf_score_threshold: float = 0.0


@dataclass
class FrameScore:
    """What SAMURAI remembers about a tracked frame to judge it as a memory."""

    best_iou: float
    object_score: float
    kf_score: float | None


class SamuraiSelector:
    """The Kalman-filter state machine that picks one of SAM 2's candidate masks per frame.

    Init (no filter or ``stable_frames == 0``): the highest predicted IoU, and the filter
    starts on its box. Warm-up (``stable_frames < stable_frames_threshold``): still the
    highest IoU; the filter is updated while that IoU exceeds ``stable_ious_threshold``,
    otherwise it restarts. Stable: each candidate scores ``w * IoU(KF box, its box) +
    (1 - w) * predicted IoU``; the best is taken and updates the filter unless its
    predicted IoU is below the threshold (then the filter restarts).
    """

    def __init__(self, config: SamuraiConfig):
        self.config = config
        self.kf: KalmanBox | None = None
        self.stable_frames = 0

    def select(self, masks: torch.Tensor, ious: torch.Tensor) -> tuple[int, float | None]:
        """``masks`` [K,H,W] logits (> 0 is foreground), ``ious`` [K] -> (index, kf_score or None)."""
        cfg = self.config
        ious = ious.detach().double().cpu()
        boxes = mask_boxes_xyxy(masks.detach())
        if self.kf is None or self.stable_frames == 0:
            best = int(ious.argmax())
            self.kf = kalman_initiate(xyxy_to_xyah(boxes[best]))
            self.stable_frames += 1
            return best, None
        self.kf = kalman_predict(self.kf)
        if self.stable_frames < cfg.stable_frames_threshold:
            best = int(ious.argmax())
            if float(ious[best]) > cfg.stable_ious_threshold:
                self.kf = kalman_update(self.kf, xyxy_to_xyah(boxes[best]))
                self.stable_frames += 1
            else:
                self.stable_frames = 0
            return best, None
        kf_ious = box_iou(xyah_to_xyxy(self.kf.mean[:4]), boxes)
        scores = cfg.kf_score_weight * kf_ious + (1.0 - cfg.kf_score_weight) * ious
        best = int(scores.argmax())
        if float(ious[best]) < cfg.stable_ious_threshold:
            self.stable_frames = 0
        else:
            self.kf = kalman_update(self.kf, xyxy_to_xyah(boxes[best]))
        return best, float(kf_ious[best])


def select_memory_frames(frame_idx: int, scores: dict[int, FrameScore], config: SamuraiConfig,
                         reverse: bool = False, num_maskmem: int = 7) -> list[int]:
    """SAMURAI's motion-aware memory: the frames whose mask memory frame ``frame_idx`` attends to.

    ``scores`` holds the tracked non-conditioning frames. Walking back from the previous
    frame (forward in time when ``reverse``), a frame is valid if its predicted IoU,
    object score and KF score (when it has one) pass the memory-bank thresholds; the
    previous frame always counts. Returns the ``num_maskmem - 1`` most recent of them,
    oldest first (the order of SAM 2's temporal position encoding).
    """
    step = 1 if reverse else -1
    prev = frame_idx + step
    valid = []
    for i in sorted((i for i in scores if (i > frame_idx if reverse else i < frame_idx)), reverse=not reverse):
        s = scores[i]
        ok = (s.best_iou > config.memory_bank_iou_threshold
              and s.object_score > config.memory_bank_obj_score_threshold
              and (s.kf_score is None or s.kf_score > config.memory_bank_kf_score_threshold))
        if ok or i == prev:
            valid.append(i)
        if len(valid) >= num_maskmem - 1:
            break
    return valid[::-1]


@dataclass
class _SamuraiRun:
    """Per-run SAMURAI state (created fresh for every tracking pass)."""

    config: SamuraiConfig
    selector: SamuraiSelector
    scores: dict[int, FrameScore] = field(default_factory=dict)
    in_step: bool = False
    last: tuple[float, float | None] | None = None


@functools.cache
def _predictor_class():
    """SAM2VideoPredictor with the SAMURAI hooks (built on first use: sam2 is optional)."""
    from .sam2_build import import_sam2

    import_sam2()
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    class _SamuraiVideoPredictor(SAM2VideoPredictor):
        """SAM 2's video predictor; SAMURAI joins in while ``self._samurai`` holds a run."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self._samurai: _SamuraiRun | None = None
            self.sam_mask_decoder.register_forward_hook(self._samurai_decoder_hook, with_kwargs=True)

        def _samurai_decoder_hook(self, module, args, kwargs, output):
            run = self._samurai
            if run is None or not run.in_step:
                return None
            masks, ious, tokens, obj_logits = output
            # the heads keep an object where logits > 0: shift so that means > min_obj_score_logits
            obj_logits = obj_logits - run.config.min_obj_score_logits
            if masks.shape[1] == 1:
                run.last = (float(ious[0, 0]), None)
                return masks, ious, tokens, obj_logits
            if masks.shape[0] != 1:
                raise RuntimeError("SAMURAI tracks a single object")
            high_res = F.interpolate(masks.float(), size=(self.image_size, self.image_size), mode="bilinear",
                                     align_corners=False)[0]
            if float(obj_logits[0, 0]) <= 0:
                high_res = torch.full_like(high_res, -1.0)
            best, kf_score = run.selector.select(high_res, ious[0])
            run.last = (float(ious[0, best]), kf_score)
            pick = slice(best, best + 1)
            return masks[:, pick], ious[:, pick], tokens[:, pick], obj_logits

        def track_step(self, *args, **kwargs):
            run = self._samurai
            if run is None:
                return super().track_step(*args, **kwargs)
            run.in_step, run.last = True, None
            try:
                out = super().track_step(*args, **kwargs)
            finally:
                run.in_step = False
            out["object_score_logits"] = out["object_score_logits"] + run.config.min_obj_score_logits
            if run.last is not None:
                frame_idx = kwargs["frame_idx"] if "frame_idx" in kwargs else args[0]
                run.scores[frame_idx] = FrameScore(run.last[0], float(out["object_score_logits"].max()), run.last[1])
            return out

        def _encode_new_memory(self, **kwargs):
            run = self._samurai
            if run is not None and run.in_step:
                kwargs["object_score_logits"] = kwargs["object_score_logits"] + run.config.min_obj_score_logits
            return super()._encode_new_memory(**kwargs)

        def _prepare_memory_conditioned_features(self, **kwargs):
            run = self._samurai
            if run is not None and not kwargs["is_init_cond_frame"]:
                kwargs["output_dict"] = _samurai_memory_view(run, kwargs["frame_idx"], kwargs["output_dict"],
                                                             kwargs.get("track_in_reverse", False), self.num_maskmem)
            return super()._prepare_memory_conditioned_features(**kwargs)

    _SamuraiVideoPredictor.__name__ = "SamuraiVideoPredictor"
    return _SamuraiVideoPredictor


def SamuraiVideoPredictor(**kwargs):  # noqa: N802  (a class factory: sam2 is imported on first use)
    """Construct the SAMURAI-capable SAM2VideoPredictor subclass with sam2's model kwargs."""
    return _predictor_class()(**kwargs)


def _samurai_memory_view(run: _SamuraiRun, frame_idx: int, output_dict: dict, reverse: bool,
                         num_maskmem: int) -> dict:
    """A view of ``output_dict`` in which SAM 2's mask-memory slots hold SAMURAI's picks.

    SAM 2 takes mask memory from the ``num_maskmem - 1`` frames right before the current
    one, by key; the view puts the selected frames' memory features into those keys
    (newest selected in the nearest slot) and leaves every object pointer where it was,
    so only the mask memory changes, as in SAMURAI.
    """
    non_cond = output_dict["non_cond_frame_outputs"]
    chosen = select_memory_frames(frame_idx, {i: run.scores[i] for i in non_cond if i in run.scores},
                                  run.config, reverse, num_maskmem)
    view = dict(non_cond)
    for k, src in enumerate(reversed(chosen), start=1):
        slot = frame_idx + k if reverse else frame_idx - k
        if slot in non_cond:
            view[slot] = {**non_cond[slot], "maskmem_features": non_cond[src]["maskmem_features"],
                          "maskmem_pos_enc": non_cond[src]["maskmem_pos_enc"]}
    return {**output_dict, "non_cond_frame_outputs": view}


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


class _NormalisedFrames(Sequence):
    """The clip as sam2 wants it: ``[3,S,S]`` ImageNet-normalised frames, made on access.

    Frames stay in the caller's ``[T,H,W,3]`` tensor; only the frame being encoded is
    resized, so memory does not grow with the clip (``offload_video_to_cpu``).
    """

    def __init__(self, frames: torch.Tensor, size: int, device: torch.device):
        self.frames, self.size, self.device = frames, size, device
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return self.frames.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        f = self.frames[i].to(self.device, torch.float32).permute(2, 0, 1)[None]
        f = F.interpolate(f, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)[0]
        return (f.clamp(0, 1) - self.mean.to(f.device)) / self.std.to(f.device)


def init_tensor_state(model, frames: torch.Tensor, offload_video_to_cpu: bool = True,
                      offload_state_to_cpu: bool = False) -> dict:
    """sam2's ``inference_state`` for frames ``[T,H,W,3]`` (0..1) instead of a JPEG folder.

    Without ``offload_video_to_cpu`` every frame is normalised up front onto the model's
    device (sam2's default: faster, ``T*3*S*S`` floats there); with it, each frame is
    made on access from the CPU tensor. ``offload_state_to_cpu`` keeps memories on the CPU.
    """
    from collections import OrderedDict

    device = next(model.parameters()).device
    t, h, w = frames.shape[:3]
    if offload_video_to_cpu:
        images: Sequence = _NormalisedFrames(frames, model.image_size, torch.device("cpu"))
    else:
        lazy = _NormalisedFrames(frames, model.image_size, device)
        images = torch.stack([lazy[i] for i in range(t)])
    return {
        "images": images, "num_frames": t, "offload_video_to_cpu": offload_video_to_cpu,
        "offload_state_to_cpu": offload_state_to_cpu, "video_height": h, "video_width": w, "device": device,
        "storage_device": torch.device("cpu") if offload_state_to_cpu else device,
        "point_inputs_per_obj": {}, "mask_inputs_per_obj": {}, "cached_features": {}, "constants": {},
        "obj_id_to_idx": OrderedDict(), "obj_idx_to_id": OrderedDict(), "obj_ids": [],
        "output_dict_per_obj": {}, "temp_output_dict_per_obj": {}, "frames_tracked_per_obj": {},
    }


def _prune_memory(model, state: dict, frame_idx: int, reverse: bool, run: _SamuraiRun | None) -> None:
    """Drop per-frame outputs the tracker can no longer attend to (keeps memory flat in T)."""
    window = model.max_obj_ptrs_in_encoder
    nxt = frame_idx - 1 if reverse else frame_idx + 1
    for obj_out in state["output_dict_per_obj"].values():
        non_cond = obj_out["non_cond_frame_outputs"]
        keep = {i for i in non_cond if abs(i - frame_idx) < window}
        if run is not None:
            keep |= set(select_memory_frames(nxt, {i: run.scores[i] for i in non_cond if i in run.scores},
                                             run.config, reverse, model.num_maskmem))
        for i in [i for i in non_cond if i not in keep]:
            del non_cond[i]


def track_video(model, frames: torch.Tensor, prompts: Sequence[TrackPrompt], samurai: SamuraiConfig | None = None,
                offload_video_to_cpu: bool = True, offload_state_to_cpu: bool = False,
                progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Track the prompted objects through ``frames`` ``[T,H,W,3]`` (0..1); -> bool ``[N_obj,T,H,W]`` (CPU).

    ``model`` comes from ``sam2_build`` (a SamuraiVideoPredictor on any device; its
    ``autocast_dtype``, when set, is the compute precision).
    Tracking runs forwards from the earliest prompted frame and backwards from the
    latest, each pass with only the prompts and its own frames as memory. ``samurai``
    (single object only) switches SAMURAI on with fresh state for each pass.
    ``progress(1)`` is called once per tracked frame.
    """
    if not prompts:
        raise ValueError("no prompt given")
    if samurai is not None and len({p.obj_id for p in prompts}) != 1:
        raise ValueError("SAMURAI mode tracks a single object; turn individual_objects off or samurai_mode off")
    t, h, w = frames.shape[:3]
    obj_ids = sorted({p.obj_id for p in prompts})
    out = torch.zeros(len(obj_ids), t, h, w, dtype=torch.bool)
    device = next(model.parameters()).device
    dtype = getattr(model, "autocast_dtype", torch.float32)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    with torch.inference_mode(), autocast:
        state = init_tensor_state(model, frames, offload_video_to_cpu, offload_state_to_cpu)
        try:
            for p in prompts:
                if not 0 <= p.frame_index < t:
                    raise ValueError(f"prompt frame {p.frame_index} is outside the clip (0..{t - 1})")
                if p.mask is not None:
                    if tuple(p.mask.shape) != (h, w):
                        raise ValueError(f"the prompt mask is {tuple(p.mask.shape)}, the frames {h}x{w}")
                    if not bool((p.mask > 0.5).any()):
                        raise ValueError("the prompt mask is empty on the prompt frame; draw the object")
                    model.add_new_mask(state, p.frame_index, p.obj_id, (p.mask > 0.5).to(device))
                else:
                    model.add_new_points_or_box(state, p.frame_index, p.obj_id,
                                                points=p.points, labels=p.labels, box=p.box)
            first = min(p.frame_index for p in prompts)
            last = max(p.frame_index for p in prompts)
            for reverse, start in ((False, first), (True, last)):
                if reverse and start == 0:
                    break
                for obj_out in state["output_dict_per_obj"].values():
                    obj_out["non_cond_frame_outputs"].clear()
                run = None if samurai is None else _SamuraiRun(samurai, SamuraiSelector(samurai))
                model._samurai = run
                for frame_idx, ids, masks in model.propagate_in_video(state, start_frame_idx=start, reverse=reverse):
                    fg = (masks[:, 0] > 0.0).cpu()
                    for k, obj_id in enumerate(ids):
                        out[obj_ids.index(obj_id), frame_idx] = fg[k]
                    _prune_memory(model, state, frame_idx, reverse, run)
                    if progress is not None:
                        progress(1)
        finally:
            model._samurai = None
    return out


def tracked_frame_count(prompt_frames: Sequence[int], frame_count: int) -> int:
    """How many frames ``track_video`` reports progress for (forward + backward passes)."""
    first, last = min(prompt_frames), max(prompt_frames)
    return (frame_count - first) + (last + 1 if last > 0 else 0)


def track_masks(model, frames: torch.Tensor, frame_index: int = 0, positive_points: str | None = None,
                negative_points: str | None = None, bboxes=None, mask: torch.Tensor | None = None,
                individual_objects: bool = False, per_object_output: bool = False,
                samurai: SamuraiConfig | None = None, offload_video_to_cpu: bool = True,
                offload_state_to_cpu: bool = False,
                progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """The Track Object node's whole path: socket values in, float32 0/1 MASK out (CPU).

    ``mask`` is ``[H,W]`` or ``[1,H,W]`` on ``frame_index``, or ``[T,H,W]`` (its frame
    ``frame_index`` is used). Returns ``[T,H,W]`` (objects merged) or, with
    ``per_object_output``, ``[N_obj*T,H,W]`` object by object.
    """
    t, h, w = frames.shape[:3]
    if mask is not None:
        if mask.dim() == 3:
            if mask.shape[0] not in (1, t):
                raise ValueError(f"the prompt mask has {mask.shape[0]} frames, the video {t}; give one mask "
                                 "(for frame_index) or one per frame")
            mask = mask[frame_index] if mask.shape[0] == t and t > 1 else mask[0]
        if tuple(mask.shape) != (h, w):
            raise ValueError(f"the prompt mask is {mask.shape[-1]}x{mask.shape[-2]} px, the frames {w}x{h}; "
                             "resize it to the video")
    prompts = build_prompts(frame_index, parse_points(positive_points), parse_points(negative_points),
                            parse_boxes(bboxes), mask, individual_objects)
    out = track_video(model, frames, prompts, samurai, offload_video_to_cpu, offload_state_to_cpu, progress)
    if per_object_output:
        return out.reshape(-1, h, w).float()
    return out.any(dim=0).float()
