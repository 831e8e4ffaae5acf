"""Remove an object from a clip: fill the masked region with the background behind it.

After FFF-VDI (Lee et al., "Video Diffusion Models are Strong Video Inpainters", AAAI
2025), keeping the parts that need no trained weights:

1. **Propagation.** Background that some frame shows is carried into the hole of the
   others along the background's flow, completed inside the hole from the motion around
   it (``background_propagation``). One pass runs forwards through the clip (each frame
   takes what earlier frames showed), one backwards; where both find a source the two
   colours are blended by confidence (chain length and forward-backward inconsistency).
2. **Keyframe fill.** What no frame ever shows is reported (the second output) and
   invented once, on one keyframe (FFF-VDI fills the first frame; here the frame where the
   unseen area is largest, or the user's), by ``keyframe_fill``: the diffusion model when
   the node has one, else OpenCV's image inpainting. That fill is then carried to the
   other frames along the same completed flow, so the invented area moves with the
   background instead of being re-invented (and flickering) on every frame. Anything a
   keyframe's fill cannot reach gets a keyframe of its own, up to ``MAX_KEYFRAMES``;
   then OpenCV fills each frame's remainder, so no hole is ever left.

Memory is flat in the frame count apart from the clip itself: each pass streams over the
frames with one frame of pointers and two flows; the outputs (a copy of the clip and one
mask per frame) are the only per-frame buffers, and the flows are recomputed per pass
rather than stored.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np
import torch

from ..core.mask_frames import match_mask_frames
from ..core.mask_morphology import grow_mask
from ..core.optical_flow import DIS_REACH_PX, resolve_preset
from ..core.progress import Progress, notify
from .background_propagation import Pointers, background_flows, follow, gather_background

KEYFRAME_AUTO = -1
MAX_KEYFRAMES = 8
INPAINT_METHODS = ("telea", "ns")
INPAINT_RADIUS_PX = 5
HOLE_CACHE_FRAMES = 8

KeyframeFill = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
"""``fill(frame [H,W,3], hole [H,W] bool, index) -> [H,W,3]``: invent the background in ``hole`` of frame ``index``."""


def inpaint_opencv(frame: torch.Tensor, hole: torch.Tensor, method: str = "telea",
                   radius: int = INPAINT_RADIUS_PX) -> torch.Tensor:
    """``frame`` ``[H,W,C]`` with ``hole`` ``[H,W]`` filled by OpenCV's image inpainting (Telea 2004 or Navier-Stokes).

    Each channel is inpainted at 16 bits (OpenCV's Telea on float images overshoots).
    Pixels outside the hole are returned unchanged.
    """
    import cv2

    if method not in INPAINT_METHODS:
        raise ValueError(f"unknown inpaint method {method!r}; choose one of {', '.join(INPAINT_METHODS)}")
    flags = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    mask = hole.detach().cpu().numpy().astype(np.uint8)
    if not mask.any():
        return frame.clone()
    image = frame.detach().float().cpu().clamp(0, 1).numpy()
    channels = [cv2.inpaint(np.round(image[..., c] * 65535).astype(np.uint16), mask, radius, flags)
                for c in range(image.shape[-1])]
    filled = torch.from_numpy(np.stack(channels, -1).astype(np.float32) / 65535).to(frame)
    return torch.where(hole.to(frame.device)[..., None], filled, frame)


class _Holes:
    """Each frame's hole (the mask binarised at 0.5 and grown) on ``device``, the last few kept."""

    def __init__(self, masks: torch.Tensor, grow: int, device: torch.device):
        self.masks, self.grow, self.device = masks, grow, device
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()

    def __call__(self, t: int) -> torch.Tensor:
        if t not in self._cache:
            binary = (self.masks[t:t + 1].to(self.device) > 0.5).float()
            self._cache[t] = grow_mask(binary, self.grow)[0] > 0.5
            if len(self._cache) > HOLE_CACHE_FRAMES:
                self._cache.popitem(last=False)
        self._cache.move_to_end(t)
        return self._cache[t]


def _carry(order: range, shown: Callable[[int], torch.Tensor], source, flows,
           on_frame: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None],
           channels: int, progress: Callable[[], None]) -> None:
    """One pass over the frames in ``order`` (consecutive, either way).

    ``shown(t)`` is frame t's known pixels ``[H,W]``; ``source(s)`` gives a frame and the
    pixels it may give; ``flows(t, j)`` the completed flows ``t -> j`` and ``j -> t``.
    ``on_frame(t, ys, xs, colours, weights, found)`` receives every frame's unknown pixels.
    """
    previous, last = None, None
    for t in order:
        known = shown(t)
        ys, xs = torch.nonzero(~known, as_tuple=True)
        if previous is None or ys.numel() == 0:
            pointers = Pointers.shown(known, t)
        else:
            to_previous, from_previous = flows(t, last)
            pointers = follow(previous, known, t, to_previous, from_previous, lambda s: source(s)[1])
        if ys.numel():
            colours, found = gather_background(pointers, ys, xs, source, channels)
            on_frame(t, ys, xs, colours, pointers.weight(ys, xs) * found, found)
        previous, last = pointers, t
        progress()


