#!/usr/bin/env python3
"""Build the example workflows with ComfyUI's real frontend.

    python tools/build_workflows.py --url http://127.0.0.1:8188

Needs a running ComfyUI with this pack loaded, Debian's chromium and playwright-core
(NODE_PATH), and files (empty placeholders do) under the names the workflows use in its
models and input folders. Each spec below is turned into a graph by the frontend itself
(tools/frontend.js build), which saves the UI file users drag in
(workflows/<name>.json) and the API prompt it makes of it
(tests/workflows/<name>.api.json); /object_info for the node types used goes to
tests/workflows/object_info.json so CI can check the converter without a server.

For every workflow, with nothing to add to its spec: a template thumbnail
(workflows/<name>.jpg, what the frontend's template browser shows), and on each node that
names a file of ``MODEL_FILES`` the download metadata the Missing Models panel reads
(``properties.models``: name, url, directory). A spec's ``pictures`` (title + node ids)
become PNGs under workflows/pictures/ at full scale, with the UI workflow and its prompt
embedded as ComfyUI embeds them (tEXt chunks ``workflow`` and ``prompt``), so dropping one
onto the canvas restores the whole graph.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_DIR = ROOT / "workflows"
API_DIR = ROOT / "tests" / "workflows"
PICTURE_DIR = UI_DIR / "pictures"

# The shipped demo clip (tools/make_demo_clip.py, workflows/inputs/): a ball at (120, 300) on frame 0.
VIDEO = "drive_demo.mp4"
MASK_IMAGE = "drive_demo_mask.png"
CHECKPOINT = "v1-5-pruned-emaonly.safetensors"
SAM2_FILE = "sam2.1_hiera_tiny.pt"
CANNY_CONTROLNET = "control_v11p_sd15_canny.pth"
DEPTH_CONTROLNET = "control_v11f1p_sd15_depth.pth"
MOGE_FILE = "moge_1_vitl_fp16.safetensors"
# The official Wan 2.1 VACE inpainting template's files (comfyui_workflow_templates: video_wan_vace_inpainting)
WAN_REPACK = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
WAN_VACE_FILE = "wan2.1_vace_14B_fp16.safetensors"
WAN_VAE_FILE = "wan_2.1_vae.safetensors"
WAN_TEXT_ENCODER = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
WAN_LORA = "Wan21_CausVid_14B_T2V_lora_rank32.safetensors"
WAN_NEGATIVE = ("过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，"
                "多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，"
                "背景人很多，倒着走")
"""Wan's standard negative prompt (Chinese, as its templates give it)."""
FLUX2_DEV_REPACK = "https://huggingface.co/Comfy-Org/flux2-dev/resolve/main/split_files"
FLUX2_KLEIN_REPACK = "https://huggingface.co/Comfy-Org/flux2-klein/resolve/main/split_files"
FLUX2_KLEIN_FILE = "flux-2-klein-4b.safetensors"
FLUX2_TEXT_ENCODER = "qwen_3_4b.safetensors"
FLUX2_VAE_FILE = "flux2-vae.safetensors"
EDIT_PROMPT = "a shiny chrome metal ball, reflections, highly detailed"
NEGATIVE = "blurry, low quality, distorted, deformed"
POINTS = '[{"x": 120, "y": 300}, {"x": 100, "y": 280}]'
NEGATIVE_POINTS = "[]"
# Every model file a workflow names: its folder under ComfyUI/models and its official download
# (README's model table gives the same, with sizes and licences). Nodes naming one get it as properties.models.
MODEL_FILES = {
    "v1-5-pruned-emaonly.safetensors": (
        "checkpoints", "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/"
                       "v1-5-pruned-emaonly.safetensors"),
    # Meta's own Hugging Face repositories, the ones sam2's build_sam.from_pretrained downloads from
    **{f"sam2.1_hiera_{size}.pt": (
        "sam2", f"https://huggingface.co/facebook/sam2.1-hiera-{size.replace('_', '-')}/resolve/main/sam2.1_hiera_{size}.pt")
       for size in ("tiny", "small", "base_plus", "large")},
    CANNY_CONTROLNET: (
        "controlnet", f"https://huggingface.co/lllyasviel/ControlNet-v1-1/resolve/main/{CANNY_CONTROLNET}"),
    DEPTH_CONTROLNET: (
        "controlnet", f"https://huggingface.co/lllyasviel/ControlNet-v1-1/resolve/main/{DEPTH_CONTROLNET}"),
    "harmonizer.pth": ("harmonizer", "https://drive.google.com/file/d/15XGPQHBppaYGnhsP9l7iOGZudXNw1WbA/view"),
    MOGE_FILE: ("geometry_estimation",
                f"https://huggingface.co/Comfy-Org/MoGe/resolve/main/geometry_estimation/{MOGE_FILE}"),
    WAN_VACE_FILE: ("diffusion_models", f"{WAN_REPACK}/diffusion_models/{WAN_VACE_FILE}"),
    WAN_VAE_FILE: ("vae", f"{WAN_REPACK}/vae/{WAN_VAE_FILE}"),
    WAN_TEXT_ENCODER: ("text_encoders", f"{WAN_REPACK}/text_encoders/{WAN_TEXT_ENCODER}"),
    WAN_LORA: ("loras", f"https://huggingface.co/Kijai/WanVideo_comfy/resolve/main/{WAN_LORA}"),
    # the official FLUX.2 [klein] 4B distilled text-to-image template's files
    FLUX2_KLEIN_FILE: ("diffusion_models", f"{FLUX2_KLEIN_REPACK}/diffusion_models/{FLUX2_KLEIN_FILE}"),
    FLUX2_TEXT_ENCODER: ("text_encoders", f"{FLUX2_KLEIN_REPACK}/text_encoders/{FLUX2_TEXT_ENCODER}"),
    FLUX2_VAE_FILE: ("vae", f"{FLUX2_DEV_REPACK}/vae/{FLUX2_VAE_FILE}"),
}
# The main workflow's composite mask: a second Mask Tools feathers the tracked mask over this many px centred on its
# edge (Gaussian, sigma = half of it) for composite and harmonize; the sampler reads the tracked mask itself with
# area, threshold 0, so it edits every latent cell an object pixel lies in (bench/sampler_mask.py measured the choice).
EDIT_MASK_FEATHER_PX = 4
BACKGROUND_NOTE = ("Outside the mask the sampler's background input rules: it gets the inversion prompt (empty, "
                   "same ControlNet) the frames were inverted with, so a negative prompt you type changes only the "
                   "object. While the negative is empty too, the two are equal and the sampler runs no extra pass.")
FIXED_SEED = {"seed": 12345, "control_after_generate": "fixed"}
NOTE_COLOR, NOTE_BG = "#432", "#653"


def node(id_: str, type_: str, col: int, mode: int = 0, title: str | None = None, gap_after: int = 0,
         **widgets) -> dict:
    """A node in layout column ``col`` (the frontend stacks each column by the nodes' real sizes, loaders that
    preview their file last: the preview grows them downward). ``gap_after`` adds room below it for frontends
    that draw it taller than the one building the workflow."""
    spec = {"id": id_, "type": type_, "col": col, "widgets": widgets}
    if mode:
        spec["mode"] = mode
    if title:
        spec["title"] = title
    if gap_after:
        spec["gap_after"] = gap_after
    return spec


def note(id_: str, col: int, text: str, width: int = 400, height: int = 220) -> dict:
    spec = node(id_, "Note", col, text=text)
    spec.update(size=[width, height], color=NOTE_COLOR, bgcolor=NOTE_BG)
    return spec


def place(nodes: list[dict], columns: dict[str, int]) -> list[dict]:
    """Move the named nodes to other layout columns (the blocks' defaults suit the simple graphs)."""
    for n in nodes:
        n["col"] = columns.get(n["id"], n["col"])
    return nodes


