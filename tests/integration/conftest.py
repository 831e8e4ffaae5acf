"""A real ComfyUI with this pack loaded, for the integration tests.

Runs when ``COMFYUI_DIR`` points at a ComfyUI 0.3.64 checkout (see
../shared/comfy-harness for a CPU setup); everything here is skipped elsewhere by the
root conftest. The server runs with the python in ``COMFYUI_PYTHON`` (default: the one
running pytest, which then needs ComfyUI's requirements), on a free loopback port, with
its own input/output/model folders under pytest's tmp dir and the checkpoints of
``COMFYUI_DIR/models``. One server at a time per machine (a file lock), since each
holds several GB once SD1.5 is loaded.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest
from comfy_client import ComfyClient
from comfy_server import PACK_LINK_NAME, RunError, Server

READY_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def comfy(tmp_path_factory) -> ComfyClient:
    comfy_dir = Path(os.environ["COMFYUI_DIR"]).resolve()
    if not (comfy_dir / "main.py").is_file():
        pytest.fail(f"COMFYUI_DIR={comfy_dir} has no main.py")
    lock = open(Path(tempfile.gettempdir()) / "drive-comfy-integration.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    base = tmp_path_factory.mktemp("comfy")
    for sub in ("input", "output", "temp", "models/sam2", "models/harmonizer", "models/checkpoints",
                "models/controlnet", "models/drive_tuned"):
        (base / sub).mkdir(parents=True)
    models = base / "models"
    server = Server(f"http://127.0.0.1:{_free_port()}")
    try:
        log_path = server.start(
            comfy_dir, os.environ.get("COMFYUI_PYTHON", sys.executable), READY_TIMEOUT_S, workdir=base,
            model_paths={"checkpoints": [comfy_dir / "models" / "checkpoints", models / "checkpoints"],
                         "controlnet": [comfy_dir / "models" / "controlnet", models / "controlnet"],
                         "sam2": [models / "sam2"], "harmonizer": [models / "harmonizer"],
                         "drive_tuned": [models / "drive_tuned"]},
            extra_args=["--cpu", "--input-directory", str(base / "input"), "--output-directory",
                        str(base / "output"), "--temp-directory", str(base / "temp")])
        text = log_path.read_text()
        failed = [ln for ln in text.splitlines() if "IMPORT FAILED" in ln and PACK_LINK_NAME in ln]
        assert not failed, f"the pack failed to import:\n{text[-6000:]}"
        yield ComfyClient(server.url, base, log_path, comfy_dir)
    except RunError as err:
        pytest.fail(str(err))
    finally:
        server.stop()
        if (base / "comfy.log").exists():
            shutil.copy(base / "comfy.log", Path(tempfile.gettempdir()) / "drive-comfy-last.log")
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
