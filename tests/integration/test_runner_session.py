"""The runner's first-hour helpers against a real ComfyUI: a mask video in place of tracking, a kept server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comfy_server import Server
from comfy_test_server import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "workflows" / "inputs"
FRAMES, SIDE = 6, 128


def test_mask_video_replaces_tracking_frame_for_frame(comfy, tmp_path):
    """--mask: the demo clip's mask video, loaded with the clip's settings, is the mask every node reads."""
    sys.path.insert(0, str(ROOT))
    from tools.make_demo_clip import SIZE, ball_mask

    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run_workflow.py"), str(ROOT / "workflows" / "mask_only.json"),
         "--url", comfy.url, "--video", str(DEMO / "drive_demo.mp4"), "--mask", str(DEMO / "drive_demo_mask.mp4"),
         "--set", f"DRIVE_LoadVideo.frame_load_cap={FRAMES}", "--set", f"DRIVE_LoadVideo.longer_side={SIDE}",
         "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    pngs = sorted(p for p in out.rglob("*.png"))
    assert len(pngs) == FRAMES, pngs
    for t, png in enumerate(pngs):
        got = np.asarray(Image.open(png).convert("L")) > 127
        true = torch.nn.functional.interpolate(ball_mask(t)[None, None].float(), size=(SIDE, SIDE), mode="area")
        true = true[0, 0].numpy() > 0.5
        assert got.shape == (SIDE, SIDE) and SIZE // SIDE == 4
        iou = (got & true).sum() / (got | true).sum()
        assert iou >= 0.95, f"frame {t}: IoU {iou:.3f} with the demo's true mask"


def test_kept_server_answers_until_stopped(comfy):
    """scripts/comfy_server.py keeps a ComfyUI with the pack for repeated runs and stops it on SIGTERM."""
    url = f"http://127.0.0.1:{free_port()}"
    script = [sys.executable, str(ROOT / "scripts" / "comfy_server.py"), "--url", url,
              "--comfyui-dir", str(comfy.comfy_dir), "--", "--cpu"]
    proc = subprocess.Popen(script, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.time() + 300
        while not Server(url).alive():
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-3000:]
            time.sleep(1)
        assert "DRIVE_LoadVideo" in Server(url).request("/object_info/DRIVE_LoadVideo"), "the pack is loaded"
        again = subprocess.run(script, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "already answers" in again.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert not Server(url).alive(), "the server stopped with the script"
    finally:
        if proc.poll() is None:
            proc.kill()
