"""Carry background that some frame shows into the hole of its neighbours, along completed flow.

The building block of Fill Background. A frame's :class:`Pointers` say, for every pixel,
which frame shows its background and where: pixels the frame itself shows point at
themselves; a hole pixel follows the completed flow into the previously visited frame
and continues that frame's pointer from where it lands (:func:`follow`). Walking the clip
one frame at a time this way reaches back arbitrarily far with one frame of state. What
is carried is a pointer, not a colour, so however many frames a chain spans the colour
is sampled once, from the source frame (:func:`gather_background`), and texture is not
blurred by repeated resampling (as FGVC, Gao et al., ECCV 2020, chains flow to the
source frame). A step is kept only where the completed flows pass the forward-backward
check of ``core.optical_flow``; the squared inconsistency adds to the chain's cost.

Positions are ``(x, y)`` pixels, flows follow ``core.optical_flow`` (``flow(a, b)`` says
where a pixel of ``a`` lands in ``b``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..core.flow_completion import complete_flow
from ..core.optical_flow import dis_flow, occlusion_mask

CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE_PX2 = 0.5
LAYERS = 2


@dataclass
class Pointers:
    """Where each pixel of one frame ``[H,W]`` takes its background from: two offers per pixel.

    Layer 0 is the pixel's pointer, layer 1 an alternative with another source frame (or
    none), kept because near a slowly moving edge the best source of a pixel may show its
    neighbour's point and not its own, a fraction of a pixel away; the alternative, further
    back in time, then does. ``source`` ``[2,H,W]`` int64 (the frame, -1 = none), ``offset``
    ``[2,H,W,2]`` (the source position minus the pixel's own), ``cost`` ``[2,H,W]`` (the
    chain's summed squared flow inconsistency, px^2) and ``steps`` ``[2,H,W]`` (frames the
    chain spans).
    """
    source: torch.Tensor
    offset: torch.Tensor
    cost: torch.Tensor
    steps: torch.Tensor

    @classmethod
    def shown(cls, known: torch.Tensor, frame: int) -> Pointers:
        """Pointers of a frame before any chaining: ``known`` ``[H,W]`` pixels point at themselves, the rest nowhere."""
        h, w = known.shape
        source = torch.full((LAYERS, h, w), -1, dtype=torch.long, device=known.device)
        source[0][known] = frame
        zeros = torch.zeros(LAYERS, h, w, device=known.device)
        return cls(source, torch.zeros(LAYERS, h, w, 2, device=known.device), zeros, zeros.clone())

    def weight(self, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """Confidence ``[N]`` of the pixels ``(ys, xs)``: ``1 / (steps + cost)``, 0 where none was found.

        Each frame of a chain adds about one unit of squared position error, a measured
        inconsistency adds its own; the nearer and steadier source counts more.
        """
        found = self.source[0, ys, xs] >= 0
        value = 1.0 / (self.steps[0, ys, xs] + self.cost[0, ys, xs]).clamp(min=1e-6)
        return torch.where(found, value, torch.zeros_like(value))


def _unknown_flow(hole: torch.Tensor, flow: torch.Tensor, flow_back: torch.Tensor, margin: int) -> torch.Tensor:
    """Where ``flow`` ``[H,W,2]`` cannot be trusted for the background: within ``margin`` px of the ``hole``
    ``[H,W]``, and the pixels within twice that of it that fail the forward-backward check."""
    distance = _distance_to(hole)
    return (distance <= margin) | ((distance <= 2 * margin) & occlusion_mask(flow, flow_back))


def _distance_to(region: torch.Tensor) -> torch.Tensor:
    """Euclidean distance ``[H,W]`` of every pixel to the nearest pixel of ``region`` (0 inside it).

    OpenCV's distance transform (5x5 mask, within a few percent of exact): one pass
    whatever the radius, where a max-pool grows with it.
    """
    import cv2

    outside = (~region).to(torch.uint8).cpu().numpy()
    if not outside.any():
        return torch.zeros(region.shape, device=region.device)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    return torch.from_numpy(distance).to(region.device)


def background_flows(frame_a: torch.Tensor, frame_b: torch.Tensor, hole_a: torch.Tensor, hole_b: torch.Tensor,
                     preset: str, margin: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The background's flows ``a -> b`` and ``b -> a`` ``[H,W,2]`` between frames ``[H,W,3]`` with holes ``[H,W]``.

    DIS measures both; inside each hole grown by ``margin`` px (DIS smears the object's
    motion past its edge), and where the forward-backward check fails near it (the
    background the object uncovers or covers), the flow is replaced by
    ``core.flow_completion``'s fill from the surrounding motion. Only flow at and around
    the hole is ever followed, so farther pixels keep DIS's values.
    """
    ab, ba = dis_flow(frame_a, frame_b, preset), dis_flow(frame_b, frame_a, preset)
    return (complete_flow(ab, _unknown_flow(hole_a, ab, ba, margin)),
            complete_flow(ba, _unknown_flow(hole_b, ba, ab, margin)))


