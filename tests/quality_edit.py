"""One DRIVE edit of a test-bed clip through drive_ops, and the numbers that judge it.

Shared by the quality tests (tests/test_quality_*.py) and ``python -m bench.quality``, so the
table and the asserted claims come from the same code. The edit is the pack's path without
ComfyUI: invert the AE latents with the empty prompt (DDIM, EasyInv or DDIM with STEM
attention), then sample back with ``masked_cfg.guided_denoiser`` (RAVE grids, CFG, the
instance mask in latent space) or Pix2Video's guided DDIM, optionally with cross-frame
self-attention in the UNet, optionally under the test bed's depth ControlNet on inversion and
edit (``Variant.controlnet``, the source's exact depth hints gridded with the latents);
tests/integration/editing_inprocess.py proves this step model equals the nodes' patches.
Clips are held-out world seeds with one object; the edit recolours that object to the first
of green / red / blue that is neither its colour nor the background's. :func:`shrink_edit`
is the shrinking case (a red ball replaced by a smaller one with Fill Background), shared by
tests/test_fill_testbed.py and ``python -m bench.shrink_edit``.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from drive_ops.composite.compositing import composite_video
from drive_ops.core.mask_morphology import grow_mask
from drive_ops.diffusion import inversion, masked_cfg, pix2video, schedule
from drive_ops.diffusion.cross_frame_attention import blocks_for, gather_context, source_frames
from drive_ops.diffusion.rave_grid import compose_grids, fitted_grid_size, grid_permutation
from drive_ops.diffusion.stem import stem_attention
from drive_ops.evaluate.metrics import flicker, flicker_ratio, psnr

NEW_COLOURS = ("green", "red", "blue")
CLIP_SEEDS = tuple(range(21, 45))      # 24 offsets from world.HELDOUT_START (the tests take the first 3)
BG_GROW_PX = 2                          # background = outside the true mask grown by this (the seam band)


@dataclass(frozen=True)
class Variant:
    """One configuration of the edit (defaults = the pack's Invert Video ddim + Masked-CFG Sampler, no grid)."""
    name: str = "ddim"
    inversion: str = "ddim"          # ddim | easyinv | stem
    steps: int = 20
    cfg: float = 7.5
    cfg_start: float = 0.0
    grid: int = 1
    shuffle: bool = False
    mask: bool = True
    pix2video: float = 0.0           # Pix2Video latent-guidance weight (0 = plain DDIM sampling)
    cross_frame: str | None = None   # pix2video | sparse_causal | anchor_only self-attention while sampling
    fresh_noise: bool = False        # baseline: seeded noise inside the mask instead of the inverted latent
    mask_grow_px: int = 0            # grow the pixel mask before it goes to latent size (covers edge cells)
    mask_mode: str = "nearest"       # how the pixel mask reaches latent size (masked_cfg.MASK_MODES)
    mask_threshold: float = 0.5      # and where it is binarised (area 0: every block the object touches)
    controlnet: float = 0.0          # depth ControlNet strength on inversion and edit (source hints; 0 = none)


@dataclass
class Case:
    """A held-out clip, the colour it is edited to and the edit prompt."""
    seed: int
    clip: object
    new_colour: str
    target_caption: str
    frames: torch.Tensor     # IMAGE [T,H,W,3]
    mask: torch.Tensor       # MASK [T,H,W] float, the true object mask


def make_case(seed: int, frames: int = 8, size: int = 64) -> Case:
    """Held-out clip ``HELDOUT_START + seed`` with one object, and its recolour target."""
    from testbed import world

    clip = world.make_clip(world.HELDOUT_START + seed, frames=frames, size=size, n_objects=1)
    new = next(c for c in NEW_COLOURS if c not in (clip.objects[0].colour, clip.scene.background.colour))
    target = clip.scene.replace_object(0, colour=new)
    return Case(seed, clip, new, target.caption, torch.from_numpy(clip.frames),
                torch.from_numpy(clip.union).float())


class _AttnProcessor:
    """diffusers ``attn1`` processor: self-attention with K/V from other frames (cross-frame) or STEM bases."""

    def __init__(self, kind: str, index: torch.Tensor | None = None, seed: int = 0):
        self.kind, self.index, self.seed = kind, index, seed

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **_):
        q, k_src = attn.to_q(hidden_states), hidden_states
        if self.kind == "cross_frame":
            k_src = gather_context(hidden_states, 1, self.index)
        k, v = attn.to_k(k_src), attn.to_v(k_src)
        if self.kind == "stem":
            out = stem_attention(q, k, v, attn.heads, seed=self.seed)
        else:
            b, n, c = q.shape
            d = c // attn.heads
            heads = lambda t: t.reshape(b, -1, attn.heads, d).transpose(1, 2)  # noqa: E731
            out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(b, n, c)
        return attn.to_out[1](attn.to_out[0](out))


