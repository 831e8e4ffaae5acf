"""Weight-free mask nodes (DRIVE/mask): PropagateMask (DIS optical flow), MaskTools and MaskPreview, over ``drive_ops.masks``."""

from __future__ import annotations

import comfy.model_management as mm
from comfy_api.latest import io

from ..drive_ops.core.optical_flow import FLOW_QUALITIES
from ..drive_ops.core.validate import check_image, check_mask, check_numbers
from .animated_preview import animated_preview
from .checks import blend_mask, check_options, combo_answer
from .progress import progress_bar

_COLOURS = {"red": (1.0, 0.15, 0.15), "green": (0.15, 1.0, 0.3), "blue": (0.2, 0.4, 1.0),
            "yellow": (1.0, 0.9, 0.1), "magenta": (1.0, 0.2, 1.0), "white": (1.0, 1.0, 1.0)}


class PropagateMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_PropagateMask",
            display_name="Propagate Mask (DRIVE)",
            category="DRIVE/mask",
            description="Carries a mask drawn on one frame through the whole clip with dense optical flow "
                        "(OpenCV DIS), forwards and backwards, with an occlusion check. Needs no model weights.",
            inputs=[
                io.Image.Input("images", tooltip="The video frames [T,H,W,3]."),
                io.Mask.Input("mask", tooltip="The object's mask on frame_index (a single frame, or one per frame "
                                              "of which frame_index is used)."),
                io.Int.Input("frame_index", default=0, min=0, max=1_000_000,
                             tooltip="The frame the mask belongs to (0 = first)."),
                io.Combo.Input("flow_quality", options=list(FLOW_QUALITIES),
                               default="auto",
                               tooltip="DIS optical-flow preset. fine refines at full resolution (small frames, "
                                       "thin objects); medium is faster; auto picks fine below 384 px, else medium."),
                io.Boolean.Input("occlusion_check", default=True,
                                 tooltip="Re-decide pixels whose forward and backward flow disagree (background "
                                         "revealed behind the object) by the motion they follow."),
                io.Float.Input("threshold", default=0.5, min=0.01, max=0.99, step=0.01,
                               tooltip="Re-binarisation level of the warped mask at every frame."),
            ],
            outputs=[io.Mask.Output(display_name="mask")],
        )

    @classmethod
    def validate_inputs(cls, flow_quality) -> bool | str:
        return combo_answer(cls, flow_quality=flow_quality)

    @classmethod
    def execute(cls, images, mask, frame_index: int, flow_quality: str, occlusion_check: bool,
                threshold: float) -> io.NodeOutput:
        check_options(cls, flow_quality=flow_quality)
        from ..drive_ops.core.mask_frames import mask_on_frame
        from ..drive_ops.masks.propagation import propagate_mask

        check_image(images, "the images input")
        check_mask(mask, "the mask input")
        check_numbers(threshold=threshold)
        t, h, w = images.shape[:3]
        if frame_index >= t:
            raise ValueError(f"frame_index {frame_index} is past the clip's last frame ({t - 1})")
        start = mask_on_frame(mask, frame_index, t, h, w)
        if not bool((start > threshold).any()):
            raise ValueError(f"the mask is empty on frame {frame_index}; draw the object on that frame")
        out = propagate_mask(images.cpu(), start.cpu(), frame_index, flow_quality, occlusion_check, threshold,
                             progress=progress_bar(t))
        return io.NodeOutput(out.to(mm.intermediate_device()))