def source_block(frame_cap: int) -> tuple[list[dict], list[list]]:
    """Load Video, the checkpoint, and VAE Encode: the start every editing workflow shares."""
    nodes = [
        node("load", "DRIVE_LoadVideo", 0, video=VIDEO, frame_load_cap=frame_cap, size_policy="fit_longer_side",
             longer_side=512),
        node("ckpt", "CheckpointLoaderSimple", 0, ckpt_name=CHECKPOINT),
        node("encode", "VAEEncode", 1),
    ]
    links = [["load", "images", "encode", "pixels"], ["ckpt", "VAE", "encode", "vae"]]
    return nodes, links


def prompts_block(edit_text: str, negative: str = NEGATIVE) -> tuple[list[dict], list[list]]:
    nodes = [
        node("inv_text", "CLIPTextEncode", 1, title="Inversion prompt (keep empty)", text=""),
        node("pos", "CLIPTextEncode", 1, title="Edit prompt", text=edit_text),
        node("neg", "CLIPTextEncode", 1, title="Negative prompt" if negative else "Negative prompt (empty, DRIVE)",
             text=negative),
    ]
    links = [["ckpt", "CLIP", "inv_text", "clip"], ["ckpt", "CLIP", "pos", "clip"], ["ckpt", "CLIP", "neg", "clip"]]
    return nodes, links


def save_block(col: int, image_src: list, prefix: str) -> tuple[list[dict], list[list]]:
    nodes = [node("save", "DRIVE_SaveVideo", col, filename_prefix=prefix, format="mp4")]
    links = [[*image_src, "save", "images"], ["load", "fps", "save", "fps"], ["load", "audio", "save", "audio"]]
    return nodes, links


def drive_instance_edit() -> dict:
    src, src_links = source_block(frame_cap=36)
    txt, txt_links = prompts_block(EDIT_PROMPT, negative="")
    nodes = src + txt + [
        node("sam2", "DRIVE_SAM2Loader", 1, model_name=SAM2_FILE),
        node("track", "DRIVE_TrackObject", 1, positive_points=POINTS, negative_points=NEGATIVE_POINTS,
             samurai_mode=True),
        # split masks: the tracked mask (holes filled) for the sampler, which edits every latent cell it touches
        # (area, 0); the same feathered about its edge for composite and harmonize (outside it: the original, exact)
        node("mask_tools", "DRIVE_MaskTools", 2, fill_holes=True),
        node("mask_feather", "DRIVE_MaskTools", 2, title="Mask Tools: feathered edge (composite)",
             feather_px=EDIT_MASK_FEATHER_PX),
        # an output node: plays the mask in itself right after tracking, and can be queued alone
        node("mask_preview", "DRIVE_MaskPreview", 2),
        # bypassed: its image output passes Load Video's frames through, so the graph edits the original
        node("fill", "DRIVE_FillBackground", 2, mode=4, title="Fill Background (shrinking edits)", grow=4,
             keyframe=-1, **FIXED_SEED),
        node("canny", "Canny", 3),
        node("cn_loader", "ControlNetLoader", 3, control_net_name=CANNY_CONTROLNET),
        node("cn_inv", "ControlNetApplyAdvanced", 3, title="ControlNet: inversion", strength=1.0),
        node("cn_edit", "ControlNetApplyAdvanced", 3, title="ControlNet: edit", strength=1.0),
        node("invert", "DRIVE_InvertVideo", 4, steps=50, method="ddim", cfg=1.0, grid_size=1),
        node("edit", "DRIVE_MaskedCFGSampler", 4, steps=50, cfg=7.5, grid_size=3, shuffle=True, mask_mode="area",
             mask_threshold=0.0, **FIXED_SEED),
        node("decode", "VAEDecode", 5),
        node("composite", "DRIVE_CompositeBackground", 5, grow=0, feather=0.0),
        node("harm_loader", "DRIVE_HarmonizerLoader", 5, mode=4, weights="harmonizer.pth"),
        node("harmonize", "DRIVE_Harmonize", 5),
        note("note_mask", 0,
             "1. Masks\nClick the object on Track Object's canvas (Shift+click: not the object; drag: a box; "
             "click a point to delete it): frame frame_index of the clip, stored as pixels of the loaded frames. "
             "See the mask first: select Mask Preview and queue only it (Queue Selected Output Nodes), it plays "
             "the tracked mask in seconds before the long edit. samurai_mode adds SAMURAI's motion model, "
             "good for fast or occluded objects. Put a SAM 2.1 file in models/sam2. No SAM2? Swap Track Object "
             "for Propagate Mask and draw the mask on one frame.\n\nTwo masks: Mask Tools fills holes in the "
             "tracked mask, and the sampler (mask_mode area, threshold 0) edits every 8x8 latent cell the object "
             "touches, so no object pixel is resampled unguided. The second Mask Tools feathers it over "
             f"{EDIT_MASK_FEATHER_PX} px centred on its edge for the composite (the original bit for bit outside "
             "it, blended across the soft edge) and Harmonize. Don't grow the composite's mask: the edit would "
             "bring a band of redrawn background along.",
             height=300),
        note("note_edit", 3,
             "2. Prompts and structure\nThe negative prompt is empty, as in DRIVE: under masked CFG it is only "
             "the uncond branch inside the mask. " + BACKGROUND_NOTE + "\n"
             "Structure: Canny edges of every frame feed a ControlNet applied to the inversion AND the edit "
             f"prompts (strength 1). Put {CANNY_CONTROLNET} (lllyasviel/ControlNet-v1-1 on Hugging Face) in "
             "models/controlnet. Depth instead: drive_instance_edit_depth.json (core MoGe, ComfyUI 0.33+), or the "
             "controlnet_aux pack on any core (docs/guide.md, 'Depth variant').",
             height=300),
        note("note_invert", 4,
             "3. Invert and edit\nInvert Video inverts each frame on its own (grid_size 1, as RAVE and DRIVE "
             "do); the Masked-CFG Sampler then edits on shuffled 3x3 grids (RAVE) with the SAME steps: keep "
             "frame_load_cap a multiple of 9. cfg acts only inside the mask. Lower max_grids_per_call if VRAM "
             "runs out.\nMeasured on the test bed (bench/inversion_grid.py, 4 clips x 16 frames, 50 steps, PSNR "
             "vs the VAE round trip): per frame inverts best (ddim 45.6 dB, easyinv 36.3; grid 2: 45.5 / 36.0; "
             "grid 3: 44.6 / 35.5), but sampled back on shuffled 2x2 grids, a grid-2 inversion keeps more "
             "(30.9 / 30.6 dB vs 27.7 / 28.7 per frame): try Invert Video's grid_size = the sampler's.",
             height=270),
        note("note_out", 6,
             "4. Composite and harmonise\nThe original is pasted back bit for bit outside the feathered mask "
             "(grow 0, feather 0 here: the second Mask Tools feathered it) and blended across its soft edge. "
             "Harmonize: with harmonizer.pth in models/harmonizer (non-commercial licence) enable the loader, and "
             "Harmonizer's six filters (temperature, brightness, contrast, saturation, highlight, shadow) match "
             "the object's tone to the scene frame by frame. Without it the frames pass through unchanged (the "
             "console says so): no weight-free rule tells a colour cast from a correct edit. The source audio is "
             "kept.\n"
             "Edit smaller than the object (a dog into a cat)? Enable Fill Background (Ctrl+B): the object is "
             "removed first, the edit is sampled from the filled clip and composited over it, so the rim the "
             "new object leaves shows clean background."),
    ]
    save, save_links = save_block(6, ["harmonize", "image"], "DRIVE/instance_edit")
    nodes = place(nodes + save, {"encode": 2, "inv_text": 2, "pos": 2, "neg": 2})
    links = src_links + txt_links + save_links + [
        ["sam2", "sam2_model", "track", "sam2_model"], ["load", "images", "track", "images"],
        ["track", "mask", "mask_tools", "mask"],
        ["load", "images", "mask_preview", "images"], ["mask_tools", "mask", "mask_preview", "mask"],
        ["load", "fps", "mask_preview", "fps"],
        ["load", "images", "canny", "image"], ["cn_loader", 0, "cn_inv", "control_net"], ["canny", 0, "cn_inv", "image"],
        ["inv_text", 0, "cn_inv", "positive"], ["inv_text", 0, "cn_inv", "negative"],
        ["cn_loader", 0, "cn_edit", "control_net"], ["canny", 0, "cn_edit", "image"],
        ["pos", 0, "cn_edit", "positive"], ["neg", 0, "cn_edit", "negative"],
        ["ckpt", "MODEL", "invert", "model"], ["cn_inv", 0, "invert", "conditioning"],
        ["encode", 0, "invert", "latent"],
        ["ckpt", "MODEL", "edit", "model"], ["cn_edit", 0, "edit", "positive"], ["cn_edit", 1, "edit", "negative"],
        ["invert", 0, "edit", "latent"], ["mask_tools", "mask", "edit", "mask"],
        ["edit", 0, "decode", "samples"], ["ckpt", "VAE", "decode", "vae"],
        ["decode", 0, "composite", "edited"], ["load", "images", "composite", "original"],
        ["mask_tools", "mask", "mask_feather", "mask"], ["mask_feather", "mask", "composite", "mask"],
        ["composite", "image", "harmonize", "image"], ["mask_feather", "mask", "harmonize", "mask"],
        ["harm_loader", 0, "harmonize", "harmonizer"], ["load", "fps", "harmonize", "fps"],
        ["cn_inv", 0, "edit", "background"],
        ["load", "images", "fill", "images"], ["mask_tools", "mask", "fill", "mask"],
        ["fill", "image", "composite", "background"],
    ]
    links = [["fill", "image", "encode", "pixels"] if link == ["load", "images", "encode", "pixels"] else link
             for link in links]
    groups = [{"title": "Structure (Canny ControlNet)", "nodes": ["canny", "cn_loader", "cn_inv", "cn_edit"]},
              {"title": "Harmonizer (optional)", "nodes": ["harm_loader"]},
              {"title": "Shrinking edits (bypassed)", "nodes": ["fill"]}]
    pictures = [
        {"name": "drive_instance_edit-1-masks", "title": "1. Load the clip, track the object, the edit masks",
         "nodes": ["load", "ckpt", "note_mask", "sam2", "track", "mask_tools", "mask_feather", "mask_preview",
                   "fill"]},
        {"name": "drive_instance_edit-2-prompts", "title": "2. Prompts and the Canny ControlNet",
         "nodes": ["encode", "inv_text", "pos", "neg", "canny", "cn_loader", "cn_inv", "cn_edit", "note_edit"]},
        {"name": "drive_instance_edit-3-edit", "title": "3. Invert, edit, composite, harmonise, save",
         "nodes": ["invert", "edit", "note_invert", "decode", "composite", "harm_loader", "harmonize", "save",
                   "note_out"]},
    ]
    return {"name": "drive_instance_edit", "nodes": nodes, "links": links, "groups": groups, "pictures": pictures}