_DIFFUSERS_BLOCK = {"input": "down_blocks", "middle": "mid_block", "output": "up_blocks"}


@contextmanager
def attention(unet, kind: str | None, frames: int = 0, mode: str = "pix2video"):
    """Swap the UNet's self-attention (``attn1``) for cross-frame (``mode``'s layers) or STEM, then restore it."""
    if kind is None:
        yield
        return
    original = unet.attn_processors
    prefixes = tuple(_DIFFUSERS_BLOCK[b] for b in blocks_for(mode, "mode default")) if kind == "cross_frame" else ("",)
    proc = _AttnProcessor(kind, source_frames(frames, mode) if kind == "cross_frame" else None)
    unet.set_attn_processor({n: (proc if n.endswith("attn1.processor") and n.startswith(prefixes) else p)
                             for n, p in original.items()})
    try:
        yield
    finally:
        unet.set_attn_processor(original)


def latent_mask(case: Case, latent_hw: tuple[int, int], grow_px: int = 0, mode: str = "nearest",
                threshold: float = 0.5) -> torch.Tensor:
    """The instance mask (grown by ``grow_px``) at latent size, as the Masked-CFG Sampler makes it."""
    mask = grow_mask(case.mask, grow_px) if grow_px else case.mask
    return masked_cfg.mask_to_latent(mask, *latent_hw, mode, threshold)


_CONTROLNET: list = []                  # the test bed's depth ControlNet, loaded once


def source_hints(case: Case) -> torch.Tensor:
    """The source clip's exact depth hints ``[T,3,H,W]`` (what a depth preprocessor gives the ControlNet)."""
    from testbed import controlnet, hints

    return controlnet.hint_tensor(hints.clip_hints(case.clip))


def structured(tb, strength: float):
    """``tb`` with its UNet under the depth ControlNet at ``strength`` (``tb`` itself for 0); set ``.unet.hint``."""
    if strength == 0.0:
        return tb
    from testbed import controlnet

    if not _CONTROLNET:
        skip_without_weights("testbed ControlNet", controlnet.missing_files(), controlnet.RETRAIN_COMMAND)
        _CONTROLNET.append(controlnet.load_controlnet())
    return replace(tb, unet=controlnet.ControlledUNet(tb.unet, _CONTROLNET[0], strength))


def gridded_hints(denoise, unet, hints: torch.Tensor, sigmas: torch.Tensor, v: Variant, seed: int):
    """``denoise(x, sigma, branch)`` that first tiles the per-frame ``hints`` into the step's grids with the
    latents' permutation (``masked_cfg.guided_denoiser``'s, all grids in one call), as the pack's grid wrapper does."""
    g, _ = fitted_grid_size(hints.shape[0], v.grid)

    def run(x: torch.Tensor, sigma: torch.Tensor, branch: int) -> torch.Tensor:
        perm = grid_permutation(hints.shape[0], g, seed, schedule.step_index(sigmas, sigma), v.shuffle)
        unet.hint = compose_grids(hints, perm, g)
        return denoise(x, sigma, branch)

    return run


def invert(tb, z0: torch.Tensor, method: str, steps: int, hints: torch.Tensor | None = None,
           strength: float = 0.0) -> torch.Tensor:
    """Empty-prompt inversion of UNet-unit latents ``[T,4,h,w]`` to the last sigma of ``steps`` DDIM steps,
    under the depth ControlNet at ``strength`` with per-frame ``hints`` ``[T,3,H,W]`` when it is not 0."""
    tb = structured(tb, strength)
    if strength:
        tb.unet.hint = hints
    empty = tb.text_context("")[0]
    model = tb.denoiser(empty, cfg=1.0)
    sigmas = schedule.ddim_inversion_sigmas(tb.sigmas, steps)
    if method == "easyinv":
        return inversion.sample_easyinv(model, z0, sigmas)
    with attention(tb.unet, "stem" if method == "stem" else None):
        return inversion.sample_ddim_inversion(model, z0, sigmas)


