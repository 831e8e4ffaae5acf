"""Fixtures the in-process flow and video tests share; a test module imports them by name to use them.

``pack``: the checkout's node modules with ComfyUI started in-process on one torch thread (the
conftest's ``pack`` gives a dict of the SD1.5 engine's modules instead); ``no_grad``: nodes run
as ComfyUI runs them, with no autograd graph behind the VAE's outputs.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def pack():
    from comfy_inprocess import load_pack, start_comfy

    start_comfy()
    torch.set_num_threads(1)
    return load_pack()


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():
        yield
