"""SAMURAI's additions to SAM 2, as plain logic: Kalman-filtered mask choice and quality-gated memory.

``SamuraiSelector`` re-ranks SAM 2's three candidate masks with a Kalman-filtered box
(``kalman_box``), ``select_memory_frames`` picks the frames whose mask memory the next
frame attends to, and ``samurai_memory_view`` puts those picks into the slots SAM 2 reads.
All state lives in a ``SamuraiRun`` that every tracking pass creates afresh (upstream
keeps it on the model, so it leaks between videos). The hooks that call this from inside
sam2 are in ``sam2_predictor``; the maths is in docs/algorithms.md (SAMURAI).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .kalman_box import (KalmanBox, box_iou, kalman_initiate, kalman_predict, kalman_update, mask_boxes_xyxy,
                         xyah_to_xyxy, xyxy_to_xyah)


KF_SCORE_WEIGHT = 0.25
"""SAMURAI's motion-model weight in its tiny / small / base+ configs."""
KF_SCORE_WEIGHT_LARGE = 0.15
"""SAMURAI's motion-model weight in its large config."""


def kf_score_weight_for(size: str | None, weight: float) -> float:
    """The weight a run uses: SAMURAI's large-config 0.15 when left at the default 0.25 on a large model."""
    if size == "large" and abs(weight - KF_SCORE_WEIGHT) < 1e-6:
        return KF_SCORE_WEIGHT_LARGE
    return weight


@dataclass
class SamuraiConfig:
    """SAMURAI's thresholds (defaults from its sam2.1 configs; ``kf_score_weight_for`` gives large its 0.15)."""

    stable_frames_threshold: int = 15
    stable_ious_threshold: float = 0.3
    min_obj_score_logits: float = -1.0
    kf_score_weight: float = KF_SCORE_WEIGHT
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
class SamuraiRun:
    """Per-run SAMURAI state (created fresh for every tracking pass)."""

    config: SamuraiConfig
    selector: SamuraiSelector
    scores: dict[int, FrameScore] = field(default_factory=dict)
    in_step: bool = False
    last: tuple[float, float | None] | None = None


def samurai_memory_view(run: SamuraiRun, frame_idx: int, output_dict: dict, reverse: bool,
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
