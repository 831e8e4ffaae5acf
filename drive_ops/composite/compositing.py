"""Put the edited object back over the original video (DRIVE keeps the real background).

``comp = edited*a + base*(1-a)`` inside the (grown) mask and the original, bit for
bit, everywhere else: the edit must not leak into the background, whatever the feather
or the blending does. Feathering therefore softens the seam *inward* (erode by the
radius, then blur), and Laplacian-pyramid blending is confined to the grown mask the
same way (its result is faded in with the same alpha). ``base`` is the original, or,
when the object was removed first (Fill Background), the filled clip: then the rim the
feather leaves inside the mask, and wherever the edit is transparent, shows clean
background instead of the old object.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.chunking import chunk_slices
from ..core.frame_plan_inverse import find_frame_plan, fit_to_canvas
from ..core.mask_frames import match_mask_frames
from ..core.mask_morphology import feather_mask, grow_mask
from ..core.progress import Progress, notify
from ..core.validate import ALIGN_HINT

BLEND_MODES = ("alpha", "laplacian")
_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def composite_alpha(mask: torch.Tensor, grow: int = 0, feather: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask ``[T,H,W]`` -> (alpha ``[T,H,W]`` in 0..1, region ``[T,H,W]`` bool where alpha may be > 0).

    ``grow`` dilates (>0) or erodes (<0) by that many pixels; ``feather`` blurs the
    edge inward over about that many pixels, so alpha is 0 outside the grown mask.
    """
    grown = grow_mask(mask.float().clamp(0.0, 1.0), grow)
    region = grown > 0
    alpha = grown
    if feather > 0:
        alpha = feather_mask(grow_mask(grown, -int(round(feather))), feather)
    return torch.where(region, alpha, torch.zeros_like(alpha)), region


def _blur_down(x: torch.Tensor) -> torch.Tensor:
    """5-tap binomial blur then keep every second pixel: one Gaussian-pyramid step on ``[N,C,H,W]``."""
    k = torch.tensor(_BINOMIAL, device=x.device, dtype=x.dtype) / 16.0
    c = x.shape[1]
    x = F.pad(x, (2, 2, 2, 2), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    x = F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)
    return x[..., ::2, ::2]


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def laplacian_blend(fg: torch.Tensor, bg: torch.Tensor, alpha: torch.Tensor, levels: int | None = None) -> torch.Tensor:
    """Multi-band blend of ``[N,C,H,W]`` images with alpha ``[N,1,H,W]``: wide seams for low frequencies.

    ``levels`` defaults to as many halvings as keep the coarsest level >= 8 px (at most 6).
    """
    if levels is None:
        levels = 0
        size = min(fg.shape[-2:])
        while size >= 16 and levels < 6:
            size //= 2
            levels += 1
    out_bands = []
    a, b, m = fg, bg, alpha
    for _ in range(levels):
        a_down, b_down, m_down = _blur_down(a), _blur_down(b), _blur_down(m)
        size = tuple(a.shape[-2:])
        band_a = a - _up(a_down, size)
        band_b = b - _up(b_down, size)
        out_bands.append(band_a * m + band_b * (1.0 - m))
        a, b, m = a_down, b_down, m_down
    out = a * m + b * (1.0 - m)
    for band in reversed(out_bands):
        out = _up(out, tuple(band.shape[-2:])) + band
    return out


def mask_on_canvas(mask: torch.Tensor, frames: int, height: int, width: int,
                   working_size: tuple[int, int] | None = None) -> torch.Tensor:
    """MASK -> ``[frames,height,width]`` float; one mask frame broadcasts.

    A mask at a loader working size of the canvas (or at ``working_size``, the edited
    frames' size) is mapped back onto the canvas like the frames are, 0 where the
    loader cropped. Any other size or frame count raises the error that names the fix.
    """
    mask = mask.unsqueeze(0) if mask.dim() == 2 else mask
    size = tuple(mask.shape[-2:])
    if mask.dim() == 3 and size != (height, width) and (
            size == working_size or find_frame_plan(height, width, *size) is not None):
        fitted, covered = fit_to_canvas(mask.float(), height, width)
        mask = fitted * covered
    try:
        return match_mask_frames(mask, frames, height, width)
    except ValueError as err:
        raise ValueError(f"{err}; {ALIGN_HINT} (its mask input takes the edit's mask too)") from None


def _check_frame_counts(edited: torch.Tensor, original: torch.Tensor, what: str = "edited video") -> None:
    if edited.shape[0] != original.shape[0]:
        raise ValueError(f"the {what} has {edited.shape[0]} frames but the original has {original.shape[0]}; "
                         "trim both to the same frames (same frame cap / skip / stride on the loaders), or, "
                         f"{ALIGN_HINT}")