def drive_instance_edit_depth() -> dict:
    """The main workflow with DRIVE's own structure hint, depth, from core's MoGe (ComfyUI 0.33 and newer)."""
    spec = drive_instance_edit()
    canny = next(n for n in spec["nodes"] if n["id"] == "canny")
    spec["nodes"].remove(canny)
    spec["nodes"] += [
        node("moge_loader", "LoadMoGeModel", 3, model_name=MOGE_FILE),
        node("moge", "MoGeInference", 3, batch_size=4),
        node("depth", "MoGeRender", 3, output="depth"),
    ]
    for n in spec["nodes"]:
        if n["id"] == "cn_loader":
            n["widgets"]["control_net_name"] = DEPTH_CONTROLNET
        elif n["id"] == "note_edit":
            n["widgets"]["text"] = (
                "2. Prompts and structure\nThe negative prompt is empty, as in DRIVE: under masked CFG it is only "
                "the uncond branch inside the mask. " + BACKGROUND_NOTE + "\n"
                "Structure: depth, as DRIVE uses it. Core's MoGe estimates each frame's depth (near is bright) for a "
                f"depth ControlNet on the inversion AND the edit prompts (strength 1). Put {MOGE_FILE} "
                f"(Comfy-Org/MoGe) in models/geometry_estimation and {DEPTH_CONTROLNET} (lllyasviel/ControlNet-v1-1) "
                "in models/controlnet. Depth keeps the shape but not the texture lines: use it for material and "
                "shape edits; Canny (the main workflow) pins every edge, best for recolours.")
    spec["links"] = [link for link in spec["links"] if "canny" not in (link[0], link[2])] + [
        ["load", "images", "moge", "image"], ["moge_loader", 0, "moge", "moge_model"], ["moge", 0, "depth", "moge_geometry"],
        ["depth", 0, "cn_inv", "image"], ["depth", 0, "cn_edit", "image"],
    ]
    for g in spec["groups"]:
        if g["title"].startswith("Structure"):
            g["title"], g["nodes"] = "Structure (MoGe depth ControlNet)", ["moge_loader", "moge", "depth", "cn_loader",
                                                                          "cn_inv", "cn_edit"]
    spec.pop("pictures")
    return {**spec, "name": "drive_instance_edit_depth", "min_core": "0.33.0"}


