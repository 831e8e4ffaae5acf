"""Start a ComfyUI with this pack for the integration tests (the session's server, and extra ones beside it)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from comfy_server import Server

READY_TIMEOUT_S = 240
TEST_NODES = Path(__file__).resolve().parent / "comfy_test_nodes"
"""Test-only nodes every test server loads (a CONDITIONING in place of a text encoder too large for a CPU)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(comfy_dir: Path, base: Path, models: Path, extra_args: tuple[str, ...] = ()) -> tuple[Server, Path]:
    """A ComfyUI on a free loopback port working in ``base`` (input, output, temp), with the model folders of
    ``models`` and ``comfy_dir/models``; returns the server and its log."""
    for sub in ("input", "output", "temp", "custom_nodes"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    if not (base / "custom_nodes" / TEST_NODES.name).exists():
        (base / "custom_nodes" / TEST_NODES.name).symlink_to(TEST_NODES)
    server = Server(f"http://127.0.0.1:{free_port()}")
    try:
        log_path = server.start(
            comfy_dir, os.environ.get("COMFYUI_PYTHON", sys.executable), READY_TIMEOUT_S, workdir=base,
            model_paths={"checkpoints": [comfy_dir / "models" / "checkpoints", models / "checkpoints"],
                         "controlnet": [comfy_dir / "models" / "controlnet", models / "controlnet"],
                         "sam2": [models / "sam2"], "harmonizer": [models / "harmonizer"],
                         "geometry_estimation": [models / "geometry_estimation"],
                         "diffusion_models": [models / "diffusion_models"], "vae": [models / "vae"],
                         "loras": [models / "loras"], "text_encoders": [models / "text_encoders"],
                         "drive_tuned": [models / "drive_tuned"]},
            extra_args=["--cpu", "--input-directory", str(base / "input"), "--output-directory",
                        str(base / "output"), "--temp-directory", str(base / "temp"), *extra_args])
    except BaseException:
        server.stop()
        raise
    return server, log_path
