"""Remove the object, composite the edit over the original video and harmonise its colours (DRIVE/composite).

DRIVE_FillBackground, DRIVE_AlignEditedClip, DRIVE_CompositeBackground, DRIVE_ColorFilters, DRIVE_HarmonizerLoader,
DRIVE_Harmonize. The maths lives in drive_ops.composite (fill_background, background_propagation, align, compositing,
color_filters, harmonizer_model, harmonize); these nodes add sockets, model management,
chunking progress and error messages. Fill Background's diffusion keyframe fill is
nodes/keyframe_inpaint.py.
"""

from __future__ import annotations

import json
import logging

import torch
from comfy_api.latest import io

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
from ..drive_ops.composite.align import RESIZE_POLICIES as ALIGN_POLICIES, align_edited_clip
from ..drive_ops.composite.color_filters import FILTER_NAMES, apply_filters
from ..drive_ops.composite.compositing import BLEND_MODES, composite_video, mask_on_canvas
from ..drive_ops.composite.fill_background import INPAINT_METHODS, KEYFRAME_AUTO, fill_background
from ..drive_ops.core.optical_flow import FLOW_QUALITIES
from ..drive_ops.composite.harmonize import (DEFAULT_EMA, PASS_THROUGH_NOTE, REFERENCE_FPS, ema_for_fps,
                                             harmonize_video, map_frames)
from ..drive_ops.composite.harmonizer_model import build_harmonizer, load_state_dict_file
from ..drive_ops.core.validate import check_image, check_numbers
from .checks import blend_mask, check_options, combo_answer
from .keyframe_inpaint import diffusion_keyframe_fill
from .model_folders import register_model_folder
from .progress import progress_bar

HARMONIZER_FOLDER = "harmonizer"
HARMONIZER_EXTENSIONS = {".pth", ".pt", ".safetensors"}
DEFAULT_WEIGHTS = "harmonizer.pth"
LICENCE_NOTE = ("Harmonizer's published weights (harmonizer.pth from the ZHKKKe/Harmonizer repository) are "
                "licensed CC BY-NC-SA 4.0: non-commercial use only")
FRAMES_PER_CHUNK = 16
DIFFUSION_INPUTS = ("model", "positive", "negative", "vae")

Harmonizer = io.Custom("HARMONIZER")
_LOG = logging.getLogger(__name__)


register_model_folder(HARMONIZER_FOLDER, HARMONIZER_EXTENSIONS)