def _corners(px: torch.Tensor, py: torch.Tensor, height: int, width: int):
    """The four bilinear neighbours of positions ``[N]``: ``[(ys, xs, weight)]``, clamped to the frame."""
    x0, y0 = px.floor().clamp(0, width - 1), py.floor().clamp(0, height - 1)
    ax, ay = (px - x0).clamp(0, 1), (py - y0).clamp(0, 1)
    x1, y1 = (x0 + 1).clamp(max=width - 1), (y0 + 1).clamp(max=height - 1)
    x0, y0, x1, y1 = x0.long(), y0.long(), x1.long(), y1.long()
    return [(y0, x0, (1 - ax) * (1 - ay)), (y0, x1, ax * (1 - ay)), (y1, x0, (1 - ax) * ay), (y1, x1, ax * ay)]


def _bilinear(field: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """``field`` ``[H,W,C]`` at positions ``[N]`` -> ``[N,C]``."""
    h, w = field.shape[:2]
    return sum(field[cy, cx] * cw[:, None] for cy, cx, cw in _corners(px, py, h, w))


def _shown_at(sources: torch.Tensor, px: torch.Tensor, py: torch.Tensor, shown_of: Callable[[int], torch.Tensor]
              ) -> torch.Tensor:
    """Bool like ``sources``: does frame ``sources[i]`` show the pixel nearest to ``(px[i], py[i])``?

    A position whose nearest pixel is off the frame is not shown.
    """
    out = torch.zeros_like(sources, dtype=torch.bool)
    for s in torch.unique(sources[sources >= 0]).tolist():
        sel = sources == s
        shown = shown_of(int(s))
        h, w = shown.shape
        rx, ry = px[sel].round().long(), py[sel].round().long()
        on_frame = (rx >= 0) & (rx < w) & (ry >= 0) & (ry < h)
        out[sel] = on_frame & shown[ry.clamp(0, h - 1), rx.clamp(0, w - 1)]
    return out


def follow(previous: Pointers, known: torch.Tensor, frame: int, flow_to_previous: torch.Tensor,
           flow_from_previous: torch.Tensor, shown_of: Callable[[int], torch.Tensor]) -> Pointers:
    """Pointers of ``frame``: ``known`` ``[H,W]`` pixels point at themselves, the others continue ``previous``.

    ``flow_to_previous`` ``[H,W,2]`` takes this frame to the previously visited one,
    ``flow_from_previous`` back; ``shown_of(s)`` is frame s's shown pixels ``[H,W]``. A hole
    pixel lands at ``q = p + flow(p)``, unless ``q`` leaves the frame or the flows disagree
    there (``|f + b(q)|^2 > 0.01 (|f|^2 + |b(q)|^2) + 0.5``). Each bilinear neighbour of
    ``q`` offers its two pointers, each with the offset interpolated over the neighbours'
    pointers into the same source frame; an offer stands if its source frame shows the
    pixel nearest to the position it gives. The nearest neighbour's standing offer becomes
    the pointer, the nearest standing offer into another frame the alternative.
    """
    out = Pointers.shown(known, frame)
    ys, xs = torch.nonzero(~known, as_tuple=True)
    if ys.numel() == 0:
        return out
    h, w = known.shape
    f = flow_to_previous[ys, xs]
    qx, qy = xs + f[:, 0], ys + f[:, 1]
    inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
    back = _bilinear(flow_from_previous, qx, qy)
    mismatch = (f + back).pow(2).sum(-1)
    consistent = mismatch <= CONSISTENCY_RELATIVE * (f.pow(2).sum(-1) + back.pow(2).sum(-1)) + CONSISTENCY_ABSOLUTE_PX2
    corners = _corners(qx, qy, h, w)

    def offers(field: torch.Tensor) -> torch.Tensor:                 # [N, 4 corners x LAYERS, ...]
        return torch.cat([field[:, cy, cx].transpose(0, 1) for cy, cx, _ in corners], 1)

    source = offers(previous.source)                                                           # [N,E]
    weight = torch.cat([cw[:, None].expand(-1, LAYERS) for _, _, cw in corners], 1)            # [N,E]
    shares = (source[:, :, None] == source[:, None, :]).float() * weight[:, None, :]           # [N,E,E]
    shares = shares / shares.sum(-1, keepdim=True).clamp(min=1e-12)
    offset = shares @ offers(previous.offset)                                                  # [N,E,2]
    cost = (shares @ offers(previous.cost)[..., None])[..., 0] + mismatch[:, None]
    steps = (shares @ offers(previous.steps)[..., None])[..., 0] + 1
    offset = offset + f[:, None, :]
    stands = (source >= 0) & (weight > 0) & (inside & consistent)[:, None] & _shown_at(
        source, xs[:, None] + offset[..., 0], ys[:, None] + offset[..., 1], shown_of)
    # rank by neighbour weight; an entry's own layer 0 before its layer 1
    rank = weight + 1.0 - 1e-3 * torch.arange(weight.shape[1], device=weight.device).remainder(LAYERS)
    best = torch.where(stands, rank, torch.zeros_like(rank)).argmax(1, keepdim=True)
    other = stands & (source != source.gather(1, best))
    second = torch.where(other, rank, torch.zeros_like(rank)).argmax(1, keepdim=True)
    for layer, pick, ok in ((0, best, stands.gather(1, best)[:, 0]), (1, second, other.gather(1, second)[:, 0])):
        py, px = ys[ok], xs[ok]
        out.source[layer, py, px] = source[ok].gather(1, pick[ok])[:, 0]
        out.offset[layer, py, px] = offset[ok].gather(1, pick[ok][..., None].expand(-1, -1, 2))[:, 0]
        out.cost[layer, py, px] = cost[ok].gather(1, pick[ok])[:, 0]
        out.steps[layer, py, px] = steps[ok].gather(1, pick[ok])[:, 0]
    return out


SourceFrame = Callable[[int], tuple[torch.Tensor, torch.Tensor]]
"""``source(frame) -> (image [H,W,C], shown [H,W] bool)``: a frame and the pixels it may give."""


def gather_background(pointers: Pointers, ys: torch.Tensor, xs: torch.Tensor, source: SourceFrame,
                      channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Colours ``[N,channels]`` for the pixels ``(ys, xs)`` from their source frames, and ``found`` ``[N]`` bool.

    Each colour is one bilinear sample at ``p + offset`` in the source frame, taken over
    the neighbours that frame shows only (a masked, renormalised bilinear), so no hole
    pixel ever leaks in. A pixel without a source, or whose position's nearest pixel the
    source does not show (a chain that drifted off the source's edge), is not found, and its pointer is dropped (``source`` -1, in place) so no chain continues
    from it.
    """
    frames = pointers.source[0, ys, xs]
    found = torch.zeros_like(frames, dtype=torch.bool)
    colours = torch.zeros(ys.numel(), channels, device=ys.device)
    for s in torch.unique(frames[frames >= 0]).tolist():
        sel = torch.nonzero(frames == s).flatten()
        image, shown = source(int(s))
        offset = pointers.offset[0, ys[sel], xs[sel]]
        px, py = xs[sel] + offset[:, 0], ys[sel] + offset[:, 1]
        h, w = shown.shape
        total = torch.zeros_like(px)
        value = torch.zeros(sel.numel(), channels, device=ys.device)
        for cy, cx, cw in _corners(px, py, h, w):
            cw = cw * shown[cy, cx]
            total += cw
            value += image[cy, cx].to(value) * cw[:, None]
        colours[sel] = value / total.clamp(min=1e-12)[:, None]
        found[sel] = True
    return colours, found