def fill_background(frames: torch.Tensor, mask: torch.Tensor, grow: int = 4, flow_quality: str = "auto",
                    keyframe: int = KEYFRAME_AUTO, keyframe_fill: KeyframeFill | None = None,
                    inpaint_method: str = "telea", device: torch.device | str | None = None,
                    progress: Progress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the masked region of ``frames`` ``[T,H,W,C]`` (0..1) with the background behind it.

    ``mask`` is ``[T,H,W]`` (or one frame for all) at the frames' size: what to remove,
    binarised at 0.5 and grown by ``grow`` px. Returns ``(image [T,H,W,C], unrecovered
    [T,H,W] float)`` on the frames' device: outside the grown mask ``image`` equals
    ``frames`` exactly; ``unrecovered`` is 1 where no frame showed the background, which
    ``keyframe_fill`` (default: OpenCV ``inpaint_method``) invented on ``keyframe``
    (``KEYFRAME_AUTO``: where that area is largest) and the flow carried along.
    The maths runs on ``device`` (default: the frames'). ``progress(done, total)`` is
    called after every frame of every pass.
    """
    if frames.dim() != 4:
        raise ValueError(f"frames must be an IMAGE batch [T,H,W,C], got shape {tuple(frames.shape)}")
    count, height, width, channels = frames.shape
    masks = match_mask_frames(mask, count, height, width, what="mask")
    if not 0 <= grow <= 256:
        raise ValueError(f"grow must be between 0 and 256 px, got {grow}")
    if keyframe >= count or keyframe < KEYFRAME_AUTO:
        raise ValueError(f"keyframe {keyframe} is outside the clip: use 0..{count - 1}, or {KEYFRAME_AUTO} for auto")
    if not bool((masks > 0.5).any()):
        raise ValueError("the mask is empty on every frame, so there is nothing to remove; connect the object's "
                         "mask (e.g. from Track Object)")
    if bool((masks > 0.5).all()):
        raise ValueError("the mask covers every pixel of every frame, so no background is left to fill from; "
                         "check that the mask is not inverted")
    device = torch.device(device) if device is not None else frames.device
    preset = resolve_preset(flow_quality, height, width)
    margin = DIS_REACH_PX[preset]
    fill = keyframe_fill or (lambda frame, hole, index: inpaint_opencv(frame, hole, inpaint_method))
    holes = _Holes(masks, grow, device)
    out = frames.clone()
    unrecovered = torch.zeros(count, height, width, dtype=torch.float32, device=frames.device)
    total, done = 3 * count, 0

    def step() -> None:
        nonlocal done
        done = min(done + 1, total)
        notify(progress, done, total)

    def flows(t: int, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        return background_flows(frames[t].to(device), frames[j].to(device), holes(t), holes(j), preset, margin)

    def original(s: int) -> tuple[torch.Tensor, torch.Tensor]:
        return frames[s].to(device), ~holes(s)

    # forward: each frame takes what earlier frames show; its colours and weights are kept in out / unrecovered
    def keep_forward(t, ys, xs, colours, weights, found):
        out[t, ys[found].cpu(), xs[found].cpu()] = colours[found].to(out)
        unrecovered[t, ys.cpu(), xs.cpu()] = weights.to(unrecovered)

    # backward: blend with the forward colour by weight; what neither pass found is unrecovered
    def blend_backward(t, ys, xs, colours, weights, found):
        yc, xc = ys.cpu(), xs.cpu()
        w_fw = unrecovered[t, yc, xc].to(device)
        c_fw = out[t, yc, xc].to(device).float()
        both = (w_fw + weights).clamp(min=1e-12)
        mixed = (c_fw * w_fw[:, None] + colours * weights[:, None]) / both[:, None]
        hit = (w_fw + weights) > 0
        out[t, yc[hit.cpu()], xc[hit.cpu()]] = mixed[hit].to(out)
        unrecovered[t] = 0
        unrecovered[t, yc, xc] = (~hit).float().to(unrecovered)

    shown_original = (lambda t: ~holes(t))
    _carry(range(count), shown_original, original, flows, keep_forward, channels, step)
    _carry(range(count - 1, -1, -1), shown_original, original, flows, blend_backward, channels, step)
    _fill_unseen(out, unrecovered > 0.5, keyframe, fill, inpaint_method, flows, device, channels, step)
    notify(progress, total, total)
    return out, unrecovered


def _areas(remaining: torch.Tensor) -> torch.Tensor:
    """Pixels still to fill per frame ``[T]`` of ``remaining`` ``[T,H,W]`` bool, one frame at a time:
    a whole-clip ``sum`` would first widen the bools to int64, 8 bytes per pixel of the clip."""
    return torch.stack([frame.sum() for frame in remaining])


def _fill_unseen(out: torch.Tensor, remaining: torch.Tensor, keyframe: int, fill: KeyframeFill, inpaint_method: str,
                 flows, device: torch.device, channels: int, step: Callable[[], None]) -> None:
    """Invent what no frame shows on keyframes and carry each fill along the flow, in place on ``out``.

    ``remaining`` ``[T,H,W]`` bool (consumed) marks the pixels still to fill. Each keyframe's
    fill is carried through the run of neighbouring frames that still have unseen pixels.
    """
    count = out.shape[0]

    def filled(s: int) -> tuple[torch.Tensor, torch.Tensor]:
        return out[s].to(device), ~remaining[s].to(device)

    def take(t, ys, xs, colours, weights, found):
        yc, xc = ys[found].cpu(), xs[found].cpu()
        out[t, yc, xc] = colours[found].to(out)
        remaining[t, yc, xc] = False

    for round_ in range(MAX_KEYFRAMES):
        areas = _areas(remaining)
        if int(areas.sum()) == 0:
            return
        k = keyframe if round_ == 0 and keyframe != KEYFRAME_AUTO and areas[keyframe] > 0 else int(areas.argmax())
        hole = remaining[k].to(device)
        out[k] = torch.where(hole[..., None], fill(out[k].to(device), hole, k).to(device), out[k].to(device)).to(out)
        remaining[k] = False
        shown = (lambda t: ~remaining[t].to(device))
        # carry as far as the unseen area lasts: past a frame without one, nothing is left to chain through
        last, first = k, k
        while last + 1 < count and areas[last + 1] > 0:
            last += 1
        while first > 0 and areas[first - 1] > 0:
            first -= 1
        _carry(range(k, last + 1), shown, filled, flows, take, channels, step)
        _carry(range(k, first - 1, -1), shown, filled, flows, take, channels, step)
    for t in range(count):
        if bool(remaining[t].any()):
            out[t] = inpaint_opencv(out[t], remaining[t], inpaint_method)
