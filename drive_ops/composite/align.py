"""Put another model's edited clip back on the source's frames and size, so the finish can run on it.

Video models edit on their own grid: Wan VACE writes 81-frame (4n+1) segments at 720x720,
VOID writes windows, an upscaler doubles the size. Compositing needs the edit pixel for
pixel over the source, so this inverts the two choices the user made on the way in:

- time: edited frame ``j`` shows source frame ``offset + j * stride``; edited frames that
  land outside the source are left out, source frames no edited frame lands on keep the
  source (and are marked not covered);
- space: how the source was fitted to the model's frame size (``RESIZE_POLICIES``):
  ``stretch`` (resized, aspect ignored), ``crop_centre`` (scaled to cover, centre-cropped:
  core Upscale Image with crop "center") or ``pad`` (scaled to fit, centred on a border:
  core Resize And Pad Image). The inverse puts each edited pixel back where it came from;
  source pixels the crop cut away are not covered and keep the source.

Where the clips already agree (same frame count and size, offset 0, stride 1) the
edited frames come back unchanged, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.chunking import chunk_slices
from ..core.progress import Progress, notify

RESIZE_POLICIES = ("stretch", "crop_centre", "pad")


@dataclass(frozen=True)
class FrameMapping:
    """Edited frames ``edited_start..edited_stop-1`` show source frames ``offset + j * stride``."""

    offset: int
    stride: int
    edited_start: int
    edited_stop: int

    def source_index(self, edited_index: int) -> int:
        return self.offset + edited_index * self.stride

    @property
    def source_indices(self) -> list[int]:
        return [self.source_index(j) for j in range(self.edited_start, self.edited_stop)]


def map_frames(source_frames: int, edited_frames: int, offset: int, stride: int) -> FrameMapping:
    """The edited frames that land on the source (edited ``j`` -> source ``offset + j*stride``).

    Raises ``ValueError`` saying why when ``stride < 1``, an empty clip, or no edited
    frame lands on a source frame (offset past the source's end, or the edit ending
    before the source starts).
    """
    if stride < 1:
        raise ValueError(f"frame_stride must be at least 1 (edited frame j shows source frame offset + j * stride), "
                         f"got {stride}; use 1 when the edit has a frame for every source frame")
    if source_frames < 1 or edited_frames < 1:
        raise ValueError(f"nothing to align: the source has {source_frames} frames and the edit {edited_frames}")
    if offset >= source_frames:
        raise ValueError(f"frame_offset {offset} is beyond the source's last frame ({source_frames} frames, "
                         f"0..{source_frames - 1}): the edit would cover none of it; give the source frame the "
                         "edit's first frame shows")
    last = offset + (edited_frames - 1) * stride
    if last < 0:
        raise ValueError(f"the edit ends before the source starts: its {edited_frames} frames at offset {offset}, "
                         f"stride {stride} show source frames {offset}..{last}, none of them in "
                         f"0..{source_frames - 1}; raise frame_offset")
    start = max(0, -(offset // stride))  # the first j with offset + j*stride >= 0 (ceil(-offset / stride))
    stop = min(edited_frames, (source_frames - 1 - offset) // stride + 1)
    return FrameMapping(offset, stride, start, stop)


@dataclass(frozen=True)
class Placement:
    """The edited frame's content box (``edit_box``) shows the source box (``source_box``); boxes are
    ``(top, left, height, width)`` in each clip's own pixels."""

    edit_box: tuple[int, int, int, int]
    source_box: tuple[int, int, int, int]