class FillBackground(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_FillBackground",
            display_name="Fill Background (DRIVE)",
            category="DRIVE/composite",
            description="Removes the masked object: fills its region with the background other frames show, "
                        "carried along optical flow completed from the surrounding motion (forwards and backwards), "
                        "and invents what no frame shows once, on a keyframe (with the diffusion model when one is "
                        "connected, else OpenCV inpainting), carried to the other frames so it moves with the "
                        "scene. Outside the mask the frames are unchanged. Also outputs the mask of the invented "
                        "area. Feed the filled clip into VAE Encode and Composite Background's background input "
                        "to shrink an object instead.",
            inputs=[
                io.Image.Input("images", tooltip="The video frames [T,H,W,3]."),
                io.Mask.Input("mask", tooltip="What to remove (e.g. Track Object's mask): one per frame, or one "
                                              "frame for all, at the frames' size."),
                io.Int.Input("grow", default=4, min=0, max=256,
                             tooltip="Grow the mask by this many pixels first, so the object's soft edge and its "
                                     "halo go too."),
                io.Combo.Input("flow_quality", options=list(FLOW_QUALITIES), default="auto",
                               tooltip="DIS optical-flow preset. fine refines at full resolution (small frames, thin "
                                       "detail); medium is faster; auto picks fine below 384 px, else medium."),
                io.Int.Input("keyframe", default=KEYFRAME_AUTO, min=KEYFRAME_AUTO, max=1_000_000,
                             tooltip="The frame on which the area no frame shows is invented (-1 = the frame where "
                                     "it is largest). Pick a frame where the object covers the most background."),
                io.Combo.Input("inpaint_method", options=list(INPAINT_METHODS), default="telea",
                               tooltip="OpenCV inpainting (Telea or Navier-Stokes): the keyframe fill without a "
                                       "model, and the starting point of the diffusion fill."),
                io.Int.Input("steps", default=20, min=1, max=1000,
                             tooltip="DDIM steps of the diffusion keyframe fill (only with a model connected)."),
                io.Float.Input("cfg", default=5.0, min=0.0, max=30.0, step=0.1,
                               tooltip="CFG scale of the diffusion keyframe fill."),
                io.Float.Input("denoise", default=0.85, min=0.01, max=1.0, step=0.01,
                               tooltip="How much of the keyframe's unseen area the model redraws: 1 starts from "
                                       "noise (use it with inpainting checkpoints), lower keeps more of the OpenCV "
                                       "starting point."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Seed of the diffusion keyframe fill's noise."),
                io.Model.Input("model", optional=True,
                               tooltip="Optional: a diffusion MODEL to invent the unseen area on the keyframe (LoRA, "
                                       "inpainting checkpoints work). Needs positive, negative and vae too."),
                io.Conditioning.Input("positive", optional=True,
                                      tooltip="Describe the background, without the object (e.g. \"empty forest "
                                              "floor\"). A ControlNet applied here gets the keyframe's hint."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Negative prompt of the keyframe fill (e.g. the removed object's name)."),
                io.Vae.Input("vae", optional=True, tooltip="The checkpoint's VAE, to encode and decode the keyframe."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The frames with the object removed."),
                     io.Mask.Output(display_name="unrecovered",
                                    tooltip="Where no frame showed the background: the invented fill.")],
        )

    @classmethod
    def validate_inputs(cls, flow_quality, inpaint_method) -> bool | str:
        return combo_answer(cls, flow_quality=flow_quality, inpaint_method=inpaint_method)

    @classmethod
    def execute(cls, images: torch.Tensor, mask: torch.Tensor, grow: int, flow_quality: str, keyframe: int,
                inpaint_method: str, steps: int, cfg: float, denoise: float, seed: int, model=None,
                positive=None, negative=None, vae=None) -> io.NodeOutput:
        given = dict(zip(DIFFUSION_INPUTS, (model, positive, negative, vae)))
        missing = [name for name, value in given.items() if value is None]
        if 0 < len(missing) < len(DIFFUSION_INPUTS):
            raise ValueError(f"the diffusion keyframe fill needs model, positive, negative and vae; connect "
                             f"{', '.join(missing)} too, or disconnect all four for the OpenCV fill")
        frames = images.shape[0]
        fill = None if model is None else diffusion_keyframe_fill(model, positive, negative, vae, steps, cfg,
                                                                   denoise, seed, frames, inpaint_method)
        out, unrecovered = fill_background(images, mask, grow=grow, flow_quality=flow_quality, keyframe=keyframe,
                                           keyframe_fill=fill, inpaint_method=inpaint_method,
                                           device=mm.get_torch_device(),
                                           progress=progress_bar(3 * frames))
        return io.NodeOutput(out.to(mm.intermediate_device()), unrecovered.to(mm.intermediate_device()))


class AlignEditedClip(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_AlignEditedClip",
            display_name="Align Edited Clip (DRIVE)",
            category="DRIVE/composite",
            description="Puts another model's edit (Wan VACE's 81-frame 720x720 segments, a VOID window, any 4n+1 "
                        "frame count, another size or aspect) back on the original's frames and size, so Composite "
                        "Background, Harmonize and Edit Report can finish it. Edited frame j lands on original frame "
                        "frame_offset + j * frame_stride; resize_policy says how the original was fitted to the "
                        "model's size, and is undone. Frames and pixels the edit does not cover keep the original; "
                        "the covered output marks the rest. Refuses an alignment that covers nothing, saying why.",
            inputs=[
                io.Image.Input("original", tooltip="The original clip the edit was made from: sets the frames and "
                                                   "size of the output."),
                io.Image.Input("edited", tooltip="The other model's edited frames (e.g. VAE Decode of a Wan VACE "
                                                 "sampling), at its own frame count and size."),
                io.Int.Input("frame_offset", default=0, min=-1_000_000, max=1_000_000,
                             tooltip="The original frame the edit's first frame shows (e.g. a window's start). "
                                     "Negative when the edit has extra frames before the clip (they are left out)."),
                io.Int.Input("frame_stride", default=1, min=1, max=1000,
                             tooltip="Original frames per edited frame: 1 when the edit has every frame, 2 when it "
                                     "was made from every second frame (the frames between keep the original)."),
                io.Combo.Input("resize_policy", options=list(ALIGN_POLICIES), default="stretch",
                               tooltip="How the original was fitted to the model's frame size: stretch (resized, "
                                       "aspect ignored; core Upscale Image, crop disabled), crop_centre (scaled to "
                                       "cover, centre cropped; Upscale Image, crop center: the cut-off sides keep the "
                                       "original) or pad (scaled to fit on a border; Resize And Pad Image)."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional object mask, at the original's size (one frame or one per original "
                                      "frame) or at the edit's (one frame or one per edited frame, e.g. VACE's mask): "
                                      "returned on the original's frames, limited to what the edit covers. With "
                                      "clips of the same size and frame count it is read as the original's."),
            ],
            outputs=[io.Image.Output(display_name="image",
                                     tooltip="The edit on the original's frames and size; the original where the "
                                             "edit does not reach."),
                     io.Mask.Output(display_name="mask",
                                    tooltip="The object mask on the original's frames, 0 where the edit does not "
                                            "reach (the covered mask when no mask is connected): wire it to "
                                            "Composite Background and Harmonize."),
                     io.Mask.Output(display_name="covered",
                                    tooltip="1 on every original pixel the edit covers, 0 on the frames and crop "
                                            "margins it does not.")],
        )

    @classmethod
    def validate_inputs(cls, resize_policy) -> bool | str:
        return combo_answer(cls, resize_policy=resize_policy)

    @classmethod
    def execute(cls, original: torch.Tensor, edited: torch.Tensor, frame_offset: int, frame_stride: int,
                resize_policy: str, mask: torch.Tensor | None = None) -> io.NodeOutput:
        check_options(cls, resize_policy=resize_policy)
        check_image(original, "the original input")
        check_image(edited, "the edited input")
        mask = None if mask is None else blend_mask(mask, "DRIVE_AlignEditedClip")
        frames = edited.shape[0]
        aligned = align_edited_clip(original, edited, frame_offset, frame_stride, resize_policy, mask=mask,
                                    chunk=FRAMES_PER_CHUNK, device=mm.get_torch_device(),
                                    progress=progress_bar(max(1, -(-frames // FRAMES_PER_CHUNK))))
        for note in aligned.notes:
            _LOG.warning("DRIVE_AlignEditedClip: %s", note)
        out_mask = aligned.covered if aligned.mask is None else aligned.mask
        device = mm.intermediate_device()
        return io.NodeOutput(aligned.image.to(device), out_mask.to(device), aligned.covered.to(device))


class CompositeBackground(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_CompositeBackground",
            display_name="Composite Background (DRIVE)",
            category="DRIVE/composite",
            description="Puts the edited object back over the original video: the edited frames inside the "
                        "(grown, feathered) mask, the original bit for bit everywhere else. Edited frames at the "
                        "loader's working size are mapped back onto the original's size. With a background (the "
                        "object removed by Fill Background), the edit is blended over that inside the mask.",
            inputs=[
                io.Image.Input("edited", tooltip="The edited frames (e.g. VAE Decode of the masked-CFG result)."),
                io.Image.Input("original", tooltip="The original frames whose background is kept; sets the output size."),
                io.Mask.Input("mask", tooltip="The object mask: one per frame or a single frame for the whole clip, "
                                              "at the original's or the edited frames' size."),
                io.Int.Input("grow", default=0, min=-64, max=64, tooltip="Dilate (+) or erode (-) the mask by this "
                                                                         "many pixels before compositing."),
                io.Float.Input("feather", default=0.0, min=0.0, max=64.0, step=0.5,
                               tooltip="Soften the seam inward over about this many pixels (0 = hard edge)."),
                io.Combo.Input("blend", options=list(BLEND_MODES), default="alpha",
                               tooltip="alpha: plain masked blend. laplacian: multi-band blend for a smoother "
                                       "low-frequency transition, still confined to the grown mask."),
                io.Image.Input("background", optional=True,
                               tooltip="Optional: the clip with the object removed (Fill Background), at the "
                                       "original's or the edited frames' size. Inside the mask the edit is blended "
                                       "over it instead of the original, so a smaller new object leaves no trace of "
                                       "the old one. Sample the edit from the same filled clip (VAE Encode it)."),
            ],
            outputs=[io.Image.Output(display_name="image")],
        )

    @classmethod
    def validate_inputs(cls, blend) -> bool | str:
        return combo_answer(cls, blend=blend)

    @classmethod
    def execute(cls, edited: torch.Tensor, original: torch.Tensor, mask: torch.Tensor, grow: int, feather: float,
                blend: str, background: torch.Tensor | None = None) -> io.NodeOutput:
        check_options(cls, blend=blend)
        check_image(edited, "the edited input")
        check_image(original, "the original input")
        check_numbers(feather=feather)
        mask = blend_mask(mask, "DRIVE_CompositeBackground")
        frames = original.shape[0]
        out = composite_video(edited, original, mask, grow=grow, feather=feather, blend=blend,
                              chunk=FRAMES_PER_CHUNK, progress=progress_bar(frames),
                              background=background)
        return io.NodeOutput(out.to(mm.intermediate_device()))


class ColorFilters(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        tips = {
            "temperature": "White balance: + warmer, - cooler.",
            "brightness": "HSV value: + brighter, - darker.",
            "contrast": "Around the frame's mean: + more, - less.",
            "saturation": "Around each pixel's lightness: + more vivid, - greyer.",
            "highlight": "Tone curve on the bright end: + lifts highlights, - darkens them.",
            "shadow": "Tone curve on the dark end: + lifts shadows, - deepens them.",
        }
        return io.Schema(
            node_id="DRIVE_ColorFilters",
            display_name="Color Filters (DRIVE)",
            category="DRIVE/composite",
            description="Harmonizer's six white-box filters (temperature, brightness, contrast, saturation, "
                        "highlight, shadow) with hand-set arguments in -1..1, applied inside the mask (whole "
                        "frame without one). Statistics are taken over the whole frame, as Harmonizer does.",
            inputs=[io.Image.Input("image", tooltip="Frames to adjust.")]
            + [io.Float.Input(name, default=0.0, min=-1.0, max=1.0, step=0.01, tooltip=tips[name])
               for name in FILTER_NAMES]
            + [io.Mask.Input("mask", optional=True, tooltip="Where to apply the filters (one frame or one per "
                                                            "frame); without it, the whole frame.")],
            outputs=[io.Image.Output(display_name="image")],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, temperature: float, brightness: float, contrast: float,
                saturation: float, highlight: float, shadow: float,
                mask: torch.Tensor | None = None) -> io.NodeOutput:
        check_image(image, "the image input")
        check_numbers(temperature=temperature, brightness=brightness, contrast=contrast, saturation=saturation,
                      highlight=highlight, shadow=shadow)
        mask = None if mask is None else blend_mask(mask, "DRIVE_ColorFilters")
        frames, height, width = image.shape[:3]
        masks = None if mask is None else mask_on_canvas(mask, frames, height, width)
        args = torch.tensor([[temperature, brightness, contrast, saturation, highlight, shadow]])
        device = mm.get_torch_device()

        def restore(chw: torch.Tensor, m: torch.Tensor | None, sl: slice) -> torch.Tensor:
            return apply_filters(chw, m, args.to(device).expand(chw.shape[0], -1))

        out = map_frames(image, masks, restore, device, FRAMES_PER_CHUNK, progress_bar(frames))
        return io.NodeOutput(out.to(mm.intermediate_device()))


class HarmonizerLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        files = folder_paths.get_filename_list(HARMONIZER_FOLDER)
        return io.Schema(
            node_id="DRIVE_HarmonizerLoader",
            display_name="Load Harmonizer (DRIVE)",
            category="DRIVE/composite",
            description="Loads Harmonizer's argument regressor from models/harmonizer (harmonizer.pth, read with "
                        "weights_only, or a .safetensors conversion). The published weights are CC BY-NC-SA 4.0 "
                        "(non-commercial) and are not downloaded for you.",
            inputs=[io.Combo.Input("weights", options=files or [DEFAULT_WEIGHTS],
                                   tooltip="A file in models/harmonizer: harmonizer.pth from ZHKKKe/Harmonizer "
                                           "(CC BY-NC-SA 4.0, non-commercial) or its .safetensors conversion.")],
            outputs=[Harmonizer.Output(display_name="harmonizer")],
        )

    @classmethod
    def validate_inputs(cls, weights) -> bool:
        """Names weights so that core's generic combo check leaves it to execute, whose message names the
        harmonizer folder to put a missing file in."""
        return True

    @classmethod
    def execute(cls, weights: str) -> io.NodeOutput:
        path = folder_paths.get_full_path(HARMONIZER_FOLDER, weights)
        if path is None:
            folders = ", ".join(folder_paths.get_folder_paths(HARMONIZER_FOLDER))
            raise FileNotFoundError(
                f"Harmonizer weights '{weights}' not found in the '{HARMONIZER_FOLDER}' model folder ({folders}). "
                f"Download {DEFAULT_WEIGHTS} yourself and put it there. {LICENCE_NOTE}. Without weights, "
                "leave DRIVE_Harmonize's harmonizer input unconnected: the frames then pass through unchanged.")
        model = build_harmonizer(load_state_dict_file(path))
        patcher = comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                                   offload_device=mm.unet_offload_device())
        return io.NodeOutput(patcher)


class Harmonize(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_Harmonize",
            display_name="Harmonize (DRIVE)",
            category="DRIVE/composite",
            description="Harmonises the composited object's colours with its background. With harmonizer.pth "
                        "(Load Harmonizer): Harmonizer's regressor predicts six filter arguments per frame "
                        "(temperature, brightness, contrast, saturation, highlight, shadow), smoothed over time, "
                        "applied inside the mask. Without it the frames pass through unchanged and the console says "
                        "so: no weight-free rule tells a colour cast from a correct edit (a Lab match moved perfect "
                        "recolours by dE 46 on the test bed). Also outputs the per-frame arguments as JSON.",
            inputs=[
                io.Image.Input("image", tooltip="The composite frames (e.g. from Composite Background)."),
                io.Mask.Input("mask", tooltip="The foreground mask, one per frame or one frame, at the frames' size "
                                              "or at the loader's working size of them."),
                io.Float.Input("strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Scales the (clamped) filter arguments Harmonizer predicts; 0 = unchanged. "
                                       "Without a harmonizer nothing changes at any strength."),
                io.Float.Input("temporal_smoothing", default=DEFAULT_EMA, min=0.0, max=0.999, step=0.01,
                               tooltip="EMA factor for the per-frame arguments as at 25 fps (Harmonizer's video "
                                       "demo uses 0.96); rescaled to the clip's fps. 0 = per-frame, no smoothing."),
                io.Float.Input("fps", default=REFERENCE_FPS, min=0.1, max=1000.0, step=0.01,
                               tooltip="The clip's frame rate (wire it from the video loader), so the smoothing "
                                       "spans the same time at any frame rate."),
                io.Int.Input("frames_per_batch", default=8, min=1, max=256,
                             tooltip="Frames processed at once on the model's device; lower it if memory is short."),
                Harmonizer.Input("harmonizer", optional=True,
                                 tooltip="From Load Harmonizer (harmonizer.pth, non-commercial licence). Not "
                                         "connected: the frames pass through unchanged."),
            ],
            outputs=[io.Image.Output(display_name="image"),
                     io.String.Output(display_name="arguments", tooltip="Per-frame arguments as JSON.")],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, mask: torch.Tensor, strength: float, temporal_smoothing: float,
                fps: float, frames_per_batch: int,
                harmonizer: comfy.model_patcher.ModelPatcher | None = None) -> io.NodeOutput:
        check_image(image, "the image input")
        check_numbers(strength=strength, temporal_smoothing=temporal_smoothing, fps=fps)
        frames, height, width = image.shape[:3]
        masks = mask_on_canvas(blend_mask(mask, "DRIVE_Harmonize"), frames, height, width)
        model = None
        device = mm.get_torch_device()
        if harmonizer is not None:
            mm.load_models_gpu([harmonizer])
            model, device = harmonizer.model, harmonizer.load_device
        ema = ema_for_fps(temporal_smoothing, fps)
        out, report = harmonize_video(image, masks, model, strength=strength, ema=ema, device=device,
                                      chunk=frames_per_batch, progress=progress_bar(frames))
        report["fps"] = fps
        if harmonizer is None:
            _LOG.info("DRIVE_Harmonize: %s", PASS_THROUGH_NOTE)
        return io.NodeOutput(out.to(mm.intermediate_device()), json.dumps(report))


NODES = [FillBackground, AlignEditedClip, CompositeBackground, ColorFilters, HarmonizerLoader, Harmonize]