def _check_size(frames: torch.Tensor, original: torch.Tensor, what: str) -> None:
    """Refuse ``frames`` at a size that is neither the original's nor a working size Load Video makes of it."""
    (h, w), (height, width) = frames.shape[1:3], original.shape[1:3]
    if (h, w) != (height, width) and find_frame_plan(height, width, h, w) is None:
        raise ValueError(f"the {what} are {w}x{h} px but the original is {width}x{height}, and {w}x{h} is not a "
                         f"working size Load Video makes of it, so where each pixel goes is unknown; {ALIGN_HINT} "
                         "(its resize policy says how the source was fitted to the model's size)")


def _on_canvas(frames: torch.Tensor, original: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``frames`` brought to the original's size (``fit_to_canvas``) and dtype, with the coverage ``[H,W]``."""
    channels = original.shape[-1]
    frames = frames[..., :channels].to(device=original.device, dtype=original.dtype)
    if frames.shape[-1] != channels:
        raise ValueError(f"the {what} have {frames.shape[-1]} channels, the original {channels}")
    return fit_to_canvas(frames, original.shape[1], original.shape[2])


def composite_background(edited: torch.Tensor, original: torch.Tensor, mask: torch.Tensor, grow: int = 0,
                         feather: float = 0.0, blend: str = "alpha",
                         background: torch.Tensor | None = None) -> torch.Tensor:
    """Edited frames over the original: ``[T,h,w,3]``, ``[T,H,W,3]``, MASK -> ``[T,H,W,3]``.

    The edited frames (and a mask at their size) are brought to the original's size
    by inverting the loader's crop/resize plan (``fit_to_canvas``); pixels the plan
    cropped away keep the original. Another size or frame count (another model's output)
    is refused: ``align.align_edited_clip`` maps it onto the original first. The mask may
    be one frame (broadcast) or one per frame, at the original's or the edited frames' size. Outside the grown mask the
    result is the original exactly. ``background`` (``[T,h,w,3]`` at either size), the
    object-free clip, replaces the original as what the edit is blended over inside the
    grown mask.
    """
    if blend not in BLEND_MODES:
        raise ValueError(f"unknown blend {blend!r}; choose one of {', '.join(BLEND_MODES)}")
    if edited.dim() != 4 or original.dim() != 4:
        raise ValueError("edited and original must be IMAGE batches [T,H,W,C]")
    frames, height, width = original.shape[0], original.shape[1], original.shape[2]
    _check_frame_counts(edited, original)
    _check_size(edited, original, "edited frames")
    if background is not None:
        _check_frame_counts(background, original, "background")
        _check_size(background, original, "background frames")
    mask = mask_on_canvas(mask.to(original.device), frames, height, width, tuple(edited.shape[1:3]))
    edited, covered = _on_canvas(edited, original, "edited frames")
    base = original
    if background is not None:
        filled, filled_covered = _on_canvas(background, original, "background frames")
        base = torch.where(filled_covered[..., None], filled, original)
    alpha, region = composite_alpha(mask, grow, feather)
    region = region & covered
    alpha = torch.where(region, alpha, torch.zeros_like(alpha)).unsqueeze(-1)
    if blend == "alpha":
        mixed = edited * alpha + base * (1.0 - alpha)
    else:
        bands = laplacian_blend(edited.movedim(-1, 1).contiguous(), base.movedim(-1, 1).contiguous(),
                                alpha.movedim(-1, 1).contiguous())
        # fade the multi-band result out with alpha, so its wide low-frequency seam ends at the mask edge
        mixed = base + (bands.movedim(1, -1).clamp(0, 1) - base) * alpha
    return torch.where(region.unsqueeze(-1), mixed, original)


def composite_video(edited: torch.Tensor, original: torch.Tensor, mask: torch.Tensor, grow: int = 0,
                    feather: float = 0.0, blend: str = "alpha", chunk: int = 16,
                    progress: Progress | None = None, background: torch.Tensor | None = None) -> torch.Tensor:
    """``composite_background`` over a long clip, ``chunk`` frames at a time; same result.

    Frame counts are checked up front so a bad input fails before any work is done.
    ``progress(done, total)`` is called after every chunk.
    """
    frames = original.shape[0]
    _check_frame_counts(edited, original)
    _check_size(edited, original, "edited frames")
    if background is not None:
        _check_frame_counts(background, original, "background")
        _check_size(background, original, "background frames")
    mask = mask.unsqueeze(0) if mask.dim() == 2 else mask
    if mask.shape[0] not in (1, frames):
        mask_on_canvas(mask, frames, *original.shape[1:3], tuple(edited.shape[1:3]))  # raises the error naming the fix
    out = torch.empty_like(original)
    slices = chunk_slices(frames, max(1, chunk))
    for i, sl in enumerate(slices):
        part_mask = mask if mask.shape[0] == 1 else mask[sl]
        out[sl] = composite_background(edited[sl], original[sl], part_mask, grow, feather, blend,
                                       None if background is None else background[sl])
        notify(progress, i + 1, len(slices))
    return out
