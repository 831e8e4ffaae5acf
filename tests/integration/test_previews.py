"""What the user sees while the pack runs, read from ComfyUI's websocket as a frontend reads it.

Mask Preview is an output node that plays the overlay in itself (an animated WEBP in the
temp folder): queued alone it runs tracking only, and in a full run it finishes before
any sampling node starts. Invert Video and the Masked-CFG Sampler send previews of every
frame (an animated PNG of all T frames) on the preview channel, not frame 0 alone.
"""

from __future__ import annotations

import io
import json
import threading
import urllib.parse
import urllib.request
import uuid

import av
import numpy as np
import pytest
from PIL import Image

from comfy_client import ComfyClient
from comfy_test_server import start_server
from random_weights import write_random_sam2
from run_progress import WebSocket

pytestmark = pytest.mark.integration

T, W, H, STEPS = 6, 64, 48, 4
CKPT = "sd15_random_fp16.safetensors"
SAM2 = "sam2.1_hiera_tiny_previews.safetensors"
CLIP = "drive_previews.mp4"


def _node(info: dict, kind: str, **inputs) -> dict:
    """``kind`` with ``inputs`` and every other required widget at its default."""
    for name, spec in info[kind]["input"]["required"].items():
        if name not in inputs and len(spec) > 1 and isinstance(spec[1], dict) and "default" in spec[1]:
            inputs[name] = spec[1]["default"]
    return {"class_type": kind, "inputs": inputs}


def _prompt(comfy) -> dict:
    """A clip, its tracked mask previewed, and the edit: invert and sample with that mask."""
    info = comfy.object_info()
    return {
        "img": _node(info, "DRIVE_LoadVideo", video=CLIP, size_policy="keep"),
        "sam2": _node(info, "DRIVE_SAM2Loader", model_name=SAM2, precision="fp32", image_size=256),
        "track": _node(info, "DRIVE_TrackObject", sam2_model=["sam2", 0], images=["img", 0],
                       positive_points='[{"x": 30, "y": 20}]'),
        "preview": _node(info, "DRIVE_MaskPreview", images=["img", 0], mask=["track", 0], fps=8.0),
        "ckpt": _node(info, "CheckpointLoaderSimple", ckpt_name=CKPT),
        "pos": _node(info, "CLIPTextEncode", clip=["ckpt", 1], text="a red ball"),
        "neg": _node(info, "CLIPTextEncode", clip=["ckpt", 1], text=""),
        "enc": _node(info, "VAEEncode", pixels=["img", 0], vae=["ckpt", 2]),
        "invert": _node(info, "DRIVE_InvertVideo", model=["ckpt", 0], conditioning=["neg", 0], latent=["enc", 0],
                        steps=STEPS, method="ddim"),
        "edit": _node(info, "DRIVE_MaskedCFGSampler", model=["ckpt", 0], positive=["pos", 0], negative=["neg", 0],
                      latent=["invert", 0], steps=STEPS, grid_size=1, mask=["track", 0]),
        "decode": _node(info, "VAEDecode", samples=["edit", 0], vae=["ckpt", 2]),
        "out": _node(info, "PreviewImage", images=["decode", 0]),
        # Pix2Video's SAMPLER under core's SamplerCustomAdvanced, whose own callback previews frame 0
        "p2v": _node(info, "DRIVE_Pix2VideoSampler"),
        "noise": _node(info, "DisableNoise"),
        "guider": _node(info, "CFGGuider", model=["ckpt", 0], positive=["pos", 0], negative=["neg", 0], cfg=7.5),
        "sigmas": _node(info, "BasicScheduler", model=["ckpt", 0], scheduler="ddim_uniform", steps=STEPS,
                        denoise=1.0),
        "custom": _node(info, "SamplerCustomAdvanced", noise=["noise", 0], guider=["guider", 0], sampler=["p2v", 0],
                        sigmas=["sigmas", 0], latent_image=["invert", 0]),
        "decode2": _node(info, "VAEDecode", samples=["custom", 0], vae=["ckpt", 2]),
        "out2": _node(info, "PreviewImage", images=["decode2", 0]),
    }


def _ancestors(prompt: dict, node_id: str) -> dict:
    keep, todo = set(), [node_id]
    while todo:
        nid = todo.pop()
        if nid not in keep:
            keep.add(nid)
            todo += [v[0] for v in prompt[nid]["inputs"].values() if isinstance(v, list) and len(v) == 2]
    return {k: v for k, v in prompt.items() if k in keep}


def _run_watched(comfy, prompt: dict, timeout: float = 900) -> tuple[dict, list[str], list[tuple[str, bytes]]]:
    """Run ``prompt`` with a websocket open: its history entry, the node ids in the order they started, and
    each preview image with the node it was shown on."""
    client_id = uuid.uuid4().hex
    url = urllib.parse.urlparse(comfy.url)
    ws = WebSocket(f"ws://{url.hostname}:{url.port}/ws?clientId={client_id}")
    started: list[str] = []
    previews: list[tuple[str, bytes]] = []
    done = threading.Event()

    def listen() -> None:
        running = None
        try:
            while not done.is_set():
                opcode, payload = ws.recv()
                if opcode == 1:
                    message = json.loads(payload)
                    if message["type"] == "executing":
                        running = message["data"].get("node")
                        if running is not None:
                            started.append(running)
                    continue
                event = int.from_bytes(payload[:4], "big")
                if event == 1:  # PREVIEW_IMAGE: image type, then the image
                    previews.append((running, payload[8:]))
                elif event == 4:  # PREVIEW_IMAGE_WITH_METADATA: json length, json, image
                    size = int.from_bytes(payload[4:8], "big")
                    meta = json.loads(payload[8:8 + size])
                    previews.append((meta.get("node_id"), payload[8 + size:]))
        except (ConnectionError, OSError):
            pass

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        status, body = comfy._request("/prompt", {"prompt": prompt, "client_id": client_id})
        assert status == 200, body
        entry = comfy.wait(body["prompt_id"], timeout)
    finally:
        done.set()
        ws.close()
        thread.join(timeout=10)
    assert entry["status"]["status_str"] == "success", entry["status"]
    return entry, started, previews


