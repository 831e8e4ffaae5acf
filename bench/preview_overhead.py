"""Cost of the all-frame sampler previews (nodes/frame_previews.py) against the sampling they watch.

Runs the pack's DDIM sampler (the one Invert Video, the Masked-CFG Sampler and Pix2Video
share) through ``comfy.sample`` with ComfyUI's previews off and on (latent2rgb, as
``--preview-method auto`` picks without a TAESD file), interleaved, best of
``--repeats``; the previews go to a stand-in server that keeps the bytes. Prints the
sampling time per step both ways, the wall-clock overhead (noise-bound on a shared
machine), the share of the sampling time spent inside the preview code (timed directly,
the worst round), how many previews the throttle let through, and what one unthrottled preview of all frames costs relative to a step.
Random weights; numbers are ratios measured in one run.

    COMFYUI_DIR=/path/to/ComfyUI python -m bench.preview_overhead                       # CPU, tiny UNet
    COMFYUI_DIR=... python -m bench.preview_overhead --gpu --full --size 512 --frames 16 32
"""

from __future__ import annotations

import argparse
import sys
import time
import types

import torch

from tests.integration.comfy_inprocess import load_pack, random_model, start_comfy


class RecordingServer:
    """Stands in for ComfyUI's PromptServer: counts the previews queued to the frontend."""

    def __init__(self):
        self.client_id = None
        self.sockets_metadata = {}
        self.previews = 0

    def send_sync(self, event, data, sid=None) -> None:
        self.previews += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="run on ComfyUI's torch device")
    parser.add_argument("--full", action="store_true", help="full-size SD1.5 UNet (random weights)")
    parser.add_argument("--size", type=int, default=256, help="frame size in pixels (latent = size/8)")
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds (best of)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    opts = parser.parse_args()

    start_comfy(cpu=not opts.gpu)
    import comfy.model_management as mm
    import comfy.sample
    import latent_preview
    from comfy.cli_args import LatentPreviewMethod, args

    server = RecordingServer()
    sys.modules.setdefault("server", types.ModuleType("server")).PromptServer = types.SimpleNamespace(instance=server)
    pack = load_pack()
    samplers, previews = pack("nodes.patches.samplers"), pack("nodes.frame_previews")
    spent = [0.0]
    step = previews.ClipPreviewer.step

    def timed_step(self, *a, **kw):  # the time the sampler spends in the preview code, directly
        start = time.perf_counter()
        step(self, *a, **kw)
        spent[0] += time.perf_counter() - start

    previews.ClipPreviewer.step = timed_step
    schedule = pack("drive_ops.diffusion.schedule")
    torch.set_num_threads(opts.threads)
    device = mm.get_torch_device()
    model = random_model(full=opts.full, device=device)
    mm.load_models_gpu([model])
    sigmas = schedule.ddim_sampling_sigmas(samplers.sigma_table(model), opts.steps)
    pos, neg = [[torch.randn(1, 77, 768), {}]], [[torch.zeros(1, 77, 768), {}]]
    lat = opts.size // 8

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    print(f"device {device}, {'SD1.5' if opts.full else 'tiny'} UNet, {opts.size}px frames, {opts.steps} steps, "
          "latent2rgb previews, budget 2 %")
    print("frames | s/step off | s/step on | wall overhead | in previews | previews sent | one preview / step")
    for frames in opts.frames:
        latent = torch.randn(frames, 4, lat, lat)

        def run(method) -> float:
            args.preview_method = method
            spent[0] = 0.0
            sync()
            start = time.perf_counter()
            comfy.sample.sample_custom(model, torch.zeros_like(latent), 7.5, samplers.ddim_sampler(), sigmas, pos, neg,
                                       latent, disable_pbar=True, seed=0)
            sync()
            return (time.perf_counter() - start) / opts.steps

        run(LatentPreviewMethod.Latent2RGB)
        off = on = float("inf")
        sent, share = 0, 0.0
        for _ in range(opts.repeats):  # interleaved, best of: shared machines are noisy
            off = min(off, run(LatentPreviewMethod.NoPreviews))
            before = server.previews
            step_on = run(LatentPreviewMethod.Latent2RGB)
            on = min(on, step_on)
            sent = server.previews - before
            share = max(share, spent[0] / (step_on * opts.steps))
        previewer = latent_preview.get_previewer(device, model.model.latent_format)
        start = time.perf_counter()
        previews.animated_png(previews.decode_frames(previewer, latent.to(device)))
        one = time.perf_counter() - start
        print(f"{frames:6d} | {off:10.4f} | {on:9.4f} | {100 * (on - off) / off:12.2f}% | {100 * share:10.2f}% | "
              f"{sent:5d} of {opts.steps:<5d} | {100 * one / off:6.2f}%")


if __name__ == "__main__":
    main()
