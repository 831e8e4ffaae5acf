"""Fill Background inside a real ComfyUI: the OpenCV and diffusion keyframe fills, and the composite over it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfy_inprocess import run_checks_script

pytestmark = pytest.mark.integration

W, H, T = 64, 48, 4
GREY = 0x808080
BOX = (20, 12, 16, 16)


def test_diffusion_keyframe_fill_in_process():
    run_checks_script("fill_inprocess.py", timeout=900, extra_paths=(Path(__file__).resolve().parents[1],))


def test_fill_then_composite_over_the_filled_clip(comfy):
    """A box removed from a grey clip comes back grey; the composite over the fill keeps the original outside."""
    x, y, w, h = BOX
    graph = {
        "orig": {"class_type": "EmptyImage", "inputs": {"width": W, "height": H, "batch_size": T, "color": GREY}},
        "edit": {"class_type": "EmptyImage", "inputs": {"width": W, "height": H, "batch_size": T, "color": 0x2040C0}},
        "empty": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": W, "height": H}},
        "box": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": w, "height": h}},
        "mask": {"class_type": "MaskComposite", "inputs": {"destination": ["empty", 0], "source": ["box", 0],
                                                           "x": x, "y": y, "operation": "add"}},
        "fill": {"class_type": "DRIVE_FillBackground",
                 "inputs": {"images": ["orig", 0], "mask": ["mask", 0], "grow": 0, "flow_quality": "auto",
                            "keyframe": -1, "inpaint_method": "telea", "steps": 2, "cfg": 5.0, "denoise": 0.85,
                            "seed": 0}},
        "comp": {"class_type": "DRIVE_CompositeBackground",
                 "inputs": {"edited": ["edit", 0], "original": ["orig", 0], "mask": ["mask", 0], "grow": 0,
                            "feather": 3.0, "blend": "alpha", "background": ["fill", 0]}},
        "save_fill": {"class_type": "SaveImage", "inputs": {"images": ["fill", 0], "filename_prefix": "drive_fill"}},
        "save_comp": {"class_type": "SaveImage", "inputs": {"images": ["comp", 0], "filename_prefix": "drive_fcomp"}},
        "unseen": {"class_type": "MaskToImage", "inputs": {"mask": ["fill", 1]}},
        "save_unseen": {"class_type": "SaveImage", "inputs": {"images": ["unseen", 0],
                                                              "filename_prefix": "drive_unseen"}},
    }
    entry = comfy.run_ok(graph, timeout=600)

    def frames(node: str) -> list[np.ndarray]:
        return [np.asarray(Image.open(comfy.output_dir / i["subfolder"] / i["filename"]).convert("RGB")).astype(int)
                for i in entry["outputs"][node]["images"]]

    inside = np.zeros((H, W), bool)
    inside[y:y + h, x:x + w] = True
    for filled, comp, unseen in zip(frames("save_fill"), frames("save_comp"), frames("save_unseen")):
        assert (np.abs(filled - 0x80) <= 1).all(), "the grey background did not come back"
        assert (unseen[..., 0][inside] == 255).all() and (unseen[..., 0][~inside] == 0).all()
        assert (comp[~inside] == 0x80).all()
        assert (comp[y + h // 2, x + w // 2] != 0x80).any()