@pytest.fixture(scope="module")
def previewing(comfy, tmp_path_factory):
    """A second server on the same models with latent previews on (``--preview-method auto``: core's default is
    none, and the pack's previews follow core's setting)."""
    base = tmp_path_factory.mktemp("previews")
    server, log_path = start_server(comfy.comfy_dir, base, comfy.models_dir, ("--preview-method", "auto"))
    try:
        client = ComfyClient(server.url, base, log_path, comfy.comfy_dir)
        client.models_dir = comfy.models_dir
        yield client
    finally:
        server.stop()


def _write_clip(path) -> None:
    """T distinct frames (a square moving over a gradient): identical frames would merge in an animation."""
    yy, xx = np.mgrid[:H, :W]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt, stream.options = W, H, "yuv444p", {"qp": "0"}
        for t in range(T):
            frame = np.stack([(xx * 4) % 256, (yy * 5) % 256, np.full_like(xx, 40 * t)], -1).astype(np.uint8)
            frame[10:30, 5 + 6 * t:25 + 6 * t] = (240, 200, 30)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def full_run(previewing):
    write_random_sam2(previewing.models_dir / "sam2" / SAM2)
    _write_clip(previewing.input_dir / CLIP)
    prompt = _prompt(previewing)
    return prompt, _run_watched(previewing, prompt)


def _frames(data: bytes) -> int:
    return getattr(Image.open(io.BytesIO(data)), "n_frames", 1)


def test_mask_preview_plays_every_frame_in_the_node(previewing, full_run):
    _, (entry, _, _) = full_run
    ui = entry["outputs"]["preview"]
    assert ui.get("animated") in ([True], (True,)), ui
    item = ui["images"][0]
    assert item["type"] == "temp" and item["filename"].endswith(".webp")
    query = urllib.parse.urlencode({"filename": item["filename"], "subfolder": item["subfolder"], "type": "temp"})
    with urllib.request.urlopen(f"{previewing.url}/view?{query}", timeout=60) as resp:  # as the frontend loads it
        assert _frames(resp.read()) == T


def test_mask_preview_finishes_before_any_sampling(full_run):
    _, (_, started, _) = full_run
    assert "preview" in started and "invert" in started and "edit" in started, started
    assert started.index("preview") < started.index("invert") < started.index("edit"), started


def test_samplers_preview_every_frame(full_run):
    """Each of Invert Video and the Masked-CFG Sampler sends at least one preview holding all T frames, and
    no preview of a single frame (core's frame-0 one) is left as their last."""
    _, (_, _, previews) = full_run
    for node in ("invert", "edit"):
        mine = [data for where, data in previews if where == node]
        assert mine, f"{node} sent no preview; previews came from {sorted({w for w, _ in previews if w})}"
        assert all(_frames(data) == T for data in mine), [(_frames(d)) for d in mine]


def test_pix2video_under_core_sampler_ends_each_step_on_every_frame(full_run):
    """SamplerCustomAdvanced's callback sends core's frame-0 preview each step; the pack's sampler sends the
    clip after it (fresh or the last one again), so the node never rests on a single frame."""
    _, (_, _, previews) = full_run
    frames = [_frames(data) for where, data in previews if where == "custom"]
    assert frames and frames[-1] == T, frames
    assert frames.count(T) >= STEPS, frames
    singles = [i for i, n in enumerate(frames) if n == 1]
    assert all(i + 1 < len(frames) and frames[i + 1] == T for i in singles), frames


def test_mask_preview_runs_alone(previewing, full_run):
    """What "Queue Selected Output Nodes" sends for Mask Preview: its ancestors only; no model is loaded."""
    prompt, _ = full_run
    alone = _ancestors(prompt, "preview")
    assert sorted(alone) == ["img", "preview", "sam2", "track"]
    alone["track"]["inputs"]["positive_points"] = '[{"x": 31, "y": 20}]'  # not the cached result
    entry, started, _ = _run_watched(previewing, alone)
    assert "preview" in entry["outputs"] and set(started) <= set(alone), started


def test_points_picked_on_other_frames_are_refused(previewing, full_run):
    prompt, _ = full_run
    alone = _ancestors(prompt, "preview")
    alone["track"]["inputs"]["picked_frame_size"] = "128x96"
    entry = previewing.run(alone, timeout=300)
    assert entry["status"]["status_str"] == "error"
    text = json.dumps(entry["status"]["messages"])
    assert "128x96" in text and f"{W}x{H}" in text and "canvas" in text, text[-2000:]
