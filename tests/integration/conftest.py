"""A real ComfyUI with this pack loaded, for the integration tests.

Runs when ``COMFYUI_DIR`` points at a ComfyUI checkout (tools/setup_env.sh keeps 0.3.64 and
0.33.0; see tests/conftest.py); everything here is skipped elsewhere by the
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
import tempfile
from pathlib import Path

import pytest
import torch
from comfy_client import ComfyClient
from comfy_server import PACK_LINK_NAME, RunError
from comfy_test_server import start_server



@pytest.fixture(scope="session")
def comfy(tmp_path_factory) -> ComfyClient:
    comfy_dir = Path(os.environ["COMFYUI_DIR"]).resolve()
    if not (comfy_dir / "main.py").is_file():
        pytest.fail(f"COMFYUI_DIR={comfy_dir} has no main.py")
    lock = open(Path(tempfile.gettempdir()) / "drive-comfy-integration.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    base = tmp_path_factory.mktemp("comfy")
    for sub in ("models/sam2", "models/harmonizer", "models/checkpoints", "models/controlnet", "models/drive_tuned"):
        (base / sub).mkdir(parents=True)
    server = None
    try:
        server, log_path = start_server(comfy_dir, base, base / "models")
        text = log_path.read_text()
        failed = [ln for ln in text.splitlines() if "IMPORT FAILED" in ln and PACK_LINK_NAME in ln]
        assert not failed, f"the pack failed to import:\n{text[-6000:]}"
        yield ComfyClient(server.url, base, log_path, comfy_dir)
    except RunError as err:
        pytest.fail(str(err))
    finally:
        if server is not None:
            server.stop()
        if (base / "comfy.log").exists():
            shutil.copy(base / "comfy.log", Path(tempfile.gettempdir()) / "drive-comfy-last.log")
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


# --- in-process ComfyUI: the nodes' own execute on tiny random models ------------------------------------------

@pytest.fixture(scope="module")
def pack():
    """The pack's node modules (and two drive_ops ones) with ComfyUI imported in-process (CPU unless a GPU is
    there): each node's full code path in a fraction of a second."""
    from comfy_inprocess import load_pack, start_comfy

    start_comfy(cpu=not torch.cuda.is_available())
    module = load_pack()
    found = {name: module(f"nodes.{name}") for name in ("mask", "invert", "edit", "consistency", "composite",
                                                         "evaluate", "track", "video")}
    found.update(inversion=module("drive_ops.diffusion.inversion"), schedule=module("drive_ops.diffusion.schedule"))
    return found


@pytest.fixture(scope="module")
def sd():
    """A tiny random SD1.5-shaped MODEL, conditionings, and a recorder of the UNet's input shapes."""
    from comfy_inprocess import random_model

    torch.manual_seed(0)
    model = random_model()
    seen: list[tuple] = []

    def record(apply_model, args):
        seen.append(tuple(args["input"].shape))
        return apply_model(args["input"], args["timestep"], **args["c"])

    recorded = model.clone()
    recorded.set_model_unet_function_wrapper(record)
    g = torch.Generator().manual_seed(1)
    positive = [[torch.randn(1, 77, 768, generator=g), {}]]
    negative = [[torch.zeros(1, 77, 768), {}]]
    return {"model": model, "recorded": recorded, "seen": seen, "positive": positive, "negative": negative}