def reconstruct(tb, noise: torch.Tensor, steps: int, hints: torch.Tensor | None = None,
                strength: float = 0.0) -> torch.Tensor:
    """Sample inverted latents back at cfg 1 with the empty prompt (what inversion must undo) -> UNet units."""
    tb = structured(tb, strength)
    if strength:
        tb.unet.hint = hints
    empty = tb.text_context("")[0]
    return inversion.sample_ddim(tb.denoiser(empty, cfg=1.0), noise, schedule.ddim_sampling_sigmas(tb.sigmas, steps))


def sample_edit(tb, case: Case, noise: torch.Tensor, v: Variant, seed: int = 0) -> torch.Tensor:
    """Masked-CFG (or Pix2Video) sampling from inverted latents toward the target prompt -> UNet-unit latents."""
    t = noise.shape[0]
    tb = structured(tb, v.controlnet)
    sigmas = schedule.ddim_sampling_sigmas(tb.sigmas, v.steps)
    pos = tb.text_context(case.target_caption)[0]
    neg = tb.text_context("")[0]
    m = latent_mask(case, tuple(noise.shape[-2:]), v.mask_grow_px, v.mask_mode, v.mask_threshold)
    if v.fresh_noise:
        fresh = torch.randn(noise.shape, generator=torch.Generator().manual_seed(seed)) * schedule.vp_scale(sigmas[0])
        noise = torch.where(m.unsqueeze(1) > 0, fresh, noise)
    denoise = tb.branch_denoiser(pos, neg)
    if v.controlnet:
        denoise = gridded_hints(denoise, tb.unet, source_hints(case), sigmas, v, seed)
    model = masked_cfg.guided_denoiser(denoise, sigmas, v.cfg, mask=m if v.mask else None,
                                       cfg_start=v.cfg_start, grid_size=v.grid, shuffle=v.shuffle, seed=seed)
    with attention(tb.unet, "cross_frame" if v.cross_frame else None, t, v.cross_frame or "pix2video"):
        if v.pix2video > 0:
            return pix2video.sample_pix2video(model, noise, sigmas, weight=v.pix2video)
        return inversion.sample_ddim(model, noise, sigmas)


def object_warp_error(edited: torch.Tensor, clip, erode_px: int = 2) -> float:
    """Mean squared RGB change of the object along its TRUE motion: edited[t](p) vs edited[t+1](p + flow(p)).

    Pixels are those of the object mask of frame t eroded by ``erode_px`` whose flow target
    stays inside the object of frame t+1 (the world's flow is exact; no estimated flow).
    """
    x = edited.float()
    t, h, w, _ = x.shape
    flow = torch.from_numpy(clip.flow).float()                       # [T-1,H,W,2] forward (dx, dy)
    masks = torch.from_numpy(clip.masks[0]).float()
    inner = grow_mask(masks, -erode_px) > 0.5
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    errs = []
    for i in range(t - 1):
        gx = (xs + flow[i, ..., 0]) / (w - 1) * 2 - 1
        gy = (ys + flow[i, ..., 1]) / (h - 1) * 2 - 1
        grid = torch.stack([gx, gy], -1)[None]
        nxt = F.grid_sample(x[i + 1].permute(2, 0, 1)[None], grid, align_corners=True)[0].permute(1, 2, 0)
        lands = F.grid_sample(inner[i + 1].float()[None, None], grid, mode="nearest", align_corners=True)[0, 0] > 0.5
        valid = inner[i] & lands
        if valid.any():
            errs.append(((nxt - x[i]) ** 2).mean(-1)[valid].mean())
    return float(torch.stack(errs).mean()) if errs else math.nan


def object_flicker(case: Case, edited: torch.Tensor) -> float:
    """Flicker ratio inside the object (edited frame-to-frame change over the source's; 1 = as steady)."""
    f = flicker(case.frames, edited, case.mask)
    return float(flicker_ratio(f.edited_inside, f.source_inside).mean())


def background_psnr(reference: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor,
                    grow: int = BG_GROW_PX) -> float:
    """PSNR (dB) of ``edited`` vs ``reference`` over the pixels outside ``mask`` grown by ``grow``, pooled."""
    region = grow_mask(mask.float(), grow) <= 0
    mse = ((edited.float() - reference.float()) ** 2).mean(-1)[region].mean()
    return 10 * math.log10(1.0 / max(float(mse), 1e-12))


@dataclass
class EditResult:
    case: Case
    variant: Variant
    edited: torch.Tensor        # IMAGE [T,H,W,3], the decoded sample, before composition
    composited: torch.Tensor    # IMAGE, edited over the source outside the grown mask
    roundtrip: torch.Tensor     # IMAGE, the AE round trip of the source
    seconds: float
    numbers: dict = field(default_factory=dict)


