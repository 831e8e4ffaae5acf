"""SAM 2 video tracking on in-memory frames, with SAMURAI's motion model as an option.

``track_video`` runs sam2's video predictor on an IMAGE-style tensor: the inference
state is built here from the tensor (no JPEG dump), prompts (points, boxes, masks) may
sit on any frame, and tracking runs forwards and then backwards from them. Old
per-frame memories are dropped as the tracker moves on, so state memory stays flat in
the clip length; the output is a bool mask per object and frame. The model comes from
``sam2_build``; SAMURAI's selection and memory logic is in ``samurai``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..core.mask_frames import mask_on_frame
from ..core.progress import Progress, notify
from .prompts import TrackPrompt, build_prompts, parse_boxes, parse_points
from .samurai import SamuraiConfig, SamuraiRun, SamuraiSelector, select_memory_frames

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


def _prune_memory(model, state: dict, frame_idx: int, reverse: bool, run: SamuraiRun | None) -> None:
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
                progress: Progress | None = None) -> torch.Tensor:
    """Track the prompted objects through ``frames`` ``[T,H,W,3]`` (0..1); -> bool ``[N_obj,T,H,W]`` (CPU).

    ``model`` comes from ``sam2_build`` (a SamuraiVideoPredictor on any device; its
    ``autocast_dtype``, when set, is the compute precision).
    Tracking runs forwards from the earliest prompted frame and backwards from the
    latest, each pass with only the prompts and its own frames as memory. ``samurai``
    (single object only) switches SAMURAI on with fresh state for each pass.
    ``progress(done, total)`` is called after every tracked frame of both passes
    (``total`` = ``tracked_frame_count``).
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
            done, total = 0, tracked_frame_count([first, last], t)
            for reverse, start in ((False, first), (True, last)):
                if reverse and start == 0:
                    break
                for obj_out in state["output_dict_per_obj"].values():
                    obj_out["non_cond_frame_outputs"].clear()
                run = None if samurai is None else SamuraiRun(samurai, SamuraiSelector(samurai))
                model._samurai = run
                for frame_idx, ids, masks in model.propagate_in_video(state, start_frame_idx=start, reverse=reverse):
                    fg = (masks[:, 0] > 0.0).cpu()
                    for k, obj_id in enumerate(ids):
                        out[obj_ids.index(obj_id), frame_idx] = fg[k]
                    _prune_memory(model, state, frame_idx, reverse, run)
                    done += 1
                    notify(progress, done, total)
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
                progress: Progress | None = None, points_normalized: bool = False,
                bbox_format: str = "xyxy", box: str | None = None) -> torch.Tensor:
    """The Track Object node's whole path: socket values in, float32 0/1 MASK out (CPU).

    ``mask`` is ``[H,W]`` or ``[1,H,W]`` on ``frame_index``, or ``[T,H,W]`` (its frame
    ``frame_index`` is used). Points and boxes are pixels of ``frames`` (points in 0..1
    with ``points_normalized``; boxes laid out as ``bbox_format``) and must lie in them.
    ``box`` is the canvas's drawn box (JSON xyxy pixels), added to ``bboxes``.
    Returns ``[T,H,W]`` (objects merged) or, with ``per_object_output``,
    ``[N_obj*T,H,W]`` object by object.
    """
    t, h, w = frames.shape[:3]
    if mask is not None:
        mask = mask_on_frame(mask, frame_index, t, h, w, what="prompt mask")
    positive = parse_points(positive_points, (h, w), points_normalized, "positive point")
    negative = parse_points(negative_points, (h, w), points_normalized, "negative point")
    boxes = parse_boxes(bboxes, (h, w), bbox_format) + parse_boxes(box, (h, w), "xyxy")
    prompts = build_prompts(frame_index, positive, negative, boxes, mask, individual_objects)
    out = track_video(model, frames, prompts, samurai, offload_video_to_cpu, offload_state_to_cpu, progress)
    if per_object_output:
        return out.reshape(-1, h, w).float()
    return out.any(dim=0).float()
