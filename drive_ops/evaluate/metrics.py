"""Edit-quality metrics on clips ``[T,H,W,3]`` float 0..1 (weight-free, plus CLIP cosine maths).

Recipes follow the video-editing literature (docs/algorithms.md, Metrics) so our
numbers sit next to published ones:

- background preservation: PSNR and SSIM outside a dilated object mask, per frame;
- temporal consistency: warp error (flow on the *source* clip, forward/backward occlusion
  check, MSE of the edited frames) and RAVE's WarpSSIM recipe;
- flicker: mean absolute frame-to-frame change inside / outside the mask, edited vs source;
- inversion reconstruction PSNR next to the VAE round-trip bound;
- CLIP-T / CLIP-F from embeddings the caller computed (no model is loaded here).

Per-frame values are returned as 1-D tensors so the report can plot them; every function
is NaN-free on constant frames (SSIM's stabilising constants, an epsilon in ratios).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.mask_morphology import grow_mask
from ..core.optical_flow import dis_flow, lands_inside, occlusion_mask, warp_backward
from ..core.progress import Progress, notify
from ..core.validate import ALIGN_HINT

SSIM_WIN = 7
"""skimage's default uniform window: WarpSSIM as RAVE computes it uses it."""
FLICKER_EPS = 1.0 / 255.0
"""One grey level: keeps the flicker ratio finite (and 1.0) when nothing moves in the source."""
SSIM_CHUNK = 4


def _check_clip(clip: torch.Tensor, what: str) -> None:
    if clip.dim() != 4 or clip.shape[-1] < 3:
        raise ValueError(f"the {what} clip has shape {tuple(clip.shape)}; expected IMAGE [T,H,W,3]")


def check_pair(source: torch.Tensor, edited: torch.Tensor, what: str = "edited") -> None:
    """Raise a ``ValueError`` naming the fix unless the two clips have the same ``[T,H,W]``."""
    _check_clip(source, "source")
    _check_clip(edited, what)
    if source.shape[0] != edited.shape[0]:
        raise ValueError(f"the source clip has {source.shape[0]} frames but the {what} clip has "
                         f"{edited.shape[0]}; compare clips loaded with the same frame cap / stride, or, {ALIGN_HINT}")
    if source.shape[1:3] != edited.shape[1:3]:
        raise ValueError(f"the source frames are {source.shape[2]}x{source.shape[1]} px but the {what} frames are "
                         f"{edited.shape[2]}x{edited.shape[1]}; resize or crop both the same way "
                         f"(VAE Encode crops to multiples of 8), or, {ALIGN_HINT}")


def _rgb(clip: torch.Tensor) -> torch.Tensor:
    return clip[..., :3].float()