PLACEMENTS = ("in place", "elsewhere", "not recoloured")
IN_PLACE_IOU = 0.5                      # new-colour pixels vs the true mask: at least this IoU is "in place"
RECOLOURED_SHARE = 0.25                 # new-colour pixels (share of the mask's area) that count as a recolour


def placement(case: Case, composited: torch.Tensor, edited: torch.Tensor) -> list[str]:
    """Per frame, one of PLACEMENTS, judged against the object's TRUE mask (``judge.pixel_labels`` colours).

    "in place": in the composited frame (what the user gets) the new colour's pixels have IoU >=
    ``IN_PLACE_IOU`` with the true mask; else "elsewhere" when the sampler's own output (before the
    composite cut it) holds new-colour pixels of at least ``RECOLOURED_SHARE`` of the mask's area, most
    of them off the mask (the object redrawn where it was not); else "not recoloured".
    """
    from testbed import judge

    colour = judge.OBJECT_NAMES.index(case.new_colour)
    background = case.clip.scene.background.colour
    out = []
    for t, mask in enumerate(case.clip.masks[0]):
        new = judge.pixel_labels(composited[t].detach().numpy(), background) == colour
        if (new & mask).sum() >= IN_PLACE_IOU * max(int((new | mask).sum()), 1):
            out.append("in place")
            continue
        drawn = judge.pixel_labels(edited[t].detach().numpy(), background) == colour
        off = int((drawn & ~mask).sum())
        out.append("elsewhere" if drawn.sum() >= RECOLOURED_SHARE * mask.sum() and off > drawn.sum() / 2
                   else "not recoloured")
    return out


def success(case: Case, images: torch.Tensor) -> tuple[float, float]:
    """(share of frames whose object median colour is the new colour, mean share of mask pixels of that colour)."""
    from testbed import judge

    imgs = images.detach().numpy()
    m = case.clip.masks[0]
    ok = [judge.colour_in_mask(imgs[t], m[t]).colour == case.new_colour for t in range(len(imgs))]
    share = [judge.colour_fraction(imgs[t], m[t], case.new_colour) for t in range(len(imgs))]
    return float(np.mean(ok)), float(np.mean(share))


def _inverted(tb, case: Case, z0: torch.Tensor, method: str, steps: int,
              cache: dict | None, strength: float = 0.0) -> tuple[torch.Tensor, float]:
    """(inverted latents, seconds the inversion took), computed once per clip/method/steps/ControlNet strength
    when ``cache`` is given."""
    key = (case.seed, method, steps) + ((strength,) if strength else ())
    if cache is not None and key in cache:
        return cache[key]
    start = time.perf_counter()
    out = invert(tb, z0, method, steps, source_hints(case) if strength else None, strength), \
        time.perf_counter() - start
    if cache is not None:
        cache[key] = out
    return out


def run_edit(tb, case: Case, v: Variant, seed: int = 0, inverted: dict | None = None,
             composite_grow: int = BG_GROW_PX) -> EditResult:
    """Invert (cached in ``inverted`` per clip/method/steps), sample, decode, composite and measure one edit.

    ``seconds`` = inversion + sampling + decoding, the inversion's time counted even when cached.
    """
    z0 = tb.encode(case.frames) * tb.latent_scale
    noise, invert_s = _inverted(tb, case, z0, v.inversion, v.steps, inverted, v.controlnet)
    start = time.perf_counter()
    edited = tb.decode(sample_edit(tb, case, noise, v, seed) / tb.latent_scale)
    seconds = time.perf_counter() - start + invert_s
    roundtrip = tb.decode(z0 / tb.latent_scale)
    comp = composite_video(edited, case.frames, case.mask, grow=composite_grow)
    ok, share = success(case, edited)
    numbers = dict(success=ok, share=share, bg_psnr=background_psnr(roundtrip, edited, case.mask),
                   warp=object_warp_error(edited, case.clip), flicker=object_flicker(case, edited))
    return EditResult(case, v, edited, comp, roundtrip, seconds, numbers)


def reconstruction_psnr(tb, case: Case, method: str, steps: int, inverted: dict | None = None,
                        strength: float = 0.0) -> tuple[float, float]:
    """(PSNR of invert -> reconstruct vs the frames, PSNR of the AE round trip vs the frames), dB, per-frame mean;
    both passes under the depth ControlNet at ``strength`` when it is not 0."""
    z0 = tb.encode(case.frames) * tb.latent_scale
    noise = _inverted(tb, case, z0, method, steps, inverted, strength)[0]
    hints = source_hints(case) if strength else None
    recon = tb.decode(reconstruct(tb, noise, steps, hints, strength) / tb.latent_scale)
    roundtrip = tb.decode(z0 / tb.latent_scale)
    return float(psnr(case.frames, recon).mean()), float(psnr(case.frames, roundtrip).mean())