def place(src_h: int, src_w: int, edit_h: int, edit_w: int, policy: str) -> Placement:
    """Where an ``edit_h x edit_w`` frame made from an ``src_h x src_w`` frame under ``policy`` sits on it.

    ``crop_centre`` keeps the centred source box of the edit's aspect, rounded as core's
    Upscale Image crops; ``pad`` finds the content box as core's Resize And Pad Image
    places it (scale to fit, sides truncated, centred). Raises ``ValueError`` for an
    unknown policy or a box that comes out empty.
    """
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; choose one of {', '.join(RESIZE_POLICIES)}")
    if min(src_h, src_w, edit_h, edit_w) < 1:
        raise ValueError(f"cannot align {edit_w}x{edit_h} frames onto {src_w}x{src_h}: a side is empty")
    whole_edit, whole_source = (0, 0, edit_h, edit_w), (0, 0, src_h, src_w)
    if policy == "stretch":
        return Placement(whole_edit, whole_source)
    src_aspect, edit_aspect = src_w / src_h, edit_w / edit_h
    if policy == "crop_centre":
        top = left = 0
        if src_aspect > edit_aspect:
            left = round((src_w - src_w * (edit_aspect / src_aspect)) / 2)
        elif src_aspect < edit_aspect:
            top = round((src_h - src_h * (src_aspect / edit_aspect)) / 2)
        box = (top, left, src_h - 2 * top, src_w - 2 * left)
        if min(box[2:]) < 1:
            raise ValueError(f"a centre crop of {src_w}x{src_h} to the aspect of {edit_w}x{edit_h} leaves nothing")
        return Placement(whole_edit, box)
    scale = min(edit_w / src_w, edit_h / src_h)
    content_h, content_w = int(src_h * scale), int(src_w * scale)
    if min(content_h, content_w) < 1:
        raise ValueError(f"{src_w}x{src_h} frames padded into {edit_w}x{edit_h} would be under a pixel on one side; "
                         "check the resize policy")
    box = ((edit_h - content_h) // 2, (edit_w - content_w) // 2, content_h, content_w)
    return Placement(box, whole_source)


def _resized(frames: torch.Tensor, placement: Placement) -> torch.Tensor:
    """``[N,h,w,C]`` (or masks ``[N,h,w]``) -> their content box resized to the source box: ``[N,bh,bw(,C)]``."""
    top, left, height, width = placement.edit_box
    box = frames[:, top:top + height, left:left + width]
    out_h, out_w = placement.source_box[2:]
    if (height, width) == (out_h, out_w):
        return box
    is_mask = box.dim() == 3
    chw = (box.unsqueeze(1) if is_mask else box.movedim(-1, 1)).float()
    chw = F.interpolate(chw, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=True)
    out = chw.squeeze(1) if is_mask else chw.movedim(1, -1)
    return out.to(frames.dtype)


@dataclass
class AlignedClip:
    """``image`` ``[T,H,W,C]`` on the source's frames and size; ``covered`` ``[T,H,W]`` float, 1 where the
    edit has a pixel; ``mask`` ``[T,H,W]`` (the object mask within ``covered``) or None; ``notes`` for the log."""

    image: torch.Tensor
    covered: torch.Tensor
    mask: torch.Tensor | None
    mapping: FrameMapping
    placement: Placement
    notes: list[str]


def _mask_frames(mask: torch.Tensor, source: torch.Tensor, edited: torch.Tensor, mapping: FrameMapping,
                 placement: Placement) -> torch.Tensor:
    """The object mask ``[T,H,W]`` on the source, from a MASK given in the source's or the edit's terms."""
    frames, height, width = source.shape[:3]
    mask = mask.unsqueeze(0) if mask.dim() == 2 else mask
    if mask.dim() != 3:
        raise ValueError(f"the mask has shape {tuple(mask.shape)}; expected [T,H,W] or [H,W]")
    count, size = mask.shape[0], tuple(mask.shape[1:])
    if size == (height, width) and count in (1, frames):
        return mask.float().to(source.device).expand(frames, -1, -1)
    if size == tuple(edited.shape[1:3]) and count in (1, edited.shape[0]):
        out = torch.zeros(frames, height, width, device=source.device)
        top, left, box_h, box_w = placement.source_box
        picked = mask if count == 1 else mask[mapping.edited_start:mapping.edited_stop]
        moved = _resized(picked.float().to(source.device), placement)
        out[mapping.source_indices, top:top + box_h, left:left + box_w] = moved
        return out
    raise ValueError(f"the mask is {size[1]}x{size[0]} px with {count} frames; give it in the source's terms "
                     f"({width}x{height}, 1 or {frames} frames) or in the edit's ({edited.shape[2]}x{edited.shape[1]}, "
                     f"1 or {edited.shape[0]} frames)")


def _dropped_note(mapping: FrameMapping, edited_frames: int) -> list[str]:
    notes = []
    if mapping.edited_start > 0:
        notes.append(f"edited frames 0..{mapping.edited_start - 1} fall before the source's first frame and are "
                     "left out")
    if mapping.edited_stop < edited_frames:
        notes.append(f"edited frames {mapping.edited_stop}..{edited_frames - 1} fall after the source's last frame "
                     "and are left out")
    return notes


def align_edited_clip(source: torch.Tensor, edited: torch.Tensor, offset: int = 0, stride: int = 1,
                      policy: str = "stretch", mask: torch.Tensor | None = None, chunk: int = 16,
                      device: torch.device | None = None, progress: Progress | None = None) -> AlignedClip:
    """The edited clip ``[N,h,w,C']`` on the source's ``[T,H,W,C]`` frames and size.

    Edited frame ``j`` replaces source frame ``offset + j*stride`` inside the source box
    of ``place(..., policy)``; everything else keeps the source. ``mask`` (the object's,
    ``[H,W]`` / ``[1|T,H,W]`` at the source's size, or ``[1|N,h,w]`` at the edit's) comes
    back on the source's frames and limited to what the edit covers. Resizing runs on
    ``device`` (default: the source's), ``chunk`` edited frames at a time, with
    ``progress(done, total)`` after each chunk. The inputs are not modified.
    """
    if source.dim() != 4 or edited.dim() != 4:
        raise ValueError("source and edited must be IMAGE batches [T,H,W,C]")
    frames, height, width, channels = source.shape
    if edited.shape[-1] < channels:
        raise ValueError(f"the edited frames have {edited.shape[-1]} channels, the source {channels}")
    mapping = map_frames(frames, edited.shape[0], offset, stride)
    placement = place(height, width, edited.shape[1], edited.shape[2], policy)
    work = source.device if device is None else device
    top, left, box_h, box_w = placement.source_box
    out = source.clone()
    covered = torch.zeros(frames, height, width, dtype=source.dtype, device=source.device)
    covered[mapping.source_indices, top:top + box_h, left:left + box_w] = 1
    slices = chunk_slices(mapping.edited_stop - mapping.edited_start, max(1, chunk))
    for i, part in enumerate(slices):
        picked = edited[mapping.edited_start + part.start:mapping.edited_start + part.stop, ..., :channels]
        moved = _resized(picked.to(work), placement).to(device=source.device, dtype=source.dtype)
        targets = mapping.source_indices[part]
        out[targets, top:top + box_h, left:left + box_w] = moved
        notify(progress, i + 1, len(slices))
    object_mask = None if mask is None else _mask_frames(mask, source, edited, mapping, placement) * covered
    return AlignedClip(out, covered, object_mask, mapping, placement, _dropped_note(mapping, edited.shape[0]))