def wan_vace_finish() -> dict:
    """Wan 2.1 VACE inpaints the tracked object (the official template's wiring); DRIVE puts the source back outside
    it: Align Edited Clip, Composite Background, Harmonize, Save Video with the source audio (ComfyUI 0.33+)."""
    nodes = [
        node("load", "DRIVE_LoadVideo", 0, video=VIDEO, frame_load_cap=33, size_policy="fit_longer_side",
             longer_side=512),
        node("sam2", "DRIVE_SAM2Loader", 0, model_name=SAM2_FILE),
        node("track", "DRIVE_TrackObject", 1, positive_points=POINTS, negative_points=NEGATIVE_POINTS,
             samurai_mode=True),
        node("mask_tools", "DRIVE_MaskTools", 1, title="Mask Tools: finish mask", fill_holes=True,
             feather_px=EDIT_MASK_FEATHER_PX),
        node("vace_mask", "DRIVE_MaskTools", 1, title="Mask Tools: VACE mask (grown)", fill_holes=True, grow_px=16),
        node("invert_mask", "InvertMask", 2),
        node("mask_image", "MaskToImage", 2),
        # each last in its column: frontend 1.58 draws both taller than the one building the workflow
        node("control", "ImageCompositeMasked", 2, title="Control video (object blanked)", x=0, y=0,
             resize_source=True),
        node("unet", "UNETLoader", 3, unet_name=WAN_VACE_FILE, weight_dtype="fp8_e4m3fn_fast"),
        node("lora", "LoraLoaderModelOnly", 3, lora_name=WAN_LORA, strength_model=0.3),
        node("shift", "ModelSamplingSD3", 3, shift=5.0),
        node("te", "CLIPLoader", 3, clip_name=WAN_TEXT_ENCODER, type="wan", device="default"),
        node("vae", "VAELoader", 3, vae_name=WAN_VAE_FILE),
        node("frames", "GetImageSize", 3),
        node("pos", "CLIPTextEncode", 4, title="Prompt (what the masked area becomes)", text=EDIT_PROMPT),
        node("neg", "CLIPTextEncode", 4, title="Negative prompt (Wan's)", text=WAN_NEGATIVE),
        node("vace", "WanVaceToVideo", 4, width=720, height=720, batch_size=1, strength=1.0),
        node("sampler", "KSampler", 5, steps=6, cfg=1.0, sampler_name="uni_pc", scheduler="simple", denoise=1.0,
             **FIXED_SEED),
        node("trim", "TrimVideoLatent", 5),
        node("decode", "VAEDecode", 5),
        node("align", "DRIVE_AlignEditedClip", 6, frame_offset=0, frame_stride=1, resize_policy="crop_centre"),
        node("composite", "DRIVE_CompositeBackground", 6, grow=0, feather=0.0),
        node("harm_loader", "DRIVE_HarmonizerLoader", 7, mode=4, weights="harmonizer.pth"),
        node("harmonize", "DRIVE_Harmonize", 7),
        node("save", "DRIVE_SaveVideo", 7, filename_prefix="DRIVE/wan_vace_finish", format="mp4"),
        note("note_mask", 0,
             "1. Masks\nClick the object on Track Object's canvas (Shift+click: not the object). Two masks come "
             "from it. VACE's (grown 16 px) says what Wan regenerates: the template grows it so the new object "
             "blends in. The finish mask (feathered "
             f"{EDIT_MASK_FEATHER_PX} px about the tracked edge) says where DRIVE keeps Wan's pixels: outside it "
             "the saved video is the source, bit for bit. No SAM2? Swap Track Object for Propagate Mask.",
             height=250),
        note("note_vace", 3,
             "2. Wan 2.1 VACE, as the official inpainting template\nThe control video is the clip with the "
             "masked area blanked; Wan VACE To Video fits it and the mask to width x height (scale to cover, "
             "centre crop: keep your clip's aspect, multiples of 16; 480p or 720p) and makes length frames, "
             "rounded down to 4n+1 (Get Image Size gives the clip's count: keep frame_load_cap at 4n+1, at most "
             "81 per segment). The CausVid LoRA (0.3) with 6 steps at cfg 1 is the template's fast path; without "
             "it use 20 steps, cfg 6. fp8_e4m3fn_fast halves the 14B model's memory on GPUs with fp8. Put the "
             "files in models/diffusion_models, text_encoders, vae and loras (links: node properties, README).",
             height=300),
        note("note_finish", 6,
             "3. DRIVE's finish\nThe template saves VACE's frames as they are: every pixel regenerated, at 720x720 "
             "and 4n+1 frames. Align Edited Clip maps them back onto the source: frame_offset 0 (the segment's "
             "first frame; a later segment: its start), resize_policy crop_centre (undoes Wan VACE To Video's "
             "own fit). Frames past the 4n+1 count keep the source. Composite Background pastes the source back "
             "outside the finish mask (grow 0, feather 0: Mask Tools feathered it). Harmonize matches the "
             "object's tone to the scene with harmonizer.pth (enable its loader); without it frames pass "
             "unchanged. Save Video keeps the source audio.",
             height=300),
    ]
    links = [
        ["sam2", "sam2_model", "track", "sam2_model"], ["load", "images", "track", "images"],
        ["track", "mask", "mask_tools", "mask"], ["track", "mask", "vace_mask", "mask"],
        ["vace_mask", "mask", "invert_mask", "mask"], ["invert_mask", 0, "mask_image", "mask"],
        ["load", "images", "control", "destination"], ["mask_image", 0, "control", "source"],
        ["vace_mask", "mask", "control", "mask"], ["load", "images", "frames", "image"],
        ["unet", 0, "lora", "model"], ["lora", 0, "shift", "model"],
        ["te", 0, "pos", "clip"], ["te", 0, "neg", "clip"],
        ["pos", 0, "vace", "positive"], ["neg", 0, "vace", "negative"], ["vae", 0, "vace", "vae"],
        ["control", 0, "vace", "control_video"], ["vace_mask", "mask", "vace", "control_masks"],
        ["frames", "batch_size", "vace", "length"],
        ["shift", 0, "sampler", "model"], ["vace", "positive", "sampler", "positive"],
        ["vace", "negative", "sampler", "negative"], ["vace", "latent", "sampler", "latent_image"],
        ["sampler", 0, "trim", "samples"], ["vace", "trim_latent", "trim", "trim_amount"],
        ["trim", 0, "decode", "samples"], ["vae", 0, "decode", "vae"],
        ["load", "images", "align", "original"], ["decode", 0, "align", "edited"],
        ["mask_tools", "mask", "align", "mask"],
        ["align", "image", "composite", "edited"], ["load", "images", "composite", "original"],
        ["align", "mask", "composite", "mask"],
        ["composite", "image", "harmonize", "image"], ["align", "mask", "harmonize", "mask"],
        ["harm_loader", 0, "harmonize", "harmonizer"], ["load", "fps", "harmonize", "fps"],
        ["harmonize", "image", "save", "images"], ["load", "fps", "save", "fps"], ["load", "audio", "save", "audio"],
    ]
    groups = [{"title": "Wan 2.1 VACE (official template's nodes)",
               "nodes": ["invert_mask", "mask_image", "control", "frames", "unet", "lora", "shift", "te", "vae", "pos",
                         "neg", "vace", "sampler", "trim", "decode"]},
              {"title": "DRIVE finish", "nodes": ["align", "composite", "harm_loader", "harmonize", "save"]}]
    return {"name": "wan_vace_finish", "nodes": nodes, "links": links, "groups": groups, "min_core": "0.33.0"}