def with_name(v: Variant, **changes) -> Variant:
    """``v`` with ``changes``, named by them."""
    return replace(v, name=",".join(f"{k}={val}" for k, val in changes.items()), **changes)


def load_testbed_or_skip():
    """The committed test bed; outside CI a checkout without the weight files skips (in CI it fails)."""
    from testbed import load

    skip_without_weights("testbed", load.missing_files(), load.RETRAIN_COMMAND)
    torch.set_num_threads(1)
    return load.load_testbed()


def skip_without_weights(what: str, missing: list, retrain_command: str) -> None:
    """Outside CI, with weight files ``missing``, skip naming the command that trains them (in CI the test goes on
    and fails on the missing files)."""
    import os

    import pytest

    if missing and os.environ.get("CI", "").lower() not in {"1", "true", "yes"}:
        pytest.skip(f"{what} weights missing ({', '.join(p.name for p in missing)}); "
                    f"train them with `{retrain_command}`")


SHRINK_WIRINGS = ("edit the fill", "composite over the fill")


@dataclass
class ShrinkEdit:
    """A red ball replaced by a smaller ``new_colour`` one (:func:`shrink_edit`); masks ``[T,H,W]`` float."""
    frames: torch.Tensor      # IMAGE, the source clip
    filled: torch.Tensor      # IMAGE, Fill Background's output (the ball removed)
    edited: torch.Tensor      # IMAGE, the decoded sample
    out: torch.Tensor         # IMAGE, the composite the wiring makes
    old: torch.Tensor         # the red ball's mask
    new: torch.Tensor         # the new ball's mask: the old one shrunk


def red_ball_clip(seed: int, frames: int = 16, size: int = 64):
    """(scene, clip) of world seed ``seed`` with its one object made a red ball."""
    from testbed import world

    scene = world.sample_scene(seed, frames=frames, size=size, n_objects=1).replace_object(0, colour="red", shape="ball")
    return scene, world.render_clip(scene)


def red_pixels(frames: torch.Tensor, where: torch.Tensor) -> list[int]:
    """Per frame of ``frames`` ``[T,H,W,3]``, the pixels of ``where`` ``[T,H,W]`` bool the judge calls red."""
    from testbed import judge

    red = judge.OBJECT_NAMES.index("red")
    return [int((judge.pixel_labels(frames[t].numpy())[where[t].numpy()] == red).sum()) for t in range(len(frames))]


def shrink_edit(tb, seed: int, wiring: str, new_colour: str = "yellow", shrink_px: int = 4, fill_grow_px: int = 2,
                steps: int = 20) -> ShrinkEdit:
    """A red ball replaced by a smaller ball of ``new_colour`` with Fill Background, one of ``SHRINK_WIRINGS``.

    "edit the fill": invert the filled clip and sample the edit inside the old mask, then
    composite over the original with the filled clip as ``background`` (the main workflow's
    bypassed group). "composite over the fill": sample the edit from the original clip
    inside the new mask (the old one shrunk by ``shrink_px``), then composite it with the new
    mask over the filled clip as ``original``. DDIM, ``steps`` steps, masked CFG 7.5.
    """
    from drive_ops.composite.fill_background import fill_background

    if wiring not in SHRINK_WIRINGS:
        raise ValueError(f"unknown wiring {wiring!r}; choose one of {', '.join(SHRINK_WIRINGS)}")
    scene, clip = red_ball_clip(seed)
    frames = torch.from_numpy(clip.frames)
    old = torch.from_numpy(clip.union).float()
    new = grow_mask(old, -shrink_px)
    filled, _ = fill_background(frames, old, grow=fill_grow_px)
    on_fill = wiring == "edit the fill"
    source, sample_mask = (filled, old) if on_fill else (frames, new)
    case = Case(seed, clip, new_colour, scene.replace_object(0, colour=new_colour).caption, source, sample_mask)
    noise = invert(tb, tb.encode(source) * tb.latent_scale, "ddim", steps)
    edited = tb.decode(sample_edit(tb, case, noise, Variant(steps=steps)) / tb.latent_scale)
    out = (composite_video(edited, frames, old, background=filled) if on_fill
           else composite_video(edited, filled, new))
    return ShrinkEdit(frames, filled, edited, out, old, new)
