"""Composite -> Harmonize -> Color Filters inside a real ComfyUI, with and without a HARMONIZER.

Frames come from core EmptyImage, the mask from core SolidMask/MaskComposite, and the
result goes to core SaveImage (PNG) so the test can check the saved pixels: outside
the grown mask they must be the original's colour exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from drive_ops.composite.harmonizer_model import random_state_dict

pytestmark = pytest.mark.integration

W, H, T = 64, 48, 4
ORIGINAL_RGB = (0x33, 0x66, 0x99)
EDITED_RGB = (0xCC, 0x88, 0x22)
BOX = (16, 12, 24, 16)              # x, y, w, h of the object
GROW = 2


def _graph(harmonize_inputs: dict, extra: dict | None = None) -> dict:
    color = lambda rgb: (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]          # noqa: E731
    x, y, w, h = BOX
    graph = {
        "orig": {"class_type": "EmptyImage", "inputs": {"width": W, "height": H, "batch_size": T,
                                                         "color": color(ORIGINAL_RGB)}},
        "edit": {"class_type": "EmptyImage", "inputs": {"width": W, "height": H, "batch_size": T,
                                                         "color": color(EDITED_RGB)}},
        "empty": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": W, "height": H}},
        "box": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": w, "height": h}},
        "mask": {"class_type": "MaskComposite", "inputs": {"destination": ["empty", 0], "source": ["box", 0],
                                                           "x": x, "y": y, "operation": "add"}},
        "comp": {"class_type": "DRIVE_CompositeBackground",
                 "inputs": {"edited": ["edit", 0], "original": ["orig", 0], "mask": ["mask", 0],
                            "grow": GROW, "feather": 1.5, "blend": "laplacian"}},
        "harm": {"class_type": "DRIVE_Harmonize",
                 "inputs": {"image": ["comp", 0], "mask": ["mask", 0], "strength": 1.0,
                            "temporal_smoothing": 0.96, "fps": 30.0, "frames_per_batch": 3, **harmonize_inputs}},
        "filters": {"class_type": "DRIVE_ColorFilters",
                    "inputs": {"image": ["harm", 0], "mask": ["mask", 0], "temperature": 0.1, "brightness": 0.2,
                               "contrast": 0.0, "saturation": -0.1, "highlight": 0.0, "shadow": 0.1}},
        "save": {"class_type": "SaveImage", "inputs": {"images": ["filters", 0], "filename_prefix": "drive_compose"}},
        "args": {"class_type": "PreviewAny", "inputs": {"source": ["harm", 1]}},
    }
    graph.update(extra or {})
    return graph


def _check_outputs(comfy, entry: dict) -> dict:
    images = entry["outputs"]["save"]["images"]
    assert len(images) == T
    x, y, w, h = BOX
    outside = np.ones((H, W), bool)
    outside[max(0, y - GROW):y + h + GROW, max(0, x - GROW):x + w + GROW] = False
    for item in images:
        pixels = np.asarray(Image.open(comfy.output_dir / item["subfolder"] / item["filename"]).convert("RGB"))
        assert pixels.shape == (H, W, 3)
        assert (pixels[outside] == np.array(ORIGINAL_RGB, np.uint8)).all()
        assert (pixels[y + h // 2, x + w // 2] != np.array(ORIGINAL_RGB, np.uint8)).any()
    return json.loads(entry["outputs"]["args"]["text"][0])


def test_nodes_are_registered(comfy):
    info = comfy.object_info()
    assert info["DRIVE_HarmonizerLoader"]["output"] == ["HARMONIZER"]
    assert "harmonizer" in info["DRIVE_Harmonize"]["input"]["optional"]


def test_missing_weights_name_the_folder_and_the_licence(comfy):
    graph = _graph({"harmonizer": ["load", 0]},
                   {"load": {"class_type": "DRIVE_HarmonizerLoader", "inputs": {"weights": "harmonizer.pth"}}})
    entry = comfy.run(graph, timeout=300)
    assert entry["status"]["status_str"] == "error"
    message = next(data for event, data in entry["status"]["messages"] if event == "execution_error")
    text = message["exception_message"]
    assert "harmonizer.pth" in text and "harmonizer" in text and "CC BY-NC-SA" in text


def test_composite_then_pass_through_without_weights(comfy):
    report = _check_outputs(comfy, comfy.run_ok(_graph({}), timeout=300))
    assert report["mode"] == "pass_through" and "harmonizer.pth" in report["note"]
    assert report["ema"] == pytest.approx(0.96 ** (25 / 30))


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_composite_then_harmonizer_with_random_weights(comfy, suffix):
    state = random_state_dict(0)
    path = comfy.models_dir / "harmonizer" / f"random_harmonizer{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    graph = _graph({"harmonizer": ["load", 0]},
                   {"load": {"class_type": "DRIVE_HarmonizerLoader", "inputs": {"weights": path.name}}})
    report = _check_outputs(comfy, comfy.run_ok(graph, timeout=600))
    assert report["mode"] == "harmonizer" and len(report["predicted"]) == T
    assert all(len(row) == 6 for row in report["applied"])