class MaskTools(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_MaskTools",
            display_name="Mask Tools (DRIVE)",
            category="DRIVE/mask",
            description="Cleans up video masks in one go: threshold, fill holes, drop small islands, temporal "
                        "smoothing, grow/shrink, feather and invert (applied in that order).",
            inputs=[
                io.Mask.Input("mask", tooltip="Masks [T,H,W] (or a single [H,W])."),
                io.Float.Input("threshold", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="Binarise at this level first (0 keeps the mask soft)."),
                io.Boolean.Input("fill_holes", default=False,
                                 tooltip="Fill background regions enclosed by the object."),
                io.Int.Input("min_island_px", default=0, min=0, max=1_000_000,
                             tooltip="Drop foreground islands smaller than this many pixels (0 = keep all)."),
                io.Int.Input("temporal_radius", default=0, min=0, max=30,
                             tooltip="Average over 2r+1 neighbouring frames to remove flicker (0 = off)."),
                io.Int.Input("grow_px", default=0, min=-256, max=256,
                             tooltip="Grow (positive) or shrink (negative) the mask by this many pixels."),
                io.Float.Input("feather_px", default=0.0, min=0.0, max=256.0, step=0.5,
                               tooltip="Soften the edge over about this many pixels (0 = hard edge)."),
                io.Boolean.Input("invert", default=False, tooltip="Swap object and background at the end."),
            ],
            outputs=[io.Mask.Output(display_name="mask")],
        )

    @classmethod
    def execute(cls, mask, threshold: float, fill_holes: bool, min_island_px: int, temporal_radius: int,
                grow_px: int, feather_px: float, invert: bool) -> io.NodeOutput:
        from ..drive_ops.masks.mask_ops import refine_mask

        check_numbers(threshold=threshold, feather_px=feather_px)
        mask = blend_mask(mask, "DRIVE_MaskTools")
        m = mask if mask.dim() == 3 else mask.reshape(-1, *mask.shape[-2:])
        out = refine_mask(m, threshold if threshold > 0 else None, fill_holes, min_island_px, temporal_radius,
                          grow_px, feather_px, invert)
        return io.NodeOutput(out.to(mm.intermediate_device()))


class MaskPreview(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_MaskPreview",
            display_name="Mask Preview (DRIVE)",
            category="DRIVE/mask",
            description="Overlays video masks on their frames (tint plus outline) and plays the result in the "
                        "node itself, to check tracking at a glance. An output node: queue it alone (select it, "
                        "then Queue Selected Output Nodes) to see the mask in seconds before the long edit; in a "
                        "full run it shows before any sampling starts.",
            inputs=[
                io.Image.Input("images", tooltip="The video frames [T,H,W,3]."),
                io.Mask.Input("mask", tooltip="Masks [T,H,W], or a single mask for every frame."),
                io.Combo.Input("color", options=list(_COLOURS), default="red", tooltip="Overlay colour."),
                io.Float.Input("opacity", default=0.5, min=0.0, max=1.0, step=0.05,
                               tooltip="How strongly the mask tints the frame."),
                io.Int.Input("outline_px", default=2, min=0, max=32,
                             tooltip="Width of the opaque outline along the mask edge (0 = none)."),
                io.Float.Input("fps", default=12.0, min=0.1, max=240.0, step=0.1, optional=True,
                               tooltip="Playback speed of the animated preview in the node (connect Load Video's "
                                       "fps for real time)."),
            ],
            outputs=[io.Image.Output(display_name="images")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, color) -> bool | str:
        return combo_answer(cls, color=color)

    @classmethod
    def execute(cls, images, mask, color: str, opacity: float, outline_px: int, fps: float = 12.0) -> io.NodeOutput:
        check_options(cls, color=color)
        from ..drive_ops.core.mask_frames import match_mask_frames
        from ..drive_ops.core.mask_morphology import overlay_mask

        check_image(images, "the images input")
        check_numbers(opacity=opacity, fps=fps)
        if fps <= 0:
            raise ValueError(f"fps must be above 0, got {fps}; connect Load Video's fps or leave the default 12")
        t, h, w = images.shape[:3]
        m = match_mask_frames(blend_mask(mask, "DRIVE_MaskPreview"), t, h, w, what="mask to preview")
        out = overlay_mask(images, m, _COLOURS[color], opacity, outline_px)
        return io.NodeOutput(out.to(mm.intermediate_device()), ui=animated_preview(out, fps, "DRIVE/mask_preview"))


NODES = [PropagateMask, MaskTools, MaskPreview]
