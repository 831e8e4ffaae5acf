"""Tracking nodes inside a real ComfyUI: random SAM2 weights -> Track Object -> Mask Preview."""

from __future__ import annotations

import pytest

from comfy_client import execution_error
from random_weights import write_random_sam2

pytestmark = pytest.mark.integration




def test_track_object_then_preview(comfy):
    sam2_dir = comfy.models_dir / "sam2"
    write_random_sam2(sam2_dir / "sam2.1_hiera_tiny_random.safetensors")
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 4, "color": 0x336699}},
        "2": {"class_type": "DRIVE_SAM2Loader",
              "inputs": {"model_name": "sam2.1_hiera_tiny_random.safetensors", "precision": "fp32",
                         "image_size": 256}},
        "3": {"class_type": "DRIVE_TrackObject",
              "inputs": {"sam2_model": ["2", 0], "images": ["1", 0], "frame_index": 1,
                         "positive_points": '[{"x": 30, "y": 20}]', "negative_points": "",
                         "individual_objects": False, "output_mode": "merged", "samurai_mode": True,
                         "stable_frames_threshold": 15, "stable_ious_threshold": 0.3, "kf_score_weight": 0.25,
                         "min_obj_score_logits": -1.0, "memory_bank_iou_threshold": 0.5,
                         "memory_bank_obj_score_threshold": 0.0, "memory_bank_kf_score_threshold": 0.0,
                         "offload_video_to_cpu": True, "offload_state_to_cpu": True}},
        "4": {"class_type": "DRIVE_MaskTools",
              "inputs": {"mask": ["3", 0], "threshold": 0.5, "fill_holes": True, "min_island_px": 4,
                         "temporal_radius": 1, "grow_px": 1, "feather_px": 0.0, "invert": False}},
        "5": {"class_type": "DRIVE_MaskPreview",
              "inputs": {"images": ["1", 0], "mask": ["4", 0], "color": "red", "opacity": 0.5, "outline_px": 1}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
    }
    entry = comfy.run_ok(prompt, timeout=600)
    images = entry["outputs"]["6"]["images"]
    assert len(images) == 4

    # a file that is not a SAM 2 checkpoint: the error names the folder and the expected files
    (sam2_dir / "broken.pt").write_bytes(b"not a checkpoint")
    prompt["2"]["inputs"]["model_name"] = "broken.pt"
    entry = comfy.run(prompt, timeout=300)
    assert entry["status"]["status_str"] == "error"
    message = execution_error(entry).get("exception_message", "")
    assert "sam2" in message and "sam2.1_hiera_base_plus.pt" in message, message


def test_propagate_mask_runs(comfy):
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 3, "color": 0x808080}},
        "2": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 48}},
        "3": {"class_type": "DRIVE_PropagateMask",
              "inputs": {"images": ["1", 0], "mask": ["2", 0], "frame_index": 0, "flow_quality": "auto",
                         "occlusion_check": True, "threshold": 0.5}},
        "4": {"class_type": "DRIVE_MaskPreview",
              "inputs": {"images": ["1", 0], "mask": ["3", 0], "color": "green", "opacity": 0.5, "outline_px": 0}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
    }
    entry = comfy.run_ok(prompt, timeout=300)
    assert len(entry["outputs"]["5"]["images"]) == 3
