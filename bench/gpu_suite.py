"""The pack's performance figures in one run: one table printed, the same rows written to a JSON file.

    python -m bench.gpu_suite --device cuda              # the full sizes (one GPU, at most ~8 minutes)
    python -m bench.gpu_suite --device cpu --small       # small sizes: proves every figure runs, anywhere
    python -m bench.gpu_suite --device cuda --only sampler,vram --out bench/out/mine.json

It runs from the checkout alone: ComfyUI comes from ``bench.common.ensure_comfyui`` (COMFYUI_DIR,
the set-up's ``.cache/ComfyUI-0.3.64``, or the 0.3.64 source archive extracted there from
``.cache/`` or ``../shared/comfyui``; ComfyUI's Python requirements must be importable), and
every model is built here with random weights from ComfyUI's and the pack's own classes:
SD1.5's UNet (fp16 on CUDA, fp32 on the CPU; ``--small`` uses a tiny UNet of the same
structure) and VAE, SAM 2.1 tiny (when the sam2 package is installed), Harmonizer. Speed does
not depend on the weights' values. Conditioning is random ``[1,77,768]`` text embeddings.

Figures (full sizes; ``--small`` shrinks them, see SIZES):
- ``sampler``: Masked-CFG Sampler time per step over bare UNet calls on the same batches (the
  physical floor), 512x512, 16 frames, grid 3; the same for RAVE Grid Patch + Masked CFG Patch
  into core KSampler. Goal <= 1.03.
- ``flow``: the same on a flow model (CONST sampling, 16 latent channels): SD3 medium's MMDiT
  (depth 24, fp16 on CUDA; ``--small``: depth 2) with SD3's text and pooled conditioning, the
  Masked-CFG Sampler over bare DiT calls on the same batches, DiT passes per step. Goal <= 1.05.
- ``vram``: peak memory and time per frame of one sampler step at 16, 48, 96, 300 frames, with
  auto chunking and with one grid per call. Goal: flat (<= +10% from the first to the last).
- ``invert``: Invert Video (EasyInv) seconds per step, 36 frames.
- ``workflow``: the main workflow end to end (36 frames, 512x512, 50 + 50 steps): each stage's
  wall time and share, and core KSampler on the same latents as the reference.
- ``video_io``: Load Video and Save Video (h264 crf 23) fps at 1080p, 300 frames.
- ``harmonize``: Harmonize fps at 1080p (Harmonizer, and the pass-through without weights). Goal >= 100 fps.
- ``masks``: Propagate Mask and Track Object fps at 512 px.
- ``tuning``: Tune-A-Video seconds per tuning step and peak memory at 512x512 for 8, 16 and 24
  frames (bf16 on CUDA, gradient checkpointing, the whole clip per step; bench.tune_a_video has
  the other settings); a frame count that runs out of memory says so.
- ``fill``: Fill Background fps and peak memory at 512 px, 16 frames (bench/fill.py's scene and entry point).

A figure that fails is reported in its row (and the traceback printed) and the others still run;
the exit status is 1 when any failed. The test command runs ``--device cpu --small``
(tests/integration/test_gpu_suite.py) so the suite cannot break unseen.

Adding a figure: one function ``fig_x(ctx) -> list[dict]`` (rows from :func:`row`) under
``@figure("x", needs=("DRIVE_NodeId",))``; it is skipped with a note while a node it needs is
not registered.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from bench.common import REPO, PeakMemory, ensure_comfyui

SIZES = {
    "full": dict(px=512, frames=16, grid=3, steps=3, vram_frames=(16, 48, 96, 300), invert_frames=36,
                 invert_steps=5, flow_frames=36, flow_steps=50, io_size=(1080, 1920), io_frames=300,
                 harmonize_frames=60, mask_px=512, mask_frames=32, sam2_image_size=1024,
                 tune_frames=(8, 16, 24), tune_steps=3, fill_px=512,
                 fill_frames=16, dit_depth=24, dit_positions=192),
    "small": dict(px=64, frames=8, grid=2, steps=2, vram_frames=(4, 8, 16, 24), invert_frames=8,
                  invert_steps=2, flow_frames=8, flow_steps=3, io_size=(270, 480), io_frames=30,
                  harmonize_frames=8, mask_px=128, mask_frames=8, sam2_image_size=256,
                  tune_frames=(2, 4), tune_steps=1, fill_px=96, fill_frames=6, dit_depth=2, dit_positions=32),
}
MEMORY_KIND = {"cuda": "allocated above the start", "cpu": "sampled RSS above the start (noise at small sizes)"}
SAMPLER_ROUNDS = 3
"""Sampler and floor timings alternate this many times; each takes its best (drift hits both alike)."""


def row(figure: str, metric: str, value: float, unit: str, goal: str = "", note: str = "") -> dict:
    return {"figure": figure, "metric": metric, "value": value, "unit": unit, "goal": goal, "note": note}


@dataclass
class Context:
    """What the figures share: device, sizes, the pack's modules and the random models (built once)."""

    device: torch.device
    small: bool
    size: dict
    pack: Callable
    cache: dict = field(default_factory=dict)

    @property
    def dtype(self) -> torch.dtype:
        return torch.float16 if self.device.type == "cuda" else torch.float32

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed(self, fn: Callable) -> tuple[float, object]:
        """(wall seconds, result) of ``fn()`` with the device synchronised on both ends."""
        self.sync()
        start = time.perf_counter()
        out = fn()
        self.sync()
        return time.perf_counter() - start, out

    def model(self):
        if "model" not in self.cache:
            self.cache["model"] = random_sd15(not self.small, self.device, self.dtype)
        return self.cache["model"]

    def flow_model(self):
        if "flow_model" not in self.cache:
            self.cache["flow_model"] = random_sd3(self.size["dit_depth"], self.size["dit_positions"], self.device,
                                                  self.dtype)
        return self.cache["flow_model"]

    def vae(self):
        if "vae" not in self.cache:
            self.cache["vae"] = random_vae(self.device)
        return self.cache["vae"]

    def prompts(self) -> tuple[list, list]:
        gen = torch.Generator().manual_seed(1)
        return [[torch.randn(1, 77, 768, generator=gen), {}]], [[torch.zeros(1, 77, 768), {}]]

    def latents(self, frames: int, px: int | None = None) -> dict:
        lat = (px or self.size["px"]) // 8
        return {"samples": torch.randn(frames, 4, lat, lat, generator=torch.Generator().manual_seed(0))}

    def mask(self, frames: int, px: int | None = None) -> torch.Tensor:
        px = px or self.size["px"]
        mask = torch.zeros(frames, px, px)
        mask[:, px // 4: 3 * px // 4, px // 4: 3 * px // 4] = 1.0
        return mask


def random_sd15(full: bool, device: torch.device, dtype: torch.dtype):
    """A ModelPatcher around SD1.5's UNet (tiny unless ``full``) in ``dtype``, normal(0, 0.02) weights."""
    import comfy.supported_models

    from tests.integration.comfy_inprocess import unet_config

    config = unet_config(full)
    return _random_patcher(comfy.supported_models.SD15(dict(config, attention_resolutions=None)), config, device,
                           dtype)


def random_sd3(depth: int, positions: int, device: torch.device, dtype: torch.dtype):
    """A ModelPatcher around SD3's MMDiT (tools/make_random_sd3_flux.py's configuration at ``depth``) in ``dtype``,
    normal(0, 0.02) weights: ComfyUI's SD3 (CONST sampling, shift 3, latent format SD3)."""
    import comfy.supported_models

    from tools.make_random_sd3_flux import sd3_dit_config

    config = sd3_dit_config(depth, positions)
    return _random_patcher(comfy.supported_models.SD3(dict(config)), config, device, dtype)


def _random_patcher(model_config, config: dict, device: torch.device, dtype: torch.dtype):
    """A ModelPatcher around ``model_config``'s model built from ``config`` in ``dtype``, normal(0, 0.02) weights."""
    import comfy.model_patcher

    model_config.unet_config = dict(config)
    model_config.set_inference_dtype(dtype, None)
    base = model_config.get_model({}, "", device=device)
    with torch.no_grad():
        for p in base.parameters():
            torch.nn.init.normal_(p, std=0.02)
    return comfy.model_patcher.ModelPatcher(base, load_device=device, offload_device=torch.device("cpu"))


def random_vae(device: torch.device):
    """ComfyUI's VAE around SD1.5's AutoencoderKL, each weight drawn as its layer type's ``reset_parameters`` would.

    (ComfyUI builds the autoencoder with ops that skip the initialisation, so its own state dict holds
    whatever memory held: encodings of it were NaN.)
    """
    import comfy.sd
    from comfy.ldm.models.autoencoder import AutoencoderKL

    from tools.make_random_sd15 import VAE_DDCONFIG, random_state_dict

    with torch.device("meta"):
        layout = AutoencoderKL(ddconfig=VAE_DDCONFIG, embed_dim=4)
    state = random_state_dict({"": layout}, seed=0)
    return comfy.sd.VAE(sd={k: v.float() for k, v in state.items()}, device=device)


FIGURES: dict[str, tuple[Callable, tuple[str, ...]]] = {}


def figure(name: str, needs: tuple[str, ...] = ()):
    """Register a figure; ``needs``: node ids that must be registered, else it is skipped with a note."""
    def register(fn):
        FIGURES[name] = (fn, needs)
        return fn
    return register


def unet_batches(model) -> tuple[object, list]:
    """A clone of ``model`` whose UNet calls log (x shape, context batch); returns (clone, log)."""
    log: list = []

    def unet(apply_model, a):
        log.append((tuple(a["input"].shape), tuple(a["c"]["c_crossattn"].shape)))
        return apply_model(a["input"], a["timestep"], **a["c"])

    clone = model.clone()
    clone.set_model_unet_function_wrapper(unet)
    return clone, log


def bare_unet_run(ctx: Context, calls: list) -> Callable[[], None]:
    """Bare ``diffusion_model`` calls on exactly the logged batches (the sampler's floor), warmed up once."""
    unet = ctx.model().model.diffusion_model
    dev, dtype = ctx.device, ctx.dtype
    inputs = [(torch.randn(x, device=dev, dtype=dtype), torch.full((x[0],), 500.0, device=dev, dtype=dtype),
               torch.randn(c, device=dev, dtype=dtype)) for x, c in calls]

    def run():
        with torch.no_grad():
            for x, t, c in inputs:
                unet(x, t, c)

    run()
    return run


def model_batches(model) -> tuple[object, list]:
    """A clone of ``model`` whose model calls log (x shape, {diffusion_model keyword: shape}); returns (clone, log)."""
    log: list = []

    def call(apply_model, a):
        inputs = {"context" if k == "c_crossattn" else k: tuple(v.shape) for k, v in a["c"].items()
                  if torch.is_tensor(v)}
        log.append((tuple(a["input"].shape), inputs))
        return apply_model(a["input"], a["timestep"], **a["c"])

    clone = model.clone()
    clone.set_model_unet_function_wrapper(call)
    return clone, log


def bare_model_run(ctx: Context, model, calls: list) -> Callable[[], None]:
    """Bare ``diffusion_model`` calls of ``model`` on exactly the logged batches (the floor), warmed up once."""
    net = model.model.diffusion_model
    dev, dtype = ctx.device, ctx.dtype
    inputs = [(torch.randn(x, device=dev, dtype=dtype), torch.full((x[0],), 0.5, device=dev, dtype=dtype),
               {k: torch.randn(shape, device=dev, dtype=dtype) for k, shape in kw.items()}) for x, kw in calls]

    def run():
        with torch.no_grad():
            for x, t, kw in inputs:
                net(x, t, **kw)

    run()
    return run


def interleaved_best(ctx: Context, run: Callable, floor: Callable) -> tuple[float, float]:
    """(best seconds of ``run``, best of ``floor``) over SAMPLER_ROUNDS alternating rounds."""
    rounds = [(ctx.timed(run)[0], ctx.timed(floor)[0]) for _ in range(SAMPLER_ROUNDS)]
    return min(r[0] for r in rounds), min(r[1] for r in rounds)


@figure("sampler", needs=("DRIVE_MaskedCFGSampler", "DRIVE_RAVEGridPatch", "DRIVE_MaskedCFGPatch"))
def fig_sampler(ctx: Context) -> list[dict]:
    import comfy.model_management as mm
    import nodes as core

    edit = ctx.pack("nodes.edit")
    s = ctx.size
    pos, neg = ctx.prompts()
    latent, mask = ctx.latents(s["frames"]), ctx.mask(s["frames"])
    model = ctx.model()
    mm.load_models_gpu([model])
    where = f"{s['px']}x{s['px']}, {s['frames']} frames, grid {s['grid']}, {s['steps']} steps, cfg 7.5, mask"

    def one_box(m):
        return lambda: edit.MaskedCFGSampler.execute(m, pos, neg, latent, s["steps"], 7.5, -1.0, s["grid"], True, 0,
                                                     0, "nearest", 0.5, mask)

    def patches(m):
        patched = edit.RAVEGridPatch.execute(m, s["grid"], True, 0, 0).args[0]
        patched = edit.MaskedCFGPatch.execute(patched, mask, -1.0, "nearest", 0.5).args[0]
        return lambda: core.common_ksampler(patched, 0, s["steps"], 7.5, "ddim", "ddim_uniform", pos, neg, latent)

    rows = []
    for name, make in (("Masked-CFG Sampler", one_box), ("RAVE Grid + Masked CFG patches, KSampler", patches)):
        watched, calls = unet_batches(model)
        run = make(watched)
        run()  # warm-up; it logs the batches of one run
        batches = list(calls)
        floor = bare_unet_run(ctx, batches)
        seconds, floor_s = interleaved_best(ctx, run, floor)
        rows.append(row("sampler", f"{name}: s/step", seconds / s["steps"], "s", note=where))
        rows.append(row("sampler", f"{name}: over bare UNet calls", seconds / floor_s, "x", "<= 1.03",
                        f"{len(batches)} UNet calls of batch {batches[0][0][0]}; best of {SAMPLER_ROUNDS} "
                        f"interleaved rounds"))
    return rows


@figure("flow", needs=("DRIVE_MaskedCFGSampler",))
def fig_flow(ctx: Context) -> list[dict]:
    import comfy.model_management as mm
    import nodes as core

    edit = ctx.pack("nodes.edit")
    s = ctx.size
    gen = torch.Generator().manual_seed(1)
    pos = [[torch.randn(1, 154, 4096, generator=gen), {"pooled_output": torch.randn(1, 2048, generator=gen)}]]
    neg = [[torch.zeros(1, 154, 4096), {"pooled_output": torch.zeros(1, 2048)}]]
    lat = s["px"] // 8
    latent = {"samples": torch.randn(s["frames"], 16, lat, lat, generator=torch.Generator().manual_seed(0))}
    mask = ctx.mask(s["frames"])
    model = ctx.flow_model()
    mm.load_models_gpu([model])
    where = (f"SD3 MMDiT depth {s['dit_depth']}, {s['px']}x{s['px']}, {s['frames']} frames, {s['steps']} steps, "
             f"cfg 7.5")

    def one_box(m):
        return lambda: edit.MaskedCFGSampler.execute(m, pos, neg, latent, s["steps"], 7.5, -1.0, s["grid"], True, 0,
                                                     0, "nearest", 0.5, mask)

    def ksampler(m):
        return lambda: core.common_ksampler(m, 0, s["steps"], 7.5, "euler", "simple", pos, neg, latent)

    rows = []
    for name, make, goal, setting in (("Masked-CFG Sampler", one_box, "<= 1.05", f"grid {s['grid']}, mask"),
                                      ("core KSampler (reference)", ksampler, "", "euler, simple, no grid")):
        watched, calls = model_batches(model)
        run = make(watched)
        run()  # warm-up; it logs the batches of one run
        batches = list(calls)
        seconds, floor_s = interleaved_best(ctx, run, bare_model_run(ctx, model, batches))
        rows.append(row("flow", f"{name} on a flow model: s/step", seconds / s["steps"], "s",
                        note=f"{where}, {setting}"))
        rows.append(row("flow", f"{name} on a flow model: over bare DiT calls", seconds / floor_s, "x", goal,
                        f"{len(batches)} DiT calls of batch {batches[0][0][0]} ({len(batches) / s['steps']:.0f} per "
                        f"step); best of {SAMPLER_ROUNDS} interleaved rounds"))
    return rows


@figure("vram", needs=("DRIVE_MaskedCFGSampler",))
def fig_vram(ctx: Context) -> list[dict]:
    edit = ctx.pack("nodes.edit")
    s = ctx.size
    pos, neg = ctx.prompts()
    model = ctx.model()
    rows = []
    for per_call, label in ((0, "auto"), (1, "1 grid per call")):
        peaks, totals, per_frame = [], [], []
        for frames in s["vram_frames"]:
            latent, mask = ctx.latents(frames), ctx.mask(frames)

            def run():
                edit.MaskedCFGSampler.execute(model, pos, neg, latent, 1, 7.5, -1.0, s["grid"], True, 0, per_call,
                                              "nearest", 0.5, mask)

            if frames == s["vram_frames"][0]:
                run()  # warm-up, once per setting
            with PeakMemory(ctx.device) as mem:
                seconds = ctx.timed(run)[0]
            peaks.append(mem.mib)
            totals.append(mem.total / 2**20)
            per_frame.append(seconds / frames)
            rows.append(row("vram", f"{label}, {frames} frames: peak", mem.mib, "MiB",
                            note=f"{totals[-1]:.0f} MiB with the weights; {seconds / frames * 1000:.1f} ms per "
                                 f"frame-step; {MEMORY_KIND[ctx.device.type]}"))
        first, last = s["vram_frames"][0], s["vram_frames"][-1]
        rows.append(row("vram", f"{label}: peak {last} / {first} frames", peaks[-1] / max(peaks[0], 1e-6), "x",
                        "<= 1.10", "above the start"))
        rows.append(row("vram", f"{label}: peak with the weights {last} / {first} frames", totals[-1] / totals[0],
                        "x", "<= 1.10"))
        rows.append(row("vram", f"{label}: time per frame {last} / {first} frames", per_frame[-1] / per_frame[0],
                        "x", "~1 (linear)"))
    return rows


@figure("invert", needs=("DRIVE_InvertVideo",))
def fig_invert(ctx: Context) -> list[dict]:
    invert = ctx.pack("nodes.invert")
    s = ctx.size
    pos, _ = ctx.prompts()
    latent = ctx.latents(s["invert_frames"])

    def run():
        return invert.InvertVideo.execute(ctx.model(), pos, latent, s["invert_steps"], "easyinv", 0.5, 0.05, 0.2,
                                          "after", 1.0, 1, 0)

    run()
    seconds = ctx.timed(run)[0]
    return [row("invert", "Invert Video (EasyInv, cfg 1): s/step", seconds / s["invert_steps"], "s",
                note=f"{s['invert_frames']} frames {s['px']}x{s['px']}, {s['invert_steps']} steps")]


def synthetic_clip(path: str, frames: int, height: int, width: int) -> None:
    from bench.video_io import make_clip

    make_clip(path, frames, width, height)


def masks_for(ctx: Context, frames: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Track Object's masks (random SAM 2.1 tiny) when sam2 is installed, else Propagate Mask's."""
    height, width = frames.shape[1:3]
    box = [width // 4, height // 4, 3 * width // 4, 3 * height // 4]
    try:
        sam2 = ctx.cache.get("sam2") or sam2_model(ctx)
    except ImportError:
        from drive_ops.masks.propagation import propagate_mask

        first = torch.zeros(height, width)
        first[box[1]:box[3], box[0]:box[2]] = 1.0
        return propagate_mask(frames, first), "Propagate Mask (sam2 not installed)"
    from drive_ops.masks.tracking import track_masks

    return track_masks(sam2, frames, bboxes=box), "Track Object (SAM 2.1 tiny)"


def sam2_model(ctx: Context):
    from drive_ops.masks.sam2_build import Sam2Variant, build_sam2_video_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        ctx.cache["sam2"] = build_sam2_video_model(Sam2Variant("2.1", "tiny"), image_size=ctx.size["sam2_image_size"],
                                                   device=ctx.device)
    return ctx.cache["sam2"]


@figure("workflow", needs=("DRIVE_LoadVideo", "DRIVE_InvertVideo", "DRIVE_MaskedCFGSampler", "DRIVE_SaveVideo"))
def fig_workflow(ctx: Context) -> list[dict]:
    import nodes as core

    from drive_ops.composite.compositing import composite_video
    from drive_ops.composite.harmonize import harmonize_video
    from drive_ops.video.decode import load_video
    from drive_ops.video.encode import encode_video

    invert, edit = ctx.pack("nodes.invert"), ctx.pack("nodes.edit")
    s = ctx.size
    frames_n, px, steps = s["flow_frames"], s["px"], s["flow_steps"]
    pos, neg = ctx.prompts()
    model, vae = ctx.model(), ctx.vae()
    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        synthetic_clip(clip, frames_n, px, px)
        stages["Load Video"], video = ctx.timed(lambda: load_video(clip).frames)
        stages["masks"], (mask, mask_source) = ctx.timed(lambda: masks_for(ctx, video))
        stages["VAE Encode"], encoded = ctx.timed(lambda: {"samples": vae.encode(video)})
        stages["Invert Video"], inverted = ctx.timed(lambda: invert.InvertVideo.execute(
            model, neg, encoded, steps, "easyinv", 0.5, 0.05, 0.2, "after", 1.0, 1, 0).args[0])
        stages["Masked-CFG Sampler"], edited = ctx.timed(lambda: edit.MaskedCFGSampler.execute(
            model, pos, neg, inverted, steps, 7.5, 0.0, 3, True, 0, 0, "nearest", 0.5, mask).args[0])
        stages["VAE Decode"], decoded = ctx.timed(lambda: vae.decode(edited["samples"]))
        stages["Composite Background"], comp = ctx.timed(lambda: composite_video(decoded.cpu(), video, mask))
        stages["Harmonize"], (harmonized, _) = ctx.timed(lambda: harmonize_video(comp, mask, device=ctx.device))
        stages["Save Video"], _ = ctx.timed(lambda: encode_video(harmonized, 24.0, os.path.join(tmp, "out.mp4")))
    reference, _ = ctx.timed(lambda: core.common_ksampler(model, 0, steps, 7.5, "ddim", "ddim_uniform", pos, neg,
                                                         encoded))
    total = sum(stages.values())
    where = f"{frames_n} frames {px}x{px}, {steps} + {steps} steps"
    rows = [row("workflow", "main workflow end to end", total, "s", note=where)]
    rows += [row("workflow", f"{name} share", seconds / total, "of total",
                 note=f"{seconds:.2f} s" + (f", {mask_source}" if name == "masks" else ""))
             for name, seconds in stages.items()]
    rows.append(row("workflow", "core KSampler, same latents (reference)", reference, "s",
                    note=f"{steps} steps cfg 7.5; Masked-CFG Sampler / KSampler = "
                         f"{stages['Masked-CFG Sampler'] / reference:.2f}"))
    return rows


@figure("video_io", needs=("DRIVE_LoadVideo", "DRIVE_SaveVideo"))
def fig_video_io(ctx: Context) -> list[dict]:
    from drive_ops.video.decode import load_video
    from drive_ops.video.encode import encode_video

    (height, width), count = ctx.size["io_size"], ctx.size["io_frames"]
    with tempfile.TemporaryDirectory() as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        synthetic_clip(clip, count, height, width)
        load_s, video = ctx.timed(lambda: load_video(clip).frames)
        save_s, _ = ctx.timed(lambda: encode_video(video, 30.0, os.path.join(tmp, "out.mp4"), crf=23))
    where = f"{count} frames {width}x{height}"
    return [row("video_io", "Load Video", count / load_s, "fps", note=where),
            row("video_io", "Save Video (h264 crf 23)", count / save_s, "fps", note=where)]


@figure("harmonize", needs=("DRIVE_Harmonize",))
def fig_harmonize(ctx: Context) -> list[dict]:
    from drive_ops.composite.harmonize import harmonize_video
    from drive_ops.composite.harmonizer_model import build_harmonizer, random_state_dict

    (height, width), count = ctx.size["io_size"], ctx.size["harmonize_frames"]
    gen = torch.Generator().manual_seed(0)
    comp = torch.rand(count, height, width, 3, generator=gen).to(ctx.device)
    mask = torch.zeros(count, height, width, device=ctx.device)
    mask[:, height // 4: 3 * height // 4, width // 3: 2 * width // 3] = 1.0
    harmonizer = build_harmonizer(random_state_dict()).to(ctx.device).eval()
    rows = []
    for label, model in (("Harmonizer", harmonizer), ("pass-through (no weights)", None)):
        def run(model=model):
            return harmonize_video(comp, mask, model=model, device=ctx.device)

        run()
        seconds = ctx.timed(run)[0]
        rows.append(row("harmonize", f"Harmonize, {label}", count / seconds, "fps",
                        ">= 100" if model is not None else "", f"{count} frames {width}x{height}"))
    return rows


@figure("tuning", needs=("DRIVE_TuneAVideo",))
def fig_tuning(ctx: Context) -> list[dict]:
    import comfy.model_management as mm

    from bench.tune_a_video import tuning_step_time

    s, rows = ctx.size, []
    dtype = "bf16" if ctx.device.type == "cuda" else "fp32"
    for frames in s["tune_frames"]:
        try:
            r = tuning_step_time(ctx.model(), frames, s["px"], s["tune_steps"], training_dtype=dtype)
        except mm.OOM_EXCEPTION:
            mm.soft_empty_cache(True)
            rows.append(row("tuning", f"Tune-A-Video step, {frames} frames {s['px']}px", "OOM", "",
                            note="out of memory with gradient checkpointing, whole clip per step"))
            continue
        rows.append(row("tuning", f"Tune-A-Video step, {frames} frames {s['px']}px, {dtype}", r["seconds_per_step"],
                        "s/step", note=f"peak {r['peak_bytes'] / 2**30:.2f} GiB ({MEMORY_KIND[ctx.device.type]}), "
                                       f"{r['trainable_parameters'] / 1e6:.1f} M trained"))
    return rows


@figure("masks", needs=("DRIVE_PropagateMask", "DRIVE_TrackObject"))
def fig_masks(ctx: Context) -> list[dict]:
    from drive_ops.masks.propagation import propagate_mask

    px, count = ctx.size["mask_px"], ctx.size["mask_frames"]
    gen = torch.Generator().manual_seed(0)
    clip = torch.rand(count, px, px, 3, generator=gen) * 0.3
    for t in range(count):
        left = (px // 10 + 2 * t) % (px // 2)
        clip[t, px // 4: px // 2, left: left + px // 4] = 0.9
    first = torch.zeros(px, px)
    first[px // 4: px // 2, px // 10: px // 10 + px // 4] = 1.0
    seconds = ctx.timed(lambda: propagate_mask(clip, first))[0]
    rows = [row("masks", "Propagate Mask", count / seconds, "fps", note=f"{count} frames {px}x{px}, CPU (DIS flow)")]
    try:
        sam2 = sam2_model(ctx)
    except ImportError as err:
        return rows + [row("masks", "Track Object", float("nan"), "fps", note=f"skipped: {err}")]
    from drive_ops.masks.tracking import track_masks

    box = [px // 10, px // 4, px // 10 + px // 4, px // 2]
    seconds = ctx.timed(lambda: track_masks(sam2, clip, bboxes=box))[0]
    rows.append(row("masks", "Track Object (SAM 2.1 tiny)", count / seconds, "fps",
                    note=f"{count} frames {px}x{px}, image_size {ctx.size['sam2_image_size']}"))
    return rows


@figure("fill", needs=("DRIVE_FillBackground",))
def fig_fill(ctx: Context) -> list[dict]:
    from bench.fill import seconds_per_frame
    from tests.fill_scenes import scaled_scene

    px, count = ctx.size["fill_px"], ctx.size["fill_frames"]
    scene = scaled_scene(count, px, px)
    r = seconds_per_frame(scene.frames, scene.masks, device=str(ctx.device))
    note = f"{count} frames {px}x{px}, invented area {r['unseen_fraction']:.0%} of the object's; DIS flow on the CPU"
    return [row("fill", "Fill Background", 1.0 / r["wall_s_per_frame"], "fps", note=note),
            row("fill", "Fill Background peak memory", r["peak_mib"], "MiB", note=MEMORY_KIND[ctx.device.type])]


def registered_nodes(pack) -> set[str]:
    return {node.define_schema().node_id for node in pack("nodes.extension").NODE_CLASSES}


def print_table(rows: list[dict]) -> None:
    print(f"{'figure':9s} | {'metric':58s} | {'value':>10s} | {'unit':8s} | {'goal':11s} | note")
    for r in rows:
        value = f"{r['value']:10.3f}" if isinstance(r["value"], float) else f"{r['value']!s:>10s}"
        print(f"{r['figure']:9s} | {r['metric']:58s} | {value} | {r['unit']:8s} | {r['goal']:11s} | {r['note']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--small", action="store_true", help="small sizes (a CPU proves the suite runs)")
    parser.add_argument("--only", help=f"comma-separated figures out of {', '.join(FIGURES)}")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/out/gpu_suite_<device>[_small].json)")
    parser.add_argument("--threads", type=int, default=0, help="CPU torch threads (0: torch's default)")
    opts = parser.parse_args()
    if opts.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device; use --device cpu --small on a CPU machine")
    if opts.threads:
        torch.set_num_threads(opts.threads)
    comfy_dir = ensure_comfyui()
    from tests.integration.comfy_inprocess import load_pack, start_comfy

    start_comfy(cpu=opts.device == "cpu")
    pack = load_pack()
    ctx = Context(torch.device(opts.device), opts.small, SIZES["small" if opts.small else "full"], pack)
    chosen = opts.only.split(",") if opts.only else list(FIGURES)
    unknown = [name for name in chosen if name not in FIGURES]
    if unknown:
        raise SystemExit(f"unknown figures {unknown}; choose from {', '.join(FIGURES)}")
    present = registered_nodes(pack)
    rows: list[dict] = []
    failed: list[str] = []
    started = time.perf_counter()
    for name in chosen:
        fn, needs = FIGURES[name]
        missing = [n for n in needs if n not in present]
        if missing:
            rows.append(row(name, "skipped", "-", "", note=f"nodes not registered: {', '.join(missing)}"))
            continue
        begin = time.perf_counter()
        try:
            rows += fn(ctx)
        except Exception as err:  # one broken figure is reported and the others still run
            failed.append(name)
            rows.append(row(name, "failed", float("nan"), "", note=f"{type(err).__name__}: {err}"[:300]))
            print(f"gpu_suite: {name} FAILED: {type(err).__name__}: {err}", flush=True)
            traceback.print_exc()
            continue
        print(f"gpu_suite: {name} done in {time.perf_counter() - begin:.1f} s", flush=True)
    total = time.perf_counter() - started
    device_name = torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else platform.processor()
    print(f"\nDRIVE gpu_suite: {device_name or platform.machine()}, torch {torch.__version__}, "
          f"{'small' if opts.small else 'full'} sizes, {total:.0f} s")
    print_table(rows)
    out = opts.out or REPO / "bench" / "out" / f"gpu_suite_{opts.device}{'_small' if opts.small else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps({"device": opts.device, "device_name": device_name, "torch": torch.__version__,
                                   "comfyui": str(comfy_dir), "small": opts.small, "seconds": total,
                                   "sizes": ctx.size, "rows": rows}, indent=1) + "\n")
    os.replace(partial, out)
    print(f"written to {out}")
    if failed:
        raise SystemExit(f"gpu_suite: {len(failed)} figure(s) failed: {', '.join(failed)} (their rows say why)")


if __name__ == "__main__":
    main()
