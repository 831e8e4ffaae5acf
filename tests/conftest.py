"""Shared fixtures: the repository root, the shared data folder, and integration gating."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The tests run tiny models: on one thread they are fastest, and on a shared 2-core
    machine two OpenMP threads spin against each other (seen 10-40x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (reference data lives beside the checkout, not in it)")
    return SHARED_DATA


def pytest_collection_modifyitems(config, items):
    if os.environ.get("COMFYUI_DIR"):
        return
    skip = pytest.mark.skip(reason="integration test: set COMFYUI_DIR to a ComfyUI 0.3.64 checkout to run it")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