def drive_flow_edit() -> dict:
    """The DRIVE path on a flow-matching image model, FLUX.2 [klein] 4B distilled (ComfyUI 0.33+): the official
    template's loaders, FireFlow inversion, the cfg-1 masked edit on shuffled 2x2 grids, composite, harmonize."""
    nodes = [
        node("load", "DRIVE_LoadVideo", 0, video=VIDEO, frame_load_cap=32, size_policy="fit_longer_side",
             longer_side=512),
        node("sam2", "DRIVE_SAM2Loader", 0, model_name=SAM2_FILE),
        node("track", "DRIVE_TrackObject", 1, positive_points=POINTS, negative_points=NEGATIVE_POINTS,
             samurai_mode=True),
        node("mask_tools", "DRIVE_MaskTools", 1, fill_holes=True),
        node("mask_feather", "DRIVE_MaskTools", 1, title="Mask Tools: feathered edge (composite)",
             feather_px=EDIT_MASK_FEATHER_PX),
        node("mask_preview", "DRIVE_MaskPreview", 1),
        node("unet", "UNETLoader", 2, unet_name=FLUX2_KLEIN_FILE, weight_dtype="default"),
        node("te", "CLIPLoader", 2, clip_name=FLUX2_TEXT_ENCODER, type="flux2", device="default"),
        node("vae", "VAELoader", 2, vae_name=FLUX2_VAE_FILE),
        node("inv_text", "CLIPTextEncode", 3, title="Inversion prompt (keep empty)", text=""),
        node("pos", "CLIPTextEncode", 3, title="Edit prompt", text=EDIT_PROMPT),
        node("encode", "VAEEncode", 3),
        node("invert", "DRIVE_InvertVideo", 4, steps=8, method="fireflow", cfg=1.0, grid_size=2),
        node("edit", "DRIVE_MaskedCFGSampler", 4, steps=8, cfg=1.0, grid_size=2, shuffle=True, mask_mode="area",
             mask_threshold=0.0, **FIXED_SEED),
        node("decode", "VAEDecode", 5),
        node("composite", "DRIVE_CompositeBackground", 5, grow=0, feather=0.0),
        node("harm_loader", "DRIVE_HarmonizerLoader", 6, mode=4, weights="harmonizer.pth"),
        node("harmonize", "DRIVE_Harmonize", 6),
        node("save", "DRIVE_SaveVideo", 6, filename_prefix="DRIVE/flow_edit", format="mp4"),
        note("note_mask", 0,
             "1. Masks\nClick the object on Track Object's canvas (Shift+click: not the object); Mask Preview "
             "plays the tracked mask before the edit (queue it alone). The sampler reads the hole-filled mask with "
             "mask_mode area, threshold 0: it edits every 16x16 latent cell of FLUX.2 the object touches. The "
             f"second Mask Tools feathers it over {EDIT_MASK_FEATHER_PX} px about its edge for Composite and "
             "Harmonize: outside it the saved video is the source, bit for bit. No SAM2? Swap Track Object for "
             "Propagate Mask.", height=250),
        note("note_model", 2,
             "2. FLUX.2 [klein] 4B, the official template's loaders\nThe distilled klein 4B (Apache 2.0, about "
             "8 GB in bf16, with Qwen3-4B as its text encoder) fits a 24 GB GPU with both loaded; its 9B and "
             "FLUX.2 [dev] use the same nodes (other files; non-commercial licences). Put the files in "
             "models/diffusion_models, text_encoders and vae (links: node properties, README). Frames are "
             "512 px on the longer side: a 2x2 grid is klein's native 1024 px.", height=250),
        note("note_invert", 4,
             "3. Invert and edit on a flow model\nInvert Video runs the flow backwards from each frame to noise "
             "with FireFlow (a second-order midpoint solver; on the project's flow test bed it reconstructs 1.4 dB "
             "above Euler, method ddim, at 10 steps; EasyInv's blend costs up to 2.2 dB on flow models: don't use "
             "easyinv here). The sampler must use the same steps; 8 (the template samples in 4) give the inversion "
             "room. cfg 1: klein is guidance-distilled and runs with no negative pass. There the mask gates the "
             "edit itself: outside it the latent follows the source's own trajectory at every step and ends on "
             "the source; inside, the edit prompt alone draws. cfg above 1 (the base klein / FLUX.2 [dev] models) "
             "switches to DRIVE's masked CFG: edit against the negative inside the mask, the inversion prompt "
             "outside, one more model pass per step (cfg_start counts there). Frames are edited on shuffled 2x2 "
             "grids (RAVE): the DiT patchifies each grid and its positions follow it; keep frame_load_cap a "
             "multiple of 4, or set both grid_size to 1 for frame-by-frame.", height=330),
        note("note_out", 5,
             "4. Composite and harmonise\nThe source is pasted back bit for bit outside the feathered mask "
             "(grow 0, feather 0 here: Mask Tools feathered it). Harmonize matches the object's tone to the scene "
             "with harmonizer.pth in models/harmonizer (enable its loader); without it frames pass unchanged. "
             "Save Video keeps the source audio.", height=220),
    ]
    links = [
        ["sam2", "sam2_model", "track", "sam2_model"], ["load", "images", "track", "images"],
        ["track", "mask", "mask_tools", "mask"], ["mask_tools", "mask", "mask_feather", "mask"],
        ["load", "images", "mask_preview", "images"], ["mask_tools", "mask", "mask_preview", "mask"],
        ["load", "fps", "mask_preview", "fps"],
        ["te", 0, "inv_text", "clip"], ["te", 0, "pos", "clip"],
        ["load", "images", "encode", "pixels"], ["vae", 0, "encode", "vae"],
        ["unet", 0, "invert", "model"], ["inv_text", 0, "invert", "conditioning"], ["encode", 0, "invert", "latent"],
        ["unet", 0, "edit", "model"], ["pos", 0, "edit", "positive"], ["inv_text", 0, "edit", "negative"],
        ["invert", 0, "edit", "latent"], ["mask_tools", "mask", "edit", "mask"],
        ["edit", 0, "decode", "samples"], ["vae", 0, "decode", "vae"],
        ["decode", 0, "composite", "edited"], ["load", "images", "composite", "original"],
        ["mask_feather", "mask", "composite", "mask"],
        ["composite", "image", "harmonize", "image"], ["mask_feather", "mask", "harmonize", "mask"],
        ["harm_loader", 0, "harmonize", "harmonizer"], ["load", "fps", "harmonize", "fps"],
        ["harmonize", "image", "save", "images"], ["load", "fps", "save", "fps"], ["load", "audio", "save", "audio"],
    ]
    groups = [{"title": "FLUX.2 [klein] (official template's loaders)", "nodes": ["unet", "te", "vae"]},
              {"title": "Harmonizer (optional)", "nodes": ["harm_loader"]}]
    return {"name": "drive_flow_edit", "nodes": nodes, "links": links, "groups": groups, "min_core": "0.33.0"}


def drive_wan_edit() -> dict:
    """DRIVE's masked edit on Wan 2.1 VACE's native video latent (ComfyUI 0.33+): the source inverted with the
    flow, Wan VACE To Video's conditioning (object blanked, grown mask) into the Masked-CFG Sampler, whose cfg-1
    masked edit keeps the source's trajectory outside the tracked object; composite, harmonize, save with audio."""
    nodes = [
        node("load", "DRIVE_LoadVideo", 0, video=VIDEO, frame_load_cap=33, size_policy="fit_longer_side",
             longer_side=512),
        node("sam2", "DRIVE_SAM2Loader", 0, model_name=SAM2_FILE),
        node("track", "DRIVE_TrackObject", 1, positive_points=POINTS, negative_points=NEGATIVE_POINTS,
             samurai_mode=True),
        node("mask_tools", "DRIVE_MaskTools", 1, fill_holes=True),
        node("mask_feather", "DRIVE_MaskTools", 1, title="Mask Tools: feathered edge (composite)",
             feather_px=EDIT_MASK_FEATHER_PX),
        node("vace_mask", "DRIVE_MaskTools", 1, title="Mask Tools: VACE mask (grown)", grow_px=16),
        node("invert_mask", "InvertMask", 2),
        node("mask_image", "MaskToImage", 2),
        node("control", "ImageCompositeMasked", 2, title="Control video (object blanked)", x=0, y=0,
             resize_source=True),
        node("unet", "UNETLoader", 3, unet_name=WAN_VACE_FILE, weight_dtype="fp8_e4m3fn_fast"),
        node("lora", "LoraLoaderModelOnly", 3, lora_name=WAN_LORA, strength_model=0.3),
        node("shift", "ModelSamplingSD3", 3, shift=5.0),
        node("te", "CLIPLoader", 3, clip_name=WAN_TEXT_ENCODER, type="wan", device="default"),
        node("vae", "VAELoader", 3, vae_name=WAN_VAE_FILE),
        node("frames", "GetImageSize", 3),
        node("inv_text", "CLIPTextEncode", 4, title="Inversion prompt (keep empty)", text=""),
        node("pos", "CLIPTextEncode", 4, title="Edit prompt (what the object becomes)", text=EDIT_PROMPT),
        node("vace", "WanVaceToVideo", 4, width=512, height=512, batch_size=1, strength=1.0),
        node("encode", "VAEEncode", 4),
        node("invert", "DRIVE_InvertVideo", 5, steps=8, method="fireflow", cfg=1.0, grid_size=1),
        node("edit", "DRIVE_MaskedCFGSampler", 5, steps=8, cfg=1.0, grid_size=1, shuffle=False, mask_mode="area",
             mask_threshold=0.0, **FIXED_SEED),
        node("decode", "VAEDecode", 5),
        node("composite", "DRIVE_CompositeBackground", 6, grow=0, feather=0.0),
        node("harm_loader", "DRIVE_HarmonizerLoader", 6, mode=4, weights="harmonizer.pth"),
        node("harmonize", "DRIVE_Harmonize", 6),
        node("save", "DRIVE_SaveVideo", 6, filename_prefix="DRIVE/wan_edit", format="mp4"),
        note("note_mask", 0,
             "1. Masks\nClick the object on Track Object's canvas (Shift+click: not the object). The sampler reads "
             "the hole-filled mask (area, threshold 0): reduced to Wan's latent, each latent frame covers the object "
             "in its 4 video frames, so it edits every cell the object touches. VACE's mask (grown 16 px) says "
             "what Wan VACE may regenerate; the feathered one (" f"{EDIT_MASK_FEATHER_PX}" " px about the edge) "
             "says where Composite keeps Wan's pixels: outside it the saved video is the source, bit for bit. "
             "No SAM2? Swap Track Object for Propagate Mask.", height=270),
        note("note_model", 3,
             "2. Wan 2.1 VACE 14B, the official template's loaders\nSame files as the Wan VACE inpainting "
             "template (links: node properties, README). fp8_e4m3fn_fast halves the 14B model's memory on GPUs "
             "with fp8 (about 17 GB of weights). The CausVid LoRA (0.3) makes it a few-step cfg-1 model. Wan "
             "VACE To Video gets the clip's own width, height and length (Get Image Size): the sampler edits the "
             "source's latent, so sizes must match; frame_load_cap must be 4n+1 (33, 49, 81) and the sides "
             "multiples of 16. No reference_image here: it adds a latent frame the source does not have.",
             height=300),
        note("note_edit", 5,
             "3. Invert and edit the video latent\nInvert Video runs Wan's flow backwards over the whole clip "
             "(one latent, no grids: Wan attends across frames itself) with FireFlow; the sampler uses the same "
             "steps. cfg 1 (CausVid): outside the mask the latent follows the source's own trajectory at every "
             "step and ends on the source; inside, the edit prompt with VACE's control draws. cfg above 1 (no "
             "LoRA, about 20 steps, cfg 5) switches to DRIVE's masked CFG with one more pass per step. Long "
             "clips: put core's Wan Context Windows (Manual) on the model; both nodes follow it.", height=300),
        note("note_out", 6,
             "4. Composite and harmonise\nThe source is pasted back bit for bit outside the feathered mask "
             "(grow 0, feather 0 here). Harmonize matches the object's tone to the scene with harmonizer.pth in "
             "models/harmonizer (enable its loader); without it frames pass unchanged. Save Video keeps the "
             "source audio.", height=220),
    ]
    links = [
        ["sam2", "sam2_model", "track", "sam2_model"], ["load", "images", "track", "images"],
        ["track", "mask", "mask_tools", "mask"], ["mask_tools", "mask", "mask_feather", "mask"],
        ["mask_tools", "mask", "vace_mask", "mask"],
        ["vace_mask", "mask", "invert_mask", "mask"], ["invert_mask", 0, "mask_image", "mask"],
        ["load", "images", "control", "destination"], ["mask_image", 0, "control", "source"],
        ["vace_mask", "mask", "control", "mask"], ["load", "images", "frames", "image"],
        ["unet", 0, "lora", "model"], ["lora", 0, "shift", "model"],
        ["te", 0, "inv_text", "clip"], ["te", 0, "pos", "clip"],
        ["pos", 0, "vace", "positive"], ["inv_text", 0, "vace", "negative"], ["vae", 0, "vace", "vae"],
        ["control", 0, "vace", "control_video"], ["vace_mask", "mask", "vace", "control_masks"],
        ["frames", "width", "vace", "width"], ["frames", "height", "vace", "height"],
        ["frames", "batch_size", "vace", "length"],
        ["load", "images", "encode", "pixels"], ["vae", 0, "encode", "vae"],
        ["shift", 0, "invert", "model"], ["inv_text", 0, "invert", "conditioning"], ["encode", 0, "invert", "latent"],
        ["shift", 0, "edit", "model"], ["vace", "positive", "edit", "positive"],
        ["vace", "negative", "edit", "negative"], ["invert", 0, "edit", "latent"], ["mask_tools", "mask", "edit", "mask"],
        ["edit", 0, "decode", "samples"], ["vae", 0, "decode", "vae"],
        ["decode", 0, "composite", "edited"], ["load", "images", "composite", "original"],
        ["mask_feather", "mask", "composite", "mask"],
        ["composite", "image", "harmonize", "image"], ["mask_feather", "mask", "harmonize", "mask"],
        ["harm_loader", 0, "harmonize", "harmonizer"], ["load", "fps", "harmonize", "fps"],
        ["harmonize", "image", "save", "images"], ["load", "fps", "save", "fps"], ["load", "audio", "save", "audio"],
    ]
    groups = [{"title": "Wan 2.1 VACE (official template's loaders and conditioning)",
               "nodes": ["invert_mask", "mask_image", "control", "unet", "lora", "shift", "te", "vae", "frames",
                         "inv_text", "pos", "vace"]},
              {"title": "Harmonizer (optional)", "nodes": ["harm_loader"]}]
    return {"name": "drive_wan_edit", "nodes": nodes, "links": links, "groups": groups, "min_core": "0.33.0"}


