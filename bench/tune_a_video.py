"""Tune-A-Video tuning: seconds per step and peak memory for 8/16/24 frames at a given size.

Each row tunes a random-weight UNet (tiny, or full-size SD1.5 with ``--full``) through the
node's own code path (``nodes.patches.tuning.tune``: Guider_Basic, weight wrappers,
temporal layers, sparse-causal attention): a one-step run whose peak memory is measured
(above the level before it: allocated memory on CUDA, sampled resident memory on the CPU,
bench.common.PeakMemory), then ``--steps`` timed steps.
A setting that runs out of memory is reported as such, so on a GPU the table says
whether 24 frames at 512x512 fit, and with which settings.

    COMFYUI_DIR=/path/to/ComfyUI python -m bench.tune_a_video                       # CPU, tiny UNet, 64 px
    COMFYUI_DIR=... python -m bench.tune_a_video --gpu --full --size 512           # SD1.5 at 512x512

``tuning_step_time(model, frames, size, ...)`` is the measurement itself, for other suites.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import torch

from bench.common import PeakMemory
from tests.integration.comfy_inprocess import load_pack, random_model, start_comfy

SETTINGS = {
    "checkpointing": dict(gradient_checkpointing=True, frames_per_step=0),
    "no checkpointing": dict(gradient_checkpointing=False, frames_per_step=0),
    "checkpointing, 8 frames/step": dict(gradient_checkpointing=True, frames_per_step=8),
}


def tuning_step_time(model, frames: int, size: int, steps: int = 3, trainable: str = "tune_a_video",
                     gradient_checkpointing: bool = True, training_dtype: str = "bf16",
                     frames_per_step: int = 0) -> dict:
    """Seconds per tuning step and peak memory (bytes) of ``steps`` steps on ``frames`` frames of ``size`` px.

    ``model`` is a ComfyUI ModelPatcher of an SD1.x-shaped UNet (``start_comfy`` must have run).
    Returns {"seconds_per_step", "peak_bytes", "trainable_parameters", "frames", "size"}.
    """
    import comfy.model_management as mm

    pack = load_pack()
    tune, tuning = pack("nodes.patches.tuning").tune, pack("drive_ops.diffusion.tuning")
    latent = {"samples": torch.randn(frames, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(0))}
    caption = [[torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(1)), {}]]

    def recipe(n: int):
        return tuning.TuneRecipe(steps=n, trainable=trainable, gradient_checkpointing=gradient_checkpointing,
                                 training_dtype=training_dtype, frames_per_step=frames_per_step, lora_rank=16)

    with torch.inference_mode():
        mm.soft_empty_cache()
        with PeakMemory(model.load_device) as mem:  # the first run: the CPU's resident set only grows
            tune(model, latent, caption, recipe(1))
        tuned = tune(model, latent, caption, recipe(steps))
    return {"seconds_per_step": tuned.metadata["seconds_per_step"], "peak_bytes": mem.peak,
            "trainable_parameters": tuned.metadata["trainable_parameters"], "frames": frames, "size": size}


def _row(frames: int, setting: str, r: dict | None) -> str:
    if r is None:
        return f"{frames:6d} | {setting:30s} | out of memory"
    return (f"{frames:6d} | {setting:30s} | {r['seconds_per_step']:7.3f} | {r['peak_bytes'] / 2**20:15.1f} | "
            f"{r['trainable_parameters'] / 1e6:11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="run on ComfyUI's torch device")
    parser.add_argument("--full", action="store_true", help="full-size SD1.5 UNet (random weights)")
    parser.add_argument("--size", type=int, default=64, help="frame size in pixels (latent = size/8)")
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16, 24])
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after the one-step memory run)")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="training dtype")
    parser.add_argument("--trainable", choices=["tune_a_video", "lora"], default="tune_a_video")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    parser.add_argument("--one-row", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()

    if not opts.gpu and not opts.one_row:
        # the CPU's resident set never shrinks, so each row runs in a fresh process to get its own peak
        print(f"device CPU, {'SD1.5' if opts.full else 'tiny'} UNet, {opts.size}px frames, {opts.trainable}, "
              f"{opts.dtype}, {opts.steps} timed steps, one process per row")
        print("frames | setting                        | s/step  | peak memory MiB | trainable M", flush=True)
        for frames in opts.frames:
            for setting in opts.settings:
                cmd = [sys.executable, "-m", "bench.tune_a_video", "--one-row", "--size", str(opts.size),
                       "--steps", str(opts.steps), "--dtype", opts.dtype, "--trainable", opts.trainable,
                       "--threads", str(opts.threads), "--frames", str(frames), "--settings", setting]
                cmd += ["--full"] if opts.full else []
                subprocess.run(cmd, check=True)
        return

    start_comfy(cpu=not opts.gpu)
    import comfy.model_management as mm

    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    device = mm.get_torch_device()
    model = random_model(full=opts.full, device=device)
    if not opts.one_row:
        print(f"device {torch.cuda.get_device_name(device)}, {'SD1.5' if opts.full else 'tiny'} UNet, "
              f"{opts.size}px frames, {opts.trainable}, {opts.dtype}, {opts.steps} timed steps")
        print("frames | setting                        | s/step  | peak memory MiB | trainable M")
    for frames in opts.frames:
        for setting in opts.settings:
            try:
                r = tuning_step_time(model, frames, opts.size, opts.steps, opts.trainable, training_dtype=opts.dtype,
                                     **SETTINGS[setting])
            except mm.OOM_EXCEPTION:
                mm.soft_empty_cache(True)
                r = None
            print(_row(frames, setting, r), flush=True)


if __name__ == "__main__":
    main()
