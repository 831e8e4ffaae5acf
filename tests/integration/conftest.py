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
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from comfy_client import ComfyClient

REPO = Path(__file__).resolve().parents[2]
PACK_LINK_NAME = "comfyui-drive"
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
    for sub in ("custom_nodes", "input", "output", "temp", "models/sam2", "models/harmonizer",
                "models/checkpoints", "models/controlnet"):
        (base / sub).mkdir(parents=True)
    (base / "custom_nodes" / PACK_LINK_NAME).symlink_to(REPO)
    yaml = base / "extra_model_paths.yaml"
    yaml.write_text("drive_tests:\n"
                    f"  custom_nodes: {base / 'custom_nodes'}\n"
                    f"  checkpoints: |\n    {comfy_dir / 'models' / 'checkpoints'}\n"
                    f"    {base / 'models' / 'checkpoints'}\n"
                    f"  controlnet: |\n    {comfy_dir / 'models' / 'controlnet'}\n"
                    f"    {base / 'models' / 'controlnet'}\n"
                    f"  sam2: {base / 'models' / 'sam2'}\n"
                    f"  harmonizer: {base / 'models' / 'harmonizer'}\n")
    port = _free_port()
    log_path = base / "comfy.log"
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    cmd = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
           "--extra-model-paths-config", str(yaml), "--input-directory", str(base / "input"),
           "--output-directory", str(base / "output"), "--temp-directory", str(base / "temp")]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=comfy_dir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    client = ComfyClient(f"http://127.0.0.1:{port}", base, log_path, comfy_dir)
    try:
        deadline = time.time() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ComfyUI exited early:\n{log_path.read_text()[-4000:]}")
            try:
                urllib.request.urlopen(client.url + "/object_info", timeout=5).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.time() > deadline:
                    pytest.fail(f"ComfyUI not ready after {READY_TIMEOUT_S}s; log {log_path}")
                time.sleep(0.5)
        text = log_path.read_text()
        failed = [ln for ln in text.splitlines() if "IMPORT FAILED" in ln and PACK_LINK_NAME in ln]
        assert not failed, f"the pack failed to import:\n{text[-6000:]}"
        yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.copy(log_path, Path(tempfile.gettempdir()) / "drive-comfy-last.log")
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
