"""Seconds from Cancel to the stop, for the pack's long loops on a running ComfyUI (either tested core).

    python -m bench.cancel [--core 0.33.0] [--frames 120] [--size 256] [--lead 3]

Starts the set-up's ComfyUI of ``--core`` (its venv: .venv for 0.3.64, .venv-0.33 for 0.33.0)
on a free loopback port, then for each loop queues a prompt whose DRIVE node runs for longer
than ``--lead`` seconds, waits ``--lead`` seconds into the run, posts /interrupt (what the
Cancel button does) and times until the prompt has ended; it also checks that the run ended
as interrupted and that nothing reached the output folder. Weight-free loops on EmptyImage
frames, and Invert Video on the random-weight SD1.5 checkpoint the set-up writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from bench.common import REPO

sys.path.insert(0, str(REPO / "scripts"))
from comfy_server import Server  # noqa: E402

VENVS = {"0.3.64": ".venv", "0.33.0": ".venv-0.33"}
RANDOM_HARMONIZER = "harmonizer_random.safetensors"
"""Harmonizer's regressor with random weights: Harmonize loops over the frames only with a regressor (without
weights it passes them through in one step)."""


def _post(url: str, path: str, payload: dict | None = None) -> dict:
    req = urllib.request.Request(url + path, data=json.dumps(payload or {}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = resp.read()
    return json.loads(body) if body else {}


def _get(url: str, path: str) -> dict:
    with urllib.request.urlopen(url + path, timeout=60) as resp:
        return json.loads(resp.read())


def prompts(frames: int, size: int) -> dict[str, dict]:
    """One prompt per loop: EmptyImage frames (and a box mask) into a DRIVE node that takes a while."""
    def node(kind, **inputs):
        return {"class_type": kind, "inputs": inputs}

    clip = node("EmptyImage", width=size, height=size, batch_size=frames, color=0x5080B0)
    edit = node("EmptyImage", width=size, height=size, batch_size=frames, color=0xC08020)
    box = {"bg": node("SolidMask", value=0.0, width=size, height=size),
           "fg": node("SolidMask", value=1.0, width=size // 2, height=size // 2),
           "box": node("MaskComposite", destination=["bg", 0], source=["fg", 0], x=size // 4, y=size // 4,
                       operation="add"),
           "mask": node("RepeatImageBatch", image=["box_img", 0], amount=frames),
           "box_img": node("MaskToImage", mask=["box", 0]),
           "masks": node("ImageToMask", image=["mask", 0], channel="red")}
    shown = {"out": node("PreviewImage", images=["drive", 0])}
    loops = {
        "Harmonize": {"drive": node("DRIVE_Harmonize", image=["clip", 0], mask=["masks", 0], strength=1.0,
                                    temporal_smoothing=0.9, fps=8.0, frames_per_batch=1, harmonizer=["harm", 0]),
                      "harm": node("DRIVE_HarmonizerLoader", weights=RANDOM_HARMONIZER), **shown},
        "Fill Background": {"drive": node("DRIVE_FillBackground", images=["clip", 0], mask=["masks", 0], grow=2,
                                          flow_quality="medium", keyframe=-1, inpaint_method="telea", steps=2,
                                          cfg=4.0, denoise=1.0, seed=0), **shown},
        "Propagate Mask": {"drive": node("DRIVE_PropagateMask", images=["clip", 0], mask=["box", 0], frame_index=0,
                                         flow_quality="fine", occlusion_check=True, threshold=0.5),
                           "out": node("PreviewImage", images=["view", 0]),
                           "view": node("MaskToImage", mask=["drive", 0])},
        "Composite Background": {"drive": node("DRIVE_CompositeBackground", edited=["edit", 0], original=["clip", 0],
                                               mask=["masks", 0], grow=4, feather=4.0, blend="laplacian"), **shown},
        "Save Video": {"big": node("EmptyImage", width=2 * size, height=2 * size, batch_size=frames, color=0x5080B0),
                       "drive": node("DRIVE_SaveVideo", images=["big", 0], fps=8.0, filename_prefix="cancel/save",
                                     format="mp4", crf=19)},
        "Invert Video": {"ckpt": node("CheckpointLoaderSimple", ckpt_name="sd15_random_fp16.safetensors"),
                         "text": node("CLIPTextEncode", text="", clip=["ckpt", 1]),
                         "small": node("ImageScale", image=["clip", 0], upscale_method="area", width=64, height=64,
                                       crop="disabled"),
                         "latent": node("VAEEncode", pixels=["small", 0], vae=["ckpt", 2]),
                         "drive": node("DRIVE_InvertVideo", model=["ckpt", 0], conditioning=["text", 0],
                                       latent=["latent", 0], steps=50, method="ddim", eta=0.5, window_start=0.05,
                                       window_length=0.2, blend="after", cfg=1.0, grid_size=1, max_grids_per_call=0),
                         "decoded": node("VAEDecode", samples=["drive", 0], vae=["ckpt", 2]),
                         "out": node("PreviewImage", images=["decoded", 0])},
    }
    return {name: {"clip": clip, "edit": edit, **box, **graph} for name, graph in loops.items()}


def measure(url: str, prompt: dict, lead: float, output: Path) -> dict:
    before = {p for p in output.rglob("*") if p.is_file()}
    pid = _post(url, "/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})["prompt_id"]
    while not any(item[1] == pid for item in _get(url, "/queue")["queue_running"]):
        time.sleep(0.02)
    time.sleep(lead)
    start = time.perf_counter()
    _post(url, "/interrupt")
    while True:
        entry = _get(url, f"/history/{pid}").get(pid)
        if entry and entry.get("status", {}).get("completed") is not None:
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    messages = [m[0] for m in entry["status"].get("messages", [])]
    written = sorted(str(p.relative_to(output)) for p in output.rglob("*") if p.is_file() and p not in before)
    return {"seconds": seconds, "interrupted": "execution_interrupted" in messages, "written": written}


def write_random_harmonizer(path: Path) -> None:
    from safetensors.torch import save_file

    from drive_ops.composite.harmonizer_model import random_state_dict

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in random_state_dict(0).items()}, str(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--core", choices=sorted(VENVS), default="0.33.0")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--lead", type=float, default=3.0, help="seconds into the run before Cancel")
    args = ap.parse_args(argv)
    cache = REPO / ".cache"
    comfy_dir, python = cache / f"ComfyUI-{args.core}", REPO / VENVS[args.core] / "bin" / "python"
    work = Path(tempfile.mkdtemp(prefix="drive-cancel-"))
    for sub in ("input", "output", "temp"):
        (work / sub).mkdir()
    write_random_harmonizer(work / "models" / "harmonizer" / RANDOM_HARMONIZER)
    server = Server("http://127.0.0.1:8391")
    server.start(comfy_dir, str(python), 240, workdir=work, model_paths={"harmonizer": [work / "models" / "harmonizer"]},
                 extra_args=[
        "--cpu", "--input-directory", str(work / "input"), "--output-directory", str(work / "output"),
        "--temp-directory", str(work / "temp")])
    try:
        print(f"ComfyUI {args.core}, {args.frames} frames of {args.size}x{args.size}, Cancel {args.lead} s into the run")
        print(f"{'loop':<22} {'Cancel -> stop (s)':>18}  {'ended as':<12} written")
        for name, prompt in prompts(args.frames, args.size).items():
            row = measure(server.url, prompt, args.lead, work / "output")
            print(f"{name:<22} {row['seconds']:>18.3f}  {'interrupted' if row['interrupted'] else 'FINISHED':<12} "
                  f"{', '.join(row['written']) or 'nothing'}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
