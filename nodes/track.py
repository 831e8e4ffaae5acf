"""Tracking nodes (DRIVE/track): SAM2Loader and TrackObject (SAM 2 / SAMURAI), over ``drive_ops.masks``."""

from __future__ import annotations

import os

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
import torch
from comfy_api.latest import io

from ..drive_ops.core.validate import check_image, check_mask, check_numbers
from ..drive_ops.masks.prompts import check_picked_size
from .checks import check_options, combo_answer
from .model_folders import register_model_folder
from .progress import progress_bar

SAM2_FOLDER = "sam2"
register_model_folder(SAM2_FOLDER, {".pt", ".safetensors"})

Sam2Model = io.Custom("SAM2_MODEL")
Bbox = io.Custom("BBOX")

_EXPECTED = ("sam2.1_hiera_tiny.pt, sam2.1_hiera_small.pt, sam2.1_hiera_base_plus.pt, sam2.1_hiera_large.pt "
             "(the official SAM 2 / 2.1 checkpoints, or their .safetensors conversions)")


def _sam2_folder() -> str:
    folders = folder_paths.get_folder_paths(SAM2_FOLDER)
    return folders[0] if folders else "ComfyUI/models/sam2"


def _sam2_folder_hint() -> str:
    return f"put a SAM 2 checkpoint into {_sam2_folder()}: one of {_EXPECTED}"


class Sam2Holder(torch.nn.Module):
    """Holds the SAM 2 predictor for a ModelPatcher, which sets bookkeeping attributes
    (``device`` among them) on the module it manages; SAM2Base's ``device`` is read-only."""

    def __init__(self, predictor: torch.nn.Module, size: str | None = None):
        super().__init__()
        self.predictor = predictor
        self.size = size


class SAM2Loader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_SAM2Loader",
            display_name="Load SAM2 Model (DRIVE)",
            category="DRIVE/track",
            description="Loads a SAM 2 / 2.1 checkpoint (tiny, small, base+ or large, detected from the file) "
                        "from models/sam2 for Track Object. Needs the optional sam2 package.",
            inputs=[
                io.Combo.Input("model_name", options=folder_paths.get_filename_list(SAM2_FOLDER),
                               tooltip="A .pt or .safetensors file in models/sam2, e.g. sam2.1_hiera_base_plus.pt "
                                       "(never downloaded: copy it there yourself)."),
                io.Combo.Input("precision", options=["fp32", "bf16", "fp16"], default="fp32",
                               tooltip="Compute precision of tracking (autocast). bf16/fp16 are faster on GPUs; "
                                       "use fp32 on the CPU."),
                io.Int.Input("image_size", default=1024, min=256, max=2048, step=32,
                             tooltip="Resolution SAM 2 sees the frames at. The checkpoints are trained at 1024; "
                                     "smaller is much faster but less accurate."),
            ],
            outputs=[Sam2Model.Output(display_name="sam2_model")],
        )

    @classmethod
    def validate_inputs(cls, precision, model_name=None) -> bool | str:
        # model_name is named too: execute's message says which folder a missing file goes in
        return combo_answer(cls, precision=precision)

    @classmethod
    def execute(cls, model_name: str, precision: str, image_size: int) -> io.NodeOutput:
        check_options(cls, precision=precision)
        from ..drive_ops.core.weights import WeightFileError
        from ..drive_ops.masks.sam2_build import check_image_size, load_sam2_model

        check_image_size(image_size)
        path = folder_paths.get_full_path(SAM2_FOLDER, model_name) if isinstance(model_name, str) and model_name \
            else None
        if path is None or not os.path.isfile(path):
            raise FileNotFoundError(f"SAM 2 file {model_name!r} not found; {_sam2_folder_hint()}")
        try:
            model, variant = load_sam2_model(path, precision, image_size)
        except WeightFileError as err:  # only a bad file gets the where-to-put-it hint
            raise WeightFileError(f"{err} The sam2 model folder is {_sam2_folder()}.") from None
        patcher = comfy.model_patcher.ModelPatcher(Sam2Holder(model, variant.size),
                                                   load_device=mm.get_torch_device(),
                                                   offload_device=mm.unet_offload_device())
        return io.NodeOutput(patcher)