def rave_global_edit() -> dict:
    src, src_links = source_block(frame_cap=36)
    txt, txt_links = prompts_block("a landscape made of origami paper, papercraft")
    nodes = src + txt + [
        node("invert", "DRIVE_InvertVideo", 2, steps=50, method="ddim", cfg=1.0, grid_size=3),
        node("edit", "DRIVE_MaskedCFGSampler", 2, steps=50, cfg=7.5, grid_size=3, shuffle=True, **FIXED_SEED),
        node("decode", "VAEDecode", 3),
        note("note", 0,
             "RAVE global edit: no mask, so the whole frame follows the edit prompt. The grid shuffle "
             "(grid_size 3, shuffle on) keeps the frames consistent: each step tiles 9 frames into one "
             "image and reshuffles them. Use the same steps for inversion and sampling.", height=180),
    ]
    save, save_links = save_block(3, ["decode", 0], "DRIVE/rave_global")
    links = src_links + txt_links + save_links + [
        ["ckpt", "MODEL", "invert", "model"], ["inv_text", 0, "invert", "conditioning"], ["encode", 0, "invert", "latent"],
        ["ckpt", "MODEL", "edit", "model"], ["pos", 0, "edit", "positive"], ["neg", 0, "edit", "negative"],
        ["invert", 0, "edit", "latent"], ["edit", 0, "decode", "samples"], ["ckpt", "VAE", "decode", "vae"],
    ]
    return {"name": "rave_global_edit", "nodes": nodes + save, "links": links}


def inversion_roundtrip() -> dict:
    src, src_links = source_block(frame_cap=16)
    nodes = src + [
        node("inv_text", "CLIPTextEncode", 1, title="Inversion prompt (keep empty)", text=""),
        node("invert", "DRIVE_InvertVideo", 2, steps=50, method="ddim", cfg=1.0, grid_size=1),
        node("reconstruct", "DRIVE_MaskedCFGSampler", 2, title="Reconstruct (same prompt, cfg 1)",
             steps=50, cfg=1.0, grid_size=1, shuffle=False, **FIXED_SEED),
        node("decode", "VAEDecode", 3),
        node("report", "DRIVE_EditReport", 3),
        node("plot", "PreviewImage", 4),
        node("summary", "PreviewAny", 4),
        note("note", 0,
             "Inversion round trip: invert, then sample back with the same (empty) prompt at cfg 1 and no "
             "shuffle. The result should match the input up to the VAE's own loss: a check of a checkpoint "
             "and of the step count. The report's background PSNR measures the match; try method ddim vs "
             "easyinv and more steps.", height=200),
    ]
    save, save_links = save_block(5, ["decode", 0], "DRIVE/inversion_roundtrip")
    links = src_links + save_links + [
        ["ckpt", "CLIP", "inv_text", "clip"],
        ["ckpt", "MODEL", "invert", "model"], ["inv_text", 0, "invert", "conditioning"], ["encode", 0, "invert", "latent"],
        ["ckpt", "MODEL", "reconstruct", "model"], ["inv_text", 0, "reconstruct", "positive"],
        ["inv_text", 0, "reconstruct", "negative"], ["invert", 0, "reconstruct", "latent"],
        ["reconstruct", 0, "decode", "samples"], ["ckpt", "VAE", "decode", "vae"],
        ["load", "images", "report", "original"], ["decode", 0, "report", "edited"],
        ["report", "plot", "plot", "images"], ["report", "summary", "summary", "source"],
    ]
    return {"name": "inversion_roundtrip", "nodes": nodes + save, "links": links}


def mask_only() -> dict:
    nodes = [
        node("load", "DRIVE_LoadVideo", 0, video=VIDEO, frame_load_cap=0, size_policy="fit_longer_side",
             longer_side=512),
        node("sam2", "DRIVE_SAM2Loader", 0, model_name=SAM2_FILE),
        node("track", "DRIVE_TrackObject", 1, positive_points=POINTS, negative_points=NEGATIVE_POINTS,
             samurai_mode=True),
        node("mask_tools", "DRIVE_MaskTools", 2, fill_holes=True, min_island_px=64),
        node("preview", "DRIVE_MaskPreview", 3),
        node("save_preview", "DRIVE_SaveVideo", 4, title="Save overlay", filename_prefix="DRIVE/mask_overlay"),
        node("to_image", "MaskToImage", 3),
        node("save_mask", "DRIVE_SaveVideo", 4, title="Save mask video", filename_prefix="DRIVE/mask",
             format="png"),
        note("note", 0,
             "Track an object and save its mask: the overlay as mp4 to check the tracking, the mask itself "
             "as a PNG sequence (lossless) for other workflows. Points are pixel coordinates on frame "
             "frame_index.", height=160),
    ]
    links = [
        ["sam2", "sam2_model", "track", "sam2_model"], ["load", "images", "track", "images"],
        ["track", "mask", "mask_tools", "mask"],
        ["load", "images", "preview", "images"], ["mask_tools", "mask", "preview", "mask"],
        ["preview", "images", "save_preview", "images"], ["load", "fps", "save_preview", "fps"],
        ["mask_tools", "mask", "to_image", "mask"], ["to_image", 0, "save_mask", "images"],
        ["load", "fps", "save_mask", "fps"],
    ]
    return {"name": "mask_only", "nodes": nodes, "links": links}


