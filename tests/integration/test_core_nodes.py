"""Core nodes a DRIVE user meets on a 2026 core (0.33.0), wired into the pack's nodes through the API.

Core video in and out (LoadVideo / GetVideoComponents / CreateVideo / SaveVideo), the Painter
brush mask as Track Object's prompt and as the mask of Propagate Mask, Mask Tools, the
Masked-CFG Sampler, Composite Background and Harmonize, and core ColorTransfer after
Composite. SAM3's masks (SAM3_VideoTrack -> SAM3_TrackToMask) are a MASK ``[T,H,W]`` like
Propagate Mask's here: a random-weight SAM3 (about 840 M parameters at 1008 px) is not built
on the CPU test machines, so its MASK path is covered by a mask of the same type and shape.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from random_weights import write_random_sam2

pytestmark = [pytest.mark.integration, pytest.mark.min_core("0.33.0")]

FRAMES, SIZE, FPS = 6, 64, 8
BOX = (slice(20, 44), slice(16, 40))
CLIP, BRUSH, SAM2 = "core_clip.mp4", "core_brush.png", "core_sam2.pt"


def _write_clip_with_audio(path) -> None:
    """A lossless 64 px clip (a yellow box moving right on a gradient) with a 440 Hz stereo track."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width = video.height = SIZE
        video.pix_fmt, video.options = "yuv444p", {"qp": "0"}
        audio = out.add_stream("aac", rate=16000, layout="stereo")
        for t in range(FRAMES):
            frame = np.stack([(xx * 4) % 256, (yy * 4) % 256, np.full_like(xx, 80)], -1).astype(np.uint8)
            frame[BOX[0], BOX[1].start + t:BOX[1].stop + t] = (230, 200, 40)
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(video.encode())
        samples = np.sin(2 * np.pi * 440 * np.arange(16000 * FRAMES // FPS) / 16000).astype(np.float32)
        chunk = audio.frame_size or 1024
        for start in range(0, len(samples), chunk):
            part = np.stack([samples[start:start + chunk]] * 2)
            frame = av.AudioFrame.from_ndarray(part, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
            out.mux(audio.encode(frame))
        out.mux(audio.encode())


@pytest.fixture(scope="module")
def files(comfy):
    _write_clip_with_audio(comfy.input_dir / CLIP)
    brush = np.zeros((SIZE, SIZE, 4), np.uint8)
    brush[BOX[0], BOX[1]] = (255, 0, 0, 255)           # Painter's mask is the painting's alpha
    Image.fromarray(brush, "RGBA").save(comfy.input_dir / BRUSH)
    write_random_sam2(comfy.models_dir / "sam2" / SAM2)


def _graph() -> dict:
    def node(kind, **inputs):
        return {"class_type": kind, "inputs": inputs}

    frames, audio, fps = ["parts", 0], ["parts", 1], ["parts", 2]
    return {
        "load": node("LoadVideo", file=CLIP),
        "parts": node("GetVideoComponents", video=["load", 0]),
        "brush": node("Painter", image=frames, mask=BRUSH, width=SIZE, height=SIZE, bg_color="#000000"),
        "sam2": node("DRIVE_SAM2Loader", model_name=SAM2, precision="fp32", image_size=256),
        "track": node("DRIVE_TrackObject", sam2_model=["sam2", 0], images=frames, frame_index=0,
                      individual_objects=False, output_mode="merged", samurai_mode=False, stable_frames_threshold=15,
                      stable_ious_threshold=0.3, kf_score_weight=0.25, min_obj_score_logits=-1,
                      memory_bank_iou_threshold=0.5, memory_bank_obj_score_threshold=0,
                      memory_bank_kf_score_threshold=0, offload_video_to_cpu=True, offload_state_to_cpu=False,
                      mask=["brush", 1]),
        "tracked": node("DRIVE_SaveVideo", images=["track_view", 0], fps=fps, filename_prefix="core/tracked",
                        format="png", crf=19),
        "track_view": node("DRIVE_MaskPreview", images=frames, mask=["track", 0], color="red", opacity=0.5,
                           outline_px=1),
        "propagated": node("DRIVE_PropagateMask", images=frames, mask=["brush", 1], frame_index=0,
                           flow_quality="fast", occlusion_check=False, threshold=0.5),
        "mask": node("DRIVE_MaskTools", mask=["propagated", 0], threshold=0.5, fill_holes=True, min_island_px=0,
                     temporal_radius=0, grow_px=2, feather_px=0, invert=False),
        "ckpt": node("CheckpointLoaderSimple", ckpt_name="sd15_random_fp16.safetensors"),
        "empty": node("CLIPTextEncode", text="", clip=["ckpt", 1]),
        "prompt": node("CLIPTextEncode", text="a red box", clip=["ckpt", 1]),
        "latent": node("VAEEncode", pixels=frames, vae=["ckpt", 2]),
        "invert": node("DRIVE_InvertVideo", model=["ckpt", 0], conditioning=["empty", 0], latent=["latent", 0],
                       steps=2, method="ddim", eta=0.5, window_start=0.05, window_length=0.2, blend="after", cfg=1.0,
                       grid_size=1, max_grids_per_call=0),
        "sample": node("DRIVE_MaskedCFGSampler", model=["ckpt", 0], positive=["prompt", 0], negative=["empty", 0],
                       latent=["invert", 0], steps=2, cfg=7.5, cfg_start=0.0, grid_size=2, shuffle=True, seed=3,
                       max_grids_per_call=0, mask_mode="nearest", mask_threshold=0.5, mask=["brush", 1]),
        "decoded": node("VAEDecode", samples=["sample", 0], vae=["ckpt", 2]),
        "comp": node("DRIVE_CompositeBackground", edited=["decoded", 0], original=frames, mask=["mask", 0], grow=0,
                     feather=0.0, blend="alpha"),
        "harm": node("DRIVE_Harmonize", image=["comp", 0], mask=["mask", 0], strength=1.0, temporal_smoothing=0.9,
                     fps=fps, frames_per_batch=8),
        "transfer": node("ColorTransfer", image_target=["comp", 0], image_ref=frames, method="reinhard_lab",
                         source_stats="per_frame", strength=1.0),
        "comp_png": node("DRIVE_SaveVideo", images=["comp", 0], fps=fps, filename_prefix="core/comp", format="png",
                         crf=19),
        "source_png": node("DRIVE_SaveVideo", images=frames, fps=fps, filename_prefix="core/source", format="png",
                           crf=19),
        "mask_png": node("DRIVE_SaveVideo", images=["mask_view", 0], fps=fps, filename_prefix="core/mask",
                         format="png", crf=19),
        "mask_view": node("MaskToImage", mask=["mask", 0]),
        "transfer_mp4": node("DRIVE_SaveVideo", images=["transfer", 0], fps=fps, filename_prefix="core/transfer",
                             format="mp4", crf=19, audio=audio),
        "video": node("CreateVideo", images=["harm", 0], fps=FPS, audio=audio),
        "save": node("SaveVideo", video=["video", 0], filename_prefix="core/video", format="mp4",
                     **{"format.codec": "auto"}),
    }


def _frames(folder) -> np.ndarray:
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in sorted(folder.glob("frame_*.png"))])


def _saved(comfy, entry: dict, node_id: str):
    ui = entry["outputs"][node_id]
    item = next(iter(v for k, v in ui.items() if isinstance(v, list) and v and isinstance(v[0], dict)))[0]
    return comfy.output_dir / item.get("subfolder", "") / item["filename"]


def test_core_video_painter_and_color_transfer_with_the_pack(comfy, files):
    entry = comfy.run_ok(_graph(), timeout=1200)
    source = _frames(_saved(comfy, entry, "source_png").parent)      # as core's LoadVideo decoded it
    comp = _frames(_saved(comfy, entry, "comp_png").parent)
    mask = _frames(_saved(comfy, entry, "mask_png").parent)[..., 0] > 0
    assert comp.shape == source.shape == (FRAMES, SIZE, SIZE, 3)
    assert mask[:, BOX[0], BOX[1]].mean() > 0.5 and mask.mean() < 0.5, "the brush mask did not follow the box"
    assert np.array_equal(comp[~mask], source[~mask]), "Composite changed pixels outside the painted mask"
    assert len(list(_saved(comfy, entry, "tracked").parent.glob("frame_*.png"))) == FRAMES
    for node_id in ("transfer_mp4", "save"):
        with av.open(str(_saved(comfy, entry, node_id))) as container:
            assert container.streams.video[0].frames in (0, FRAMES) and container.streams.audio, node_id
            assert sum(1 for _ in container.decode(video=0)) == FRAMES, node_id