class TrackObject(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_TrackObject",
            display_name="Track Object (DRIVE)",
            category="DRIVE/track",
            description="Segments an object through the clip with SAM 2 from points, a box or a mask on any "
                        "frame, tracking forwards and backwards. samurai_mode adds SAMURAI's Kalman-filter motion "
                        "model and quality-gated memory (single object).",
            inputs=[
                Sam2Model.Input("sam2_model", tooltip="From Load SAM2 Model."),
                io.Image.Input("images", tooltip="The video frames [T,H,W,3]."),
                io.Int.Input("frame_index", default=0, min=0, max=1_000_000,
                             tooltip="The frame the prompt is drawn on (0 = first)."),
                io.String.Input("positive_points", multiline=True, default="", optional=True,
                                tooltip='Points on the object, JSON as KJNodes Points Editor writes it: '
                                        '[{"x": 120, "y": 80}], in pixels of these frames (after Load '
                                        'Video\'s resize).'),
                io.String.Input("negative_points", multiline=True, default="", optional=True,
                                tooltip="Points that are NOT the object, same JSON format."),
                Bbox.Input("bboxes", optional=True,
                           tooltip="Box prompt(s) as [x1, y1, x2, y2] pixel corners (e.g. from Points Editor)."),
                io.Mask.Input("mask", optional=True,
                              tooltip="A mask of the object on frame_index (a single frame, or one per frame)."),
                io.Boolean.Input("individual_objects", default=False,
                                 tooltip="Each positive point, box and separate mask region is its own object "
                                         "(not with samurai_mode)."),
                io.Combo.Input("output_mode", options=["merged", "per_object"], default="merged",
                               tooltip="merged: one MASK [T,H,W] of all objects. per_object: [N*T,H,W], "
                                       "object 0's frames first, then object 1's ..."),
                io.Boolean.Input("samurai_mode", default=False,
                                 tooltip="SAMURAI: Kalman-filter motion model and motion-aware memory selection. "
                                         "Steadier on fast motion and look-alikes; one object only."),
                io.Int.Input("stable_frames_threshold", default=15, min=1, max=1000,
                             tooltip="SAMURAI: frames of confident tracking before the motion model re-ranks."),
                io.Float.Input("stable_ious_threshold", default=0.3, min=0.0, max=1.0, step=0.01,
                               tooltip="SAMURAI: below this predicted IoU the motion model restarts."),
                io.Float.Input("kf_score_weight", default=0.25, min=0.0, max=1.0, step=0.01,
                               tooltip="SAMURAI: weight of the motion-model IoU against SAM's own. Left at 0.25 "
                                       "(SAMURAI's tiny/small/base+ value) it becomes 0.15 with a large model "
                                       "(SAMURAI's large config); any other value is used as set."),
                io.Float.Input("min_obj_score_logits", default=-1.0, min=-20.0, max=20.0, step=0.1,
                               tooltip="SAMURAI: object-presence logit above which the object counts as visible."),
                io.Float.Input("memory_bank_iou_threshold", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="SAMURAI: a frame enters the memory only above this predicted IoU."),
                io.Float.Input("memory_bank_obj_score_threshold", default=0.0, min=-20.0, max=20.0, step=0.1,
                               tooltip="SAMURAI: ... and above this object-presence logit."),
                io.Float.Input("memory_bank_kf_score_threshold", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="SAMURAI: ... and above this motion-model IoU."),
                io.Boolean.Input("offload_video_to_cpu", default=True,
                                 tooltip="Prepare each frame on the CPU when it is needed instead of holding the "
                                         "whole resized clip on the GPU (long clips)."),
                io.Boolean.Input("offload_state_to_cpu", default=False,
                                 tooltip="Keep the tracker's per-frame memory on the CPU (saves GPU memory, "
                                         "a little slower)."),
                io.Boolean.Input("points_normalized", default=False, optional=True,
                                 tooltip="On when the points are fractions 0..1 of the frame (KJNodes Points "
                                         "Editor with normalize on); off for pixels of these frames. Boxes are "
                                         "always pixels."),
                io.Combo.Input("bbox_format", options=["xyxy", "xywh"], default="xyxy", optional=True,
                               tooltip="How the box numbers are laid out: xyxy = corners x1, y1, x2, y2; xywh = x, "
                                       "y, width, height (Points Editor's bbox_format)."),
                io.String.Input("box", default="", optional=True,
                                tooltip="A box drawn on the canvas (drag): JSON [x1, y1, x2, y2] corners in pixels "
                                        "of these frames; used with the bboxes input if both are given."),
                io.String.Input("picked_frame_size", default="", optional=True,
                                tooltip="WIDTHxHEIGHT of the frames the canvas picked the points and box on (it "
                                        "writes this). If the frames arriving differ, tracking stops with an "
                                        "error instead of using misplaced points; empty skips the check."),
            ],
            outputs=[io.Mask.Output(display_name="mask")],
        )

    @classmethod
    def validate_inputs(cls, output_mode, bbox_format=None) -> bool | str:
        return combo_answer(cls, output_mode=output_mode, bbox_format=bbox_format)

    @classmethod
    def execute(cls, sam2_model, images, frame_index: int, individual_objects: bool, output_mode: str,
                samurai_mode: bool, stable_frames_threshold: int, stable_ious_threshold: float,
                kf_score_weight: float, min_obj_score_logits: float, memory_bank_iou_threshold: float,
                memory_bank_obj_score_threshold: float, memory_bank_kf_score_threshold: float,
                offload_video_to_cpu: bool, offload_state_to_cpu: bool, positive_points: str = "",
                negative_points: str = "", bboxes=None, mask=None, points_normalized: bool = False,
                bbox_format: str = "xyxy", box: str = "", picked_frame_size: str = "") -> io.NodeOutput:
        check_options(cls, output_mode=output_mode, bbox_format=bbox_format)
        from ..drive_ops.masks.samurai import SamuraiConfig, kf_score_weight_for
        from ..drive_ops.masks.tracking import track_masks, tracked_frame_count

        check_image(images, "the images input")
        if mask is not None:
            check_mask(mask, "the prompt mask")
        check_numbers(stable_ious_threshold=stable_ious_threshold, kf_score_weight=kf_score_weight,
                      min_obj_score_logits=min_obj_score_logits, memory_bank_iou_threshold=memory_bank_iou_threshold,
                      memory_bank_obj_score_threshold=memory_bank_obj_score_threshold,
                      memory_bank_kf_score_threshold=memory_bank_kf_score_threshold)
        t = images.shape[0]
        check_picked_size(picked_frame_size, images.shape[2], images.shape[1])
        if frame_index >= t:
            raise ValueError(f"frame_index {frame_index} is past the clip's last frame ({t - 1})")
        kf_score_weight = kf_score_weight_for(getattr(sam2_model.model, "size", None), kf_score_weight)
        samurai = SamuraiConfig(stable_frames_threshold, stable_ious_threshold, min_obj_score_logits,
                                kf_score_weight, memory_bank_iou_threshold, memory_bank_obj_score_threshold,
                                memory_bank_kf_score_threshold) if samurai_mode else None
        mm.load_models_gpu([sam2_model])
        out = track_masks(sam2_model.model.predictor, images.cpu(), frame_index, positive_points, negative_points, bboxes,
                          None if mask is None else mask.cpu(), individual_objects, output_mode == "per_object",
                          samurai, offload_video_to_cpu, offload_state_to_cpu, progress=progress_bar(tracked_frame_count([frame_index], t)),
                          points_normalized=points_normalized, bbox_format=bbox_format, box=box)
        return io.NodeOutput(out.to(mm.intermediate_device()), ui={"drive_frame": [prompt_frame_file(images, frame_index)]})


def prompt_frame_file(images, frame_index: int) -> dict:
    """Frame ``frame_index`` as a PNG in the temp folder: Track Object's canvas shows it exactly after a run."""
    from PIL import Image

    frame = (images[frame_index, ..., :3].float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    h, w = frame.shape[:2]
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path("DRIVE/track_frame",
                                                                           folder_paths.get_temp_directory(), w, h)
    file = f"{name}_{counter:05}_.png"
    Image.fromarray(frame).save(os.path.join(folder, file), compress_level=1)
    return {"filename": file, "subfolder": subfolder, "type": "temp", "frame": frame_index, "width": w, "height": h}


NODES = [SAM2Loader, TrackObject]