def patch_nodes_ksampler() -> dict:
    src, src_links = source_block(frame_cap=16)
    txt, txt_links = prompts_block(EDIT_PROMPT)
    nodes = src + txt + [
        node("propagate", "DRIVE_PropagateMask", 0),
        node("mask_in", "LoadImageMask", 0, image=MASK_IMAGE, channel="red"),
        node("sched", "BasicScheduler", 2, scheduler="ddim_uniform", steps=25),
        node("flip", "FlipSigmas", 2),
        node("easyinv", "DRIVE_EasyInvSampler", 2),
        node("no_noise", "DisableNoise", 2),
        node("inv_guider", "CFGGuider", 2, cfg=1.0),
        node("invert", "SamplerCustomAdvanced", 3, title="Invert (EasyInv on flipped sigmas)"),
        node("grid", "DRIVE_RAVEGridPatch", 3, grid_size=2, shuffle=True, **FIXED_SEED),
        node("masked_cfg", "DRIVE_MaskedCFGPatch", 3),
        node("ksampler", "KSamplerAdvanced", 4, add_noise="disable", steps=25, cfg=7.5, sampler_name="ddim",
             scheduler="ddim_uniform", noise_seed=0, control_after_generate="fixed"),
        node("decode", "VAEDecode", 5),
        note("note", 0,
             "The same mechanics as composable patches for core samplers. Inversion: EasyInv Sampler (DRIVE) on "
             "flipped ddim_uniform sigmas, no noise, cfg 1. Editing: RAVE Grid Patch and Masked-CFG Patch on "
             "the MODEL, then core KSampler (Advanced) with ddim / ddim_uniform, add_noise disabled and the "
             "SAME steps (a divisor of 1000: ddim_uniform runs one extra step otherwise). Masked-CFG Patch's "
             "background gets the inversion prompt, so the area outside the mask is sampled back with it. "
             "Here the mask comes from one drawn frame (the demo clip's mask, shipped in the "
             "pack's workflows/inputs; it must be the frames' size) carried through the clip by optical flow: "
             "no SAM2 needed.", width=420, height=240),
    ]
    save, save_links = save_block(5, ["decode", 0], "DRIVE/patch_ksampler")
    links = src_links + txt_links + save_links + [
        ["load", "images", "propagate", "images"], ["mask_in", 0, "propagate", "mask"],
        ["ckpt", "MODEL", "sched", "model"], ["sched", 0, "flip", "sigmas"],
        ["ckpt", "MODEL", "inv_guider", "model"], ["inv_text", 0, "inv_guider", "positive"],
        ["inv_text", 0, "inv_guider", "negative"],
        ["no_noise", 0, "invert", "noise"], ["inv_guider", 0, "invert", "guider"], ["easyinv", 0, "invert", "sampler"],
        ["flip", 0, "invert", "sigmas"], ["encode", 0, "invert", "latent_image"],
        ["ckpt", "MODEL", "grid", "model"], ["grid", 0, "masked_cfg", "model"], ["propagate", "mask", "masked_cfg", "mask"],
        ["inv_text", 0, "masked_cfg", "background"],
        ["masked_cfg", 0, "ksampler", "model"], ["pos", 0, "ksampler", "positive"], ["neg", 0, "ksampler", "negative"],
        ["invert", 0, "ksampler", "latent_image"], ["ksampler", 0, "decode", "samples"], ["ckpt", "VAE", "decode", "vae"],
    ]
    nodes = place(nodes + save, {"propagate": 1, "mask_in": 1, "encode": 1, "inv_text": 1, "pos": 1, "neg": 1})
    return {"name": "patch_nodes_ksampler", "nodes": nodes, "links": links}


def tune_a_video_edit() -> dict:
    src, src_links = source_block(frame_cap=24)
    txt, txt_links = prompts_block("an orange cube rolling over a grassy field, highly detailed")
    nodes = src + txt + [
        node("caption", "CLIPTextEncode", 1, title="Caption (what the clip shows)",
             text="an orange ball rolling over a grassy field"),
        node("tune", "DRIVE_TuneAVideo", 2, control_after_generate="fixed"),
        node("save_tuned", "DRIVE_SaveTunedVideoModel", 3, filename_prefix="tune_a_video/wolf"),
        node("loss", "PreviewImage", 3, title="Loss curve"),
        node("summary", "PreviewAny", 3, title="Tuning numbers"),
        node("invert", "DRIVE_InvertVideo", 3, steps=50, method="ddim", cfg=1.0, grid_size=1),
        node("edit", "DRIVE_MaskedCFGSampler", 4, steps=50, cfg=12.5, cfg_start=-1.0, grid_size=1, shuffle=False,
             **FIXED_SEED),
        node("decode", "VAEDecode", 4),
        note("note", 0,
             "Tune-A-Video: the MODEL is first tuned on this clip with its caption (temporal attention layers "
             "plus the attn1/attn2 to_q projections, 500 steps, about 10-15 min for 24 frames at 512x512 on an "
             "A100; lower frames_per_step or keep gradient_checkpointing on if memory runs out). Then the clip is "
             "inverted (DDIM, empty prompt, cfg 1) and sampled with the edit prompt (cfg 12.5) by the TUNED "
             "model, which keeps the motion for shape edits. The temporal layers need the frames in order: "
             "grid_size 1 and shuffle off. Save Tuned Video Model keeps the weights (models/drive_tuned) for "
             "Load Tuned Video Model; the source audio is kept.", width=440, height=300),
    ]
    save, save_links = save_block(5, ["decode", 0], "DRIVE/tune_a_video")
    nodes = place(nodes + save, {"inv_text": 1, "pos": 1, "neg": 1})
    links = src_links + txt_links + save_links + [
        ["ckpt", "CLIP", "caption", "clip"],
        ["ckpt", "MODEL", "tune", "model"], ["encode", 0, "tune", "latent"], ["caption", 0, "tune", "conditioning"],
        ["tune", "model", "save_tuned", "model"], ["tune", "loss_curve", "loss", "images"],
        ["tune", "summary", "summary", "source"],
        ["tune", "model", "invert", "model"], ["inv_text", 0, "invert", "conditioning"],
        ["encode", 0, "invert", "latent"],
        ["tune", "model", "edit", "model"], ["pos", 0, "edit", "positive"], ["neg", 0, "edit", "negative"],
        ["invert", 0, "edit", "latent"], ["edit", 0, "decode", "samples"], ["ckpt", "VAE", "decode", "vae"],
    ]
    return {"name": "tune_a_video_edit", "nodes": nodes, "links": links}