def _region_mean(values: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` ``[T,H,W]`` over ``region`` (bool ``[T,H,W]``) per frame -> ``[T]``.

    Frames with an empty region give NaN: the quantity is undefined there, and callers
    decide (``nanmean`` for a summary, or an error that names the fix).
    """
    if region is None:
        return values.flatten(1).mean(1)
    w = region.to(values.dtype)
    count = w.flatten(1).sum(1)
    total = (values * w).flatten(1).sum(1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


def psnr_from_mse(mse: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """PSNR in dB, ``10 log10(peak^2 / mse)``, for signals spanning ``peak`` (1 for images in 0..1).

    ``mse == 0`` gives ``inf`` (identical frames); NaN stays NaN. The one PSNR of the pack:
    the per-frame metrics below and the benchmarks' latent / [-1,1] pixel PSNR use it.
    """
    return 20.0 * math.log10(peak) - 10.0 * torch.log10(torch.as_tensor(mse))


def psnr(reference: torch.Tensor, test: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Per-frame PSNR ``[T]`` of ``test`` vs ``reference`` (both ``[T,H,W,3]``, 0..1).

    ``region`` (bool ``[T,H,W]``) restricts the pixels, e.g. the background outside a
    dilated mask; a frame whose region is empty gives NaN.
    """
    check_pair(reference, test, "test")
    err = (_rgb(test) - _rgb(reference)).pow(2).mean(-1)
    return psnr_from_mse(_region_mean(err, region))


def _pad_symmetric(x: torch.Tensor, p: int) -> torch.Tensor:
    """Half-sample symmetric padding of the last two dims (scipy's ``mode='reflect'``)."""
    x = torch.cat([x[..., :p, :].flip(-2), x, x[..., -p:, :].flip(-2)], dim=-2)
    return torch.cat([x[..., :p].flip(-1), x, x[..., -p:].flip(-1)], dim=-1)


def ssim_map(a: torch.Tensor, b: torch.Tensor, progress: Progress | None = None) -> torch.Tensor:
    """Per-pixel SSIM ``[T,H,W]`` (mean over RGB) of two ``[T,H,W,3]`` clips in 0..1.

    skimage's default recipe (``structural_similarity``: 7x7 uniform window, sample
    covariance, K1=0.01, K2=0.03, data range 1), so WarpSSIM compares with RAVE's numbers.
    Computed in float64 where the device has it (as skimage does: float32 cancellation in
    E[x^2] - E[x]^2 shows at the 4th decimal) and chunked over frames to bound the temporaries.
    """
    check_pair(a, b, "second")
    h, w = a.shape[1:3]
    if min(h, w) < SSIM_WIN:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WIN}x{SSIM_WIN} px, got {w}x{h}")
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    n = SSIM_WIN * SSIM_WIN
    cov_norm = n / (n - 1.0)
    pad = SSIM_WIN // 2
    dtype = torch.float32 if a.device.type == "mps" else torch.float64  # MPS has no float64
    out = []
    t = a.shape[0]
    for start in range(0, t, SSIM_CHUNK):
        x = _rgb(a[start:start + SSIM_CHUNK]).to(dtype).movedim(-1, 1)
        y = _rgb(b[start:start + SSIM_CHUNK]).to(device=x.device, dtype=dtype).movedim(-1, 1)
        stack = _pad_symmetric(torch.cat([x, y, x * x, y * y, x * y], dim=1), pad)
        mx, my, mxx, myy, mxy = F.avg_pool2d(stack, SSIM_WIN, stride=1).chunk(5, dim=1)
        vx = cov_norm * (mxx - mx * mx)
        vy = cov_norm * (myy - my * my)
        vxy = cov_norm * (mxy - mx * my)
        s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        out.append(s.mean(1).float())
        notify(progress, min(start + SSIM_CHUNK, t), t)
    return torch.cat(out)


def ssim(a: torch.Tensor, b: torch.Tensor, progress: Progress | None = None) -> torch.Tensor:
    """Per-frame SSIM ``[T]`` as skimage reports it: the map's mean with the 3 px border cropped."""
    p = SSIM_WIN // 2
    return ssim_map(a, b, progress)[:, p:-p, p:-p].flatten(1).mean(1)


def background_region(mask: torch.Tensor, dilation_px: int) -> torch.Tensor:
    """Bool ``[T,H,W]``: pixels outside ``mask`` grown by ``dilation_px`` (the boundary band is excluded)."""
    return grow_mask(mask.float(), int(dilation_px)) < 0.5


@dataclass
class BackgroundScores:
    """Per-frame background preservation; NaN where a frame has no background pixel."""

    psnr: torch.Tensor  # [T] dB, inf where unchanged
    ssim: torch.Tensor  # [T]
    coverage: torch.Tensor  # [T] share of pixels counted as background


def background_preservation(source: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor | None,
                            dilation_px: int = 7, progress: Progress | None = None) -> BackgroundScores:
    """PSNR and SSIM of ``edited`` vs ``source`` outside the dilated ``mask`` ``[T,H,W]``.

    Bg SSIM is the SSIM map averaged over background pixels. Without a mask the whole
    frame counts (then these are plain full-frame PSNR / SSIM).
    """
    check_pair(source, edited)
    region = None if mask is None else background_region(mask, dilation_px)
    smap = ssim_map(source, edited, progress)
    coverage = torch.ones(smap.shape[0], device=smap.device) if region is None else region.float().flatten(1).mean(1)
    return BackgroundScores(psnr=psnr(source, edited, region), ssim=_region_mean(smap, region), coverage=coverage)


@dataclass
class SourceFlows:
    """DIS flows between consecutive source frames, for the temporal metrics.

    ``backward[t]`` ``[H,W,2]`` maps frame t+1 onto frame t (sample frame t at
    ``x + backward``); ``forward[t]`` maps frame t onto t+1; ``occluded[t]`` (bool
    ``[H,W]``) marks pixels of frame t+1 that fail the forward/backward check.
    """

    forward: torch.Tensor  # [T-1,H,W,2]
    backward: torch.Tensor  # [T-1,H,W,2]
    occluded: torch.Tensor  # [T-1,H,W]


def flows_from(forward: torch.Tensor, backward: torch.Tensor) -> SourceFlows:
    """Bundle given flows ``[T-1,H,W,2]`` with their forward/backward occlusion masks."""
    occluded = torch.stack([occlusion_mask(b, f) for f, b in zip(forward, backward)])
    return SourceFlows(forward=forward, backward=backward, occluded=occluded)


def source_flows(source: torch.Tensor, preset: str = "medium", progress: Progress | None = None) -> SourceFlows:
    """DIS flows both ways between consecutive frames of ``source`` ``[T,H,W,3]`` (T >= 2)."""
    _check_clip(source, "source")
    t = source.shape[0]
    if t < 2:
        raise ValueError("temporal metrics need at least 2 frames; give the whole clip, not one frame")
    fw, bw = [], []
    for i in range(t - 1):
        fw.append(dis_flow(source[i], source[i + 1], preset))
        bw.append(dis_flow(source[i + 1], source[i], preset))
        notify(progress, i + 1, t - 1)
    return flows_from(torch.stack(fw), torch.stack(bw))


def warp_error(edited: torch.Tensor, flows: SourceFlows) -> torch.Tensor:
    """Per-pair warp error ``[T-1]``: MSE between edited frame t+1 and edited frame t warped onto it.

    The flow comes from the source clip, so a temporally consistent edit moves with the
    source; occluded pixels (forward/backward check) are left out. A pair with no valid
    pixel gives NaN.
    """
    _check_clip(edited, "edited")
    x = _rgb(edited)
    if flows.backward.shape[0] != x.shape[0] - 1 or flows.backward.shape[1:3] != x.shape[1:3]:
        raise ValueError(f"flows for {flows.backward.shape[0] + 1} frames of {tuple(flows.backward.shape[1:3])} "
                         f"do not fit an edited clip of shape {tuple(x.shape)}; compute them on the matching source")
    err = torch.stack([(warp_backward(x[i], flows.backward[i].to(x.device)) - x[i + 1]).pow(2).mean(-1)
                       for i in range(x.shape[0] - 1)])
    return _region_mean(err, ~flows.occluded.to(x.device))


def warp_ssim(edited: torch.Tensor, flows: SourceFlows, progress: Progress | None = None) -> torch.Tensor:
    """RAVE's WarpSSIM per frame ``[T]``, ×100 of its mean is the published number.

    Copies RAVE's quirks (rehg-lab/RAVE ``evaluation_uncleaned/eval_utils.py: warp_video``,
    read there): the RAFT flow source t -> t+1 is used as if it were backward
    (``cv2.remap(edit[t], grid + flow)``), samples outside the frame are black (cv2.remap's
    constant border), no occlusion mask, and frame 0 contributes SSIM(x0, x0) = 1.
    So on moving content it is lower than a correctly warped SSIM would be.
    Differences left: DIS instead of RAFT flow, float frames instead of uint8/GIF ones.
    """
    _check_clip(edited, "edited")
    x = _rgb(edited)
    warped = []
    for i in range(x.shape[0] - 1):
        f = flows.forward[i].to(x.device)
        warped.append(warp_backward(x[i], f) * lands_inside(f).unsqueeze(-1))
    scores = ssim(x[1:], torch.stack(warped), progress)
    return torch.cat([torch.ones(1, device=scores.device), scores])


@dataclass
class Flicker:
    """Mean absolute frame-to-frame change ``[T-1]`` (0..1 units) inside / outside the mask and overall."""

    edited_inside: torch.Tensor
    edited_outside: torch.Tensor
    source_inside: torch.Tensor
    source_outside: torch.Tensor
    edited_frame: torch.Tensor
    source_frame: torch.Tensor


def _frame_change(clip: torch.Tensor) -> torch.Tensor:
    x = _rgb(clip)
    return (x[1:] - x[:-1]).abs().mean(-1)


def flicker(source: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor | None,
            dilation_px: int = 7) -> Flicker:
    """Frame-to-frame change of both clips inside and outside the object, per pair.

    A pair's object region is the union of the masks of its two frames; "outside" is the
    complement of that union grown by ``dilation_px`` (the seam band belongs to neither).
    Without a mask, "inside" is the whole frame and "outside" is empty (NaN).
    """
    check_pair(source, edited)
    de, ds = _frame_change(edited), _frame_change(source)
    if mask is None:
        inside = torch.ones_like(de, dtype=torch.bool)
        outside = torch.zeros_like(de, dtype=torch.bool)
    else:
        m = mask.float().to(de.device)
        union = torch.maximum(m[1:], m[:-1])
        inside = union >= 0.5
        outside = background_region(union, dilation_px)
    return Flicker(edited_inside=_region_mean(de, inside), edited_outside=_region_mean(de, outside),
                   source_inside=_region_mean(ds, inside), source_outside=_region_mean(ds, outside),
                   edited_frame=_region_mean(de, None), source_frame=_region_mean(ds, None))


def flicker_ratio(edited_change: torch.Tensor, source_change: torch.Tensor) -> torch.Tensor:
    """``(edited + eps) / (source + eps)`` with eps one grey level: 1 = as steady as the source."""
    return (edited_change + FLICKER_EPS) / (source_change + FLICKER_EPS)


@dataclass
class Reconstruction:
    """Per-frame PSNR ``[T]`` of an inversion's reconstruction and of the VAE round trip."""

    vae_psnr: torch.Tensor
    inversion_psnr: torch.Tensor

    @property
    def gap_db(self) -> torch.Tensor:
        """dB lost to inversion on top of the VAE (the VAE is the upper bound)."""
        return self.vae_psnr - self.inversion_psnr


def reconstruction(source: torch.Tensor, vae_roundtrip: torch.Tensor,
                   inversion_reconstruction: torch.Tensor) -> Reconstruction:
    """Inversion reconstruction PSNR beside the VAE encode->decode bound, so the two errors separate."""
    check_pair(source, vae_roundtrip, "VAE round-trip")
    check_pair(source, inversion_reconstruction, "reconstruction")
    return Reconstruction(vae_psnr=psnr(source, vae_roundtrip), inversion_psnr=psnr(source, inversion_reconstruction))


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x.float() / x.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)


def clip_text_scores(image_embeds: torch.Tensor, text_embed: torch.Tensor) -> torch.Tensor:
    """CLIP-T per frame ``[T]``: 100 · cos(image embedding ``[T,D]``, text embedding ``[D]`` / ``[1,D]``).

    The mean over frames is the published CLIP-T (RAVE 29.76 with ViT-B/32). Both
    embeddings must live in CLIP's joint (projected) space.
    """
    text = text_embed.reshape(-1)
    if image_embeds.dim() != 2 or image_embeds.shape[-1] != text.shape[0]:
        raise ValueError(f"image embeddings {tuple(image_embeds.shape)} and text embedding of size {text.shape[0]} "
                         "do not match; use a CLIP vision model and a text encoder from the same CLIP")
    return 100.0 * (_unit(image_embeds) @ _unit(text.to(image_embeds.device)))


def clip_frame_scores(image_embeds: torch.Tensor) -> torch.Tensor:
    """CLIP-F per frame ``[T]``: 100 · mean cos of frame i with every other frame.

    Their mean is RAVE's CLIP-F (mean over all pairs i != j; 95.99 in the paper).
    """
    t = image_embeds.shape[0]
    if t < 2:
        raise ValueError("CLIP-F needs at least 2 frames")
    e = _unit(image_embeds)
    sim = e @ e.T
    return 100.0 * (sim.sum(1) - sim.diagonal()) / (t - 1)


def clip_temporal_scores(image_embeds: torch.Tensor) -> torch.Tensor:
    """Tem-Con per pair ``[T-1]``: 100 · cos of consecutive frames (FateZero's recipe)."""
    e = _unit(image_embeds)
    return 100.0 * (e[1:] * e[:-1]).sum(-1)
