"""Peak memory of Invert Video and the Masked-CFG Sampler on a Wan video latent vs the frame count, with and without
core's Wan Context Windows.

On the small random Wan 2.1 VACE stand-in (tools/make_random_wan.py; ComfyUI 0.33 or newer) it
inverts a random video latent ``[1,16,T',h,w]`` (``T = 4(T'-1) + 1`` pixel frames) with Euler and
edits it with masked guidance at cfg 5 (cond + uncond passes), each on the whole clip and under
``WanContextWindowsManual`` (windows of ``--window`` frames overlapping by ``--overlap``). Each
configuration runs in its own process, so freed memory of one never hides the next one's peak;
the peak is bench.common.PeakMemory's (sampled resident memory above the level before the node
on the CPU, the allocator's peak on CUDA). Random weights and no VAE: only memory and time mean
anything.

    COMFYUI_DIR=.cache/ComfyUI-0.33.0 .venv-0.33/bin/python -m bench.video_memory            # CPU, 256 px
    COMFYUI_DIR=... python -m bench.video_memory --gpu --size 512 --frames 17 33 65 129
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

MIB = 2 ** 20


def _measure(args: argparse.Namespace) -> dict:
    """One configuration in this process: {node: (peak MiB, seconds)} for Invert Video and the Masked-CFG Sampler."""
    from bench.common import PeakMemory
    from tests.integration.comfy_inprocess import load_pack, start_comfy
    from tests.integration.random_weights import WAN_FILES

    start_comfy(cpu=not args.gpu)
    torch.set_num_threads(args.threads)
    pack = load_pack()
    import comfy.model_management
    import comfy.sd
    from comfy_extras.nodes_context_windows import WanContextWindowsManualNode

    folder, name = WAN_FILES["vace"]
    model = comfy.sd.load_diffusion_model(str(Path(args.models) / folder / name))
    if args.window:
        model = WanContextWindowsManualNode.execute(model, args.window, args.overlap, "standard_uniform", 1, False,
                                                    "pyramid", True).args[0]
    frames, side = args.one, args.size // 8
    gen = torch.Generator().manual_seed(0)
    latent = {"samples": torch.randn(1, 16, (frames - 1) // 4 + 1, side, side, generator=gen)}
    cond = [[torch.randn(1, 8, 4096, generator=gen), {}]]
    other = [[torch.randn(1, 8, 4096, generator=gen), {}]]
    mask = torch.zeros(frames, args.size, args.size)
    mask[:, args.size // 4:args.size // 2, args.size // 4:args.size // 2] = 1.0
    device = comfy.model_management.get_torch_device()
    out = {}
    with torch.inference_mode():
        for node, run in (
                ("invert", lambda: pack("nodes.invert").InvertVideo.execute(
                    model, cond, latent, args.steps, "ddim", 1.0, 0.05, 0.2, "after", 1.0, 1, 0).args[0]),
                ("masked_cfg5", lambda: pack("nodes.edit").MaskedCFGSampler.execute(
                    model, other, cond, inverted, args.steps, 5.0, -1.0, 1, False, 0, 0, "nearest", 0.5,
                    mask).args[0])):
            start = time.perf_counter()
            with PeakMemory(device) as peak:
                result = run()
            out[node] = (peak.peak / MIB, time.perf_counter() - start)
            if node == "invert":
                inverted = result
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[17, 33, 65], help="pixel frames, each 4n+1")
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels (latent side = size/8)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--window", type=int, default=17, help="context window in pixel frames (4n+1)")
    parser.add_argument("--overlap", type=int, default=8, help="window overlap in pixel frames")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    parser.add_argument("--gpu", action="store_true", help="run on ComfyUI's torch device")
    parser.add_argument("--models", help="a folder with the Wan stand-ins (written there when absent)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_measure(args)))
        return
    bad = [f for f in args.frames if (f - 1) % 4]
    if bad:
        raise SystemExit(f"frame counts {bad} are not 4n+1 (Wan's VAE encodes 4n+1 frames)")
    from tests.integration.random_weights import WAN_FILES, provide_wan_stand_ins

    comfy_dir = Path(os.environ["COMFYUI_DIR"])
    models = Path(args.models or tempfile.mkdtemp(prefix="wan_stand_ins_"))
    for folder, _ in WAN_FILES.values():
        (models / folder).mkdir(parents=True, exist_ok=True)
    provide_wan_stand_ins(models, comfy_dir)
    print(f"Wan stand-in, {args.size}x{args.size} px, {args.steps} steps, windows of {args.window} frames "
          f"overlapping {args.overlap}; peak memory above the level before each node (MiB) and seconds")
    print(f"{'frames':>6} {'latent':>6} {'windows':>8} {'invert MiB':>11} {'s':>6} {'cfg5 MiB':>9} {'s':>6}")
    root = Path(__file__).resolve().parents[1]
    for frames in args.frames:
        for window in (0, args.window):
            command = [sys.executable, "-m", "bench.video_memory", "--one", str(frames), "--size", str(args.size),
                       "--steps", str(args.steps), "--window", str(window), "--overlap", str(args.overlap),
                       "--threads", str(args.threads), "--models", str(models)] + (["--gpu"] if args.gpu else [])
            done = subprocess.run(command, cwd=root, capture_output=True, text=True,
                                  env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            result = json.loads(done.stdout.strip().splitlines()[-1])
            (inv_mib, inv_s), (cfg_mib, cfg_s) = result["invert"], result["masked_cfg5"]
            print(f"{frames:>6} {(frames - 1) // 4 + 1:>6} {window or 'none':>8} {inv_mib:>11.1f} {inv_s:>6.1f} "
                  f"{cfg_mib:>9.1f} {cfg_s:>6.1f}")


if __name__ == "__main__":
    main()