def remove_object() -> dict:
    nodes = [
        node("load", "DRIVE_LoadVideo", 0, video=VIDEO, frame_load_cap=0, size_policy="fit_longer_side",
             longer_side=512),
        node("sam2", "DRIVE_SAM2Loader", 0, model_name=SAM2_FILE),
        node("track", "DRIVE_TrackObject", 1, positive_points=POINTS, negative_points=NEGATIVE_POINTS,
             samurai_mode=True),
        node("mask_tools", "DRIVE_MaskTools", 1, fill_holes=True, min_island_px=64, grow_px=4),
        node("ckpt", "CheckpointLoaderSimple", 2, mode=4, ckpt_name=CHECKPOINT),
        node("bg_text", "CLIPTextEncode", 2, mode=4, title="Background prompt",
             text="an empty grassy field, a grey stone, natural light"),
        node("neg_text", "CLIPTextEncode", 2, mode=4, title="Negative prompt", text="ball, " + NEGATIVE),
        node("fill", "DRIVE_FillBackground", 3, grow=4, keyframe=-1, gap_after=260, **FIXED_SEED),  # 1.58: 562 px
        node("save", "DRIVE_SaveVideo", 4, filename_prefix="DRIVE/object_removed", format="mp4"),
        node("preview", "DRIVE_MaskPreview", 4, title="Invented area"),
        node("save_preview", "DRIVE_SaveVideo", 4, title="Save invented-area overlay",
             filename_prefix="DRIVE/object_removed_unseen", format="mp4"),
        note("note_track", 0,
             "1. Mask the object\nClick it: positive_points / negative_points are pixel coordinates on frame "
             "frame_index. Mask Tools grows the mask a little so the object's soft edge and shadow go too; "
             "grow more for motion blur. No SAM2? Swap Track Object for Propagate Mask.", height=180),
        note("note_fill", 3,
             "2. Fill the background\nWhat other frames show is carried into the hole along the background's "
             "motion, both ways. What no frame ever shows (the overlay's red area) is invented once, on the "
             "keyframe, and carried along, so it stays put as the camera moves. Without a model that is OpenCV "
             "inpainting (smooth, fine for small areas). For large unseen areas enable the diffusion group "
             "(Ctrl+B): describe the background, not the object; denoise 1 for inpainting checkpoints.",
             height=260),
    ]
    links = [
        ["sam2", "sam2_model", "track", "sam2_model"], ["load", "images", "track", "images"],
        ["track", "mask", "mask_tools", "mask"],
        ["load", "images", "fill", "images"], ["mask_tools", "mask", "fill", "mask"],
        ["ckpt", "MODEL", "fill", "model"], ["bg_text", 0, "fill", "positive"], ["neg_text", 0, "fill", "negative"],
        ["ckpt", "VAE", "fill", "vae"], ["ckpt", "CLIP", "bg_text", "clip"], ["ckpt", "CLIP", "neg_text", "clip"],
        ["fill", "image", "save", "images"], ["load", "fps", "save", "fps"], ["load", "audio", "save", "audio"],
        ["fill", "image", "preview", "images"], ["fill", "unrecovered", "preview", "mask"],
        ["preview", "images", "save_preview", "images"], ["load", "fps", "save_preview", "fps"],
    ]
    groups = [{"title": "Diffusion keyframe fill (optional, bypassed)", "nodes": ["ckpt", "bg_text", "neg_text"]}]
    return {"name": "remove_object", "nodes": nodes, "links": links, "groups": groups}


SPECS = [drive_instance_edit, drive_instance_edit_depth, rave_global_edit, inversion_roundtrip, mask_only,
         patch_nodes_ksampler, tune_a_video_edit, remove_object, wan_vace_finish, drive_flow_edit, drive_wan_edit]
SNAPSHOT_CORE = "0.3.64"
"""The core whose /object_info the snapshot holds; node types only newer cores have come from the core they were
built on (a spec's ``min_core``, stored in the UI file as ``extra.drive_min_comfyui``)."""


def with_model_metadata(spec: dict) -> dict:
    """Give every node that names a file of MODEL_FILES its ``models`` entry (properties.models)."""
    for n in spec["nodes"]:
        named = [v for v in n["widgets"].values() if isinstance(v, str) and v in MODEL_FILES]
        if named:
            n["models"] = [{"name": v, "url": MODEL_FILES[v][1], "directory": MODEL_FILES[v][0]} for v in named]
    return spec


def png_with_workflow(png: bytes, workflow: dict, prompt: dict) -> bytes:
    """The PNG with tEXt chunks ``workflow`` and ``prompt`` after IHDR, as ComfyUI's SaveImage writes them."""
    def chunk(key: str, data: dict) -> bytes:
        body = key.encode("latin-1") + b"\0" + json.dumps(data).encode("latin-1")
        return struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))

    cut = 8 + 25  # signature + IHDR
    return png[:cut] + chunk("workflow", workflow) + chunk("prompt", prompt) + png[cut:]


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def types_for(core: str) -> set[str]:
    """Node types of the shipped workflows that ``core`` runs (those without a newer ``drive_min_comfyui``)."""
    types = set()
    for path in UI_DIR.glob("*.json"):
        ui = json.loads(path.read_text())
        if version_tuple(ui.get("extra", {}).get("drive_min_comfyui", "0")) <= version_tuple(core):
            types |= {n["type"] for n in ui["nodes"]}
    return types


def server_core(url: str) -> str:
    """The ComfyUI version the build server runs (/system_stats)."""
    with urllib.request.urlopen(f"{url}/system_stats", timeout=60) as resp:
        return json.loads(resp.read())["system"]["comfyui_version"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8188")
    ap.add_argument("--only", nargs="*", help="names of the workflows to rebuild (default: all)")
    args = ap.parse_args()
    core = server_core(args.url)
    specs = [with_model_metadata(s()) for s in SPECS if not args.only or s.__name__ in args.only]
    too_new = {s["name"]: s["min_core"] for s in specs if version_tuple(s.get("min_core", "0")) > version_tuple(core)}
    for name, needs in too_new.items():
        if args.only:
            raise SystemExit(f"{name} needs ComfyUI {needs} or newer; {args.url} runs {core}")
        print(f"skipped {name}: it needs ComfyUI {needs} (build it with --only {name} there)", file=sys.stderr)
    specs = [s for s in specs if s["name"] not in too_new]
    with tempfile.TemporaryDirectory() as tmp:
        spec_file, out = Path(tmp) / "specs.json", Path(tmp) / "out"
        spec_file.write_text(json.dumps(specs))
        subprocess.run(["node", str(ROOT / "tools" / "frontend.js"), "build", args.url + "/", str(spec_file),
                        str(out)], check=True, env=dict(os.environ))
        UI_DIR.mkdir(exist_ok=True)
        API_DIR.mkdir(parents=True, exist_ok=True)
        PICTURE_DIR.mkdir(exist_ok=True)
        for spec in specs:
            ui_text, api_text = (out / f"{spec['name']}.json").read_text(), (out / f"{spec['name']}.api.json").read_text()
            if "min_core" in spec:
                ui = json.loads(ui_text)
                ui["extra"]["drive_min_comfyui"] = spec["min_core"]
                ui_text = json.dumps(ui, indent=2, ensure_ascii=False) + "\n"
            (UI_DIR / f"{spec['name']}.json").write_text(ui_text)
            (API_DIR / f"{spec['name']}.api.json").write_text(api_text)
            (UI_DIR / f"{spec['name']}.jpg").write_bytes((out / f"{spec['name']}.jpg").read_bytes())
            for pic in spec.get("pictures", []):
                png = (out / f"{pic['name']}.png").read_bytes()
                (PICTURE_DIR / f"{pic['name']}.png").write_bytes(
                    png_with_workflow(png, json.loads(ui_text), json.loads(api_text)))
    used = sorted({n["type"] for p in UI_DIR.glob("*.json") for n in json.loads(p.read_text())["nodes"]} - {"Note"})
    with urllib.request.urlopen(f"{args.url}/object_info", timeout=120) as resp:
        info = json.loads(resp.read())
    snapshot_path = API_DIR / "object_info.json"
    snapshot = json.loads(snapshot_path.read_text()) if snapshot_path.is_file() else {}
    fresh = {t: info[t] for t in used if t in info and (core == SNAPSHOT_CORE and t in types_for(core) or
                                                         t not in snapshot)}
    merged = {t: fresh.get(t, snapshot.get(t)) for t in used}
    missing = [t for t, v in merged.items() if v is None]
    if missing:
        raise SystemExit(f"no /object_info for {missing}: build the workflows using them on a core that has them")
    snapshot_path.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
    print(f"built {len(specs)} workflows; object_info for {len(used)} node types", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
