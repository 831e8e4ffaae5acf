"""DRIVE's finish on another model's output, inside a real ComfyUI: Align Edited Clip -> Composite Background ->
Harmonize -> Save Video.

The foreign output is simulated with core nodes, as a Wan VACE template hands it over: a 79-frame 9:16
clip (72x128, with audio) whose frames 2..78 were fitted to 720x720 with core Upscale Image (crop
center), padded to an 81-frame (4n+1) segment and tinted (the model's colour shift). Aligned and
composited, every saved pixel outside the grown mask, and every pixel of the two frames the edit does
not cover, is the source's, bit for bit; the audio is muxed into the mp4. Edit Report measures the
background before the composite (the foreign output, aligned) and after it.
"""

from __future__ import annotations

import os

import av
import numpy as np
import pytest
from PIL import Image

from comfy_client import execution_error
from drive_ops.composite.align import RESIZE_POLICIES

pytestmark = pytest.mark.integration

W, H, T, FPS, RATE = 72, 128, 79, 16, 16000
OFFSET, SEGMENT, SIDE = 2, 81, 720
BOX = (20, 40, 28, 36)             # x, y, w, h of the object on the source
GROW = 2
TINT_RGB = (235, 255, 255)        # multiplies red by 0.92


def make_source(path) -> None:
    """A smooth 9:16 clip with a moving bright disc (h264 yuv444p) and an aac sine track."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv444p"
        audio = container.add_stream("aac", rate=RATE)
        audio.layout = "mono"
        for i in range(T):
            disc = np.exp(-((ys - 40 - i) ** 2 + (xs - 20 - i / 3) ** 2) / 60.0)
            rgb = np.stack([0.3 + 0.4 * ys / H + 0.3 * disc, 0.2 + 0.5 * xs / W, 0.6 - 0.3 * ys / H + 0.2 * disc], -1)
            frame = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        container.mux(video.encode(None))
        wave = (np.sin(np.arange(RATE * T // FPS, dtype=np.float32) / 10) * 0.3)[None]
        chunk = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = RATE, 0
        container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))


def _rgb(rgb: tuple[int, int, int]) -> int:
    return (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]


def foreign_graph() -> dict:
    """Load Video -> the simulated VACE segment, and the object's mask on the source."""
    x, y, w, h = BOX
    return {
        "load": {"class_type": "DRIVE_LoadVideo",
                 "inputs": {"video": "source.mp4", "frame_load_cap": 0, "skip_first_frames": 0,
                            "select_every_nth": 1, "size_policy": "keep", "longer_side": 512}},
        "window": {"class_type": "ImageFromBatch", "inputs": {"image": ["load", 0], "batch_index": OFFSET,
                                                               "length": T - OFFSET}},
        "fit": {"class_type": "ImageScale", "inputs": {"image": ["window", 0], "upscale_method": "bilinear",
                                                        "width": SIDE, "height": SIDE, "crop": "center"}},
        "tail": {"class_type": "EmptyImage", "inputs": {"width": SIDE, "height": SIDE,
                                                         "batch_size": SEGMENT - (T - OFFSET), "color": 0}},
        "segment": {"class_type": "ImageBatch", "inputs": {"image1": ["fit", 0], "image2": ["tail", 0]}},
        "tint_colour": {"class_type": "EmptyImage", "inputs": {"width": SIDE, "height": SIDE, "batch_size": 1,
                                                                "color": _rgb(TINT_RGB)}},
        "vace": {"class_type": "ImageBlend", "inputs": {"image1": ["segment", 0], "image2": ["tint_colour", 0],
                                                         "blend_factor": 1.0, "blend_mode": "multiply"}},
        "empty": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": W, "height": H}},
        "box": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": w, "height": h}},
        "mask": {"class_type": "MaskComposite", "inputs": {"destination": ["empty", 0], "source": ["box", 0],
                                                           "x": x, "y": y, "operation": "add"}},
    }


def report(original: list, edited: list, mask: list) -> dict:
    return {"class_type": "DRIVE_EditReport", "inputs": {"original": original, "edited": edited, "mask": mask,
                                                         "dilation_px": GROW + 1, "flow_preset": "ultrafast",
                                                         "prompt": ""}}


def finish_graph() -> dict:
    graph = foreign_graph()
    graph.update({
        "align": {"class_type": "DRIVE_AlignEditedClip",
                  "inputs": {"original": ["load", 0], "edited": ["vace", 0], "frame_offset": OFFSET,
                             "frame_stride": 1, "resize_policy": "crop_centre", "mask": ["mask", 0]}},
        "comp": {"class_type": "DRIVE_CompositeBackground",
                 "inputs": {"edited": ["align", 0], "original": ["load", 0], "mask": ["align", 1], "grow": GROW,
                            "feather": 1.5, "blend": "alpha"}},
        "harm": {"class_type": "DRIVE_Harmonize",
                 "inputs": {"image": ["comp", 0], "mask": ["align", 1], "strength": 1.0,
                            "temporal_smoothing": 0.96, "fps": ["load", 2], "frames_per_batch": 16}},
        "save_png": {"class_type": "DRIVE_SaveVideo",
                     "inputs": {"images": ["harm", 0], "fps": ["load", 2], "filename_prefix": "DRIVE/align_out",
                                "format": "png", "crf": 19}},
        "save_comp": {"class_type": "DRIVE_SaveVideo",
                      "inputs": {"images": ["comp", 0], "fps": ["load", 2], "filename_prefix": "DRIVE/align_comp",
                                 "format": "png", "crf": 19}},
        "save_source": {"class_type": "DRIVE_SaveVideo",
                        "inputs": {"images": ["load", 0], "fps": ["load", 2], "filename_prefix": "DRIVE/align_src",
                                   "format": "png", "crf": 19}},
        "save_mp4": {"class_type": "DRIVE_SaveVideo",
                     "inputs": {"images": ["harm", 0], "fps": ["load", 2], "audio": ["load", 1],
                                "filename_prefix": "DRIVE/align_mp4", "format": "mp4", "crf": 18}},
        # the foreign output's background, aligned, on the frames it covers (Edit Report's mean would be
        # inf with the two frames it leaves as the source)
        "src_covered": {"class_type": "ImageFromBatch", "inputs": {"image": ["load", 0], "batch_index": OFFSET,
                                                                    "length": T - OFFSET}},
        "align_covered": {"class_type": "ImageFromBatch", "inputs": {"image": ["align", 0], "batch_index": OFFSET,
                                                                      "length": T - OFFSET}},
        "before": report(["src_covered", 0], ["align_covered", 0], ["mask", 0]),
        "after": report(["load", 0], ["harm", 0], ["align", 1]),
        "psnr_before": {"class_type": "PreviewAny", "inputs": {"source": ["before", 2]}},
        "psnr_after": {"class_type": "PreviewAny", "inputs": {"source": ["after", 2]}},
    })
    return graph


def _png_frames(comfy, saved: dict) -> list[np.ndarray]:
    folder = comfy.output_dir / saved["subfolder"]
    return [np.asarray(Image.open(folder / name).convert("RGB")) for name in sorted(os.listdir(folder))]


@pytest.fixture(scope="module")
def source(comfy):
    make_source(comfy.input_dir / "source.mp4")
    return "source.mp4"


def test_node_is_registered(comfy):
    info = comfy.object_info()["DRIVE_AlignEditedClip"]
    assert info["output"] == ["IMAGE", "MASK", "MASK"]
    assert info["input"]["required"]["resize_policy"][1]["options"] == ["stretch", "crop_centre", "pad"]
    assert info["category"] == "DRIVE/composite"


def test_foreign_output_aligned_composited_and_saved_with_audio(comfy, source):
    outputs = comfy.run_ok(finish_graph(), timeout=900)["outputs"]
    out = _png_frames(comfy, outputs["save_png"]["images"][0])
    comp = _png_frames(comfy, outputs["save_comp"]["images"][0])
    src = _png_frames(comfy, outputs["save_source"]["images"][0])
    assert len(out) == len(comp) == len(src) == T and out[0].shape == (H, W, 3)
    x, y, w, h = BOX
    outside = np.ones((H, W), bool)
    outside[y - GROW:y + h + GROW, x - GROW:x + w + GROW] = False
    for i in range(T):
        assert np.array_equal(out[i][outside], src[i][outside]), f"frame {i}: the background changed"
    for i in range(OFFSET):
        assert np.array_equal(out[i], src[i]), f"frame {i} is not covered by the edit and must be the source"
    inner = (slice(y + 4, y + h - 4), slice(x + 4, x + w - 4))
    for i in range(OFFSET, T):   # the composite's object: the source's, tinted, in place (before Harmonize)
        expected = np.clip(src[i][inner].astype(float) * np.array(TINT_RGB) / 255, 0, 255)
        error = np.abs(comp[i][inner].astype(float) - expected)
        assert error.mean() < 2 and (out[i][inner] != src[i][inner]).any(), f"frame {i}: {error.mean():.2f}"
    psnr_before = float(outputs["psnr_before"]["text"][0])
    psnr_after = float(outputs["psnr_after"]["text"][0])
    print(f"background PSNR: foreign output aligned {psnr_before:.2f} dB, after Composite + Harmonize {psnr_after}")
    assert psnr_before < 40 and psnr_after == float("inf")
    saved = outputs["save_mp4"]["images"][0]
    with av.open(str(comfy.output_dir / saved["subfolder"] / saved["filename"])) as c:
        video = c.streams.video[0]
        assert sum(1 for _ in c.decode(video)) == T and (video.width, video.height) == (W, H)
        assert c.streams.audio, "the source audio was not muxed"
        audio = c.streams.audio[0]
        seconds = float(audio.duration * audio.time_base)
        assert seconds == pytest.approx(T / FPS, abs=0.1), seconds


FIT_NODES = {   # how a template fits the clip to the model's size, with core's own nodes
    "stretch": {"class_type": "ImageScale", "inputs": {"upscale_method": "bilinear", "width": SIDE, "height": SIDE,
                                                       "crop": "disabled"}},
    "crop_centre": {"class_type": "ImageScale", "inputs": {"upscale_method": "bilinear", "width": SIDE,
                                                           "height": SIDE, "crop": "center"}},
    "pad": {"class_type": "ResizeAndPadImage", "inputs": {"target_width": SIDE, "target_height": SIDE,
                                                          "padding_color": "black", "interpolation": "bilinear"}},
}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(float) - b.astype(float)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("policy", list(FIT_NODES))
def test_each_policy_undoes_cores_resize_node(comfy, source, policy):
    """3 frames fitted to 720x720 by core's node for ``policy`` come back onto the source where they came from:
    the right policy gives the source back to within resampling, another one does not."""
    graph = foreign_graph()
    fit = FIT_NODES[policy]
    graph["fit"] = {"class_type": fit["class_type"], "inputs": {**fit["inputs"], "image": ["window", 0]}}
    graph["window"]["inputs"]["length"] = 3
    src_window = ["window", 0]
    for name in RESIZE_POLICIES:
        graph[f"align_{name}"] = {"class_type": "DRIVE_AlignEditedClip",
                                  "inputs": {"original": src_window, "edited": ["fit", 0], "frame_offset": 0,
                                             "frame_stride": 1, "resize_policy": name}}
        graph[f"save_{name}"] = {"class_type": "DRIVE_SaveVideo",
                                 "inputs": {"images": [f"align_{name}", 0], "fps": 16.0, "format": "png", "crf": 19,
                                            "filename_prefix": f"DRIVE/fit_{policy}_{name}"}}
    graph["save_window"] = {"class_type": "DRIVE_SaveVideo",
                            "inputs": {"images": src_window, "fps": 16.0, "format": "png", "crf": 19,
                                       "filename_prefix": f"DRIVE/fit_{policy}_src"}}
    outputs = comfy.run_ok(graph, timeout=600)["outputs"]
    rows = slice((H - W) // 2, (H + W) // 2)     # the square every policy covers (crop_centre's): 28..99
    src = np.stack(_png_frames(comfy, outputs["save_window"]["images"][0]))[:, rows]
    psnr = {name: _psnr(np.stack(_png_frames(comfy, outputs[f"save_{name}"]["images"][0]))[:, rows], src)
            for name in RESIZE_POLICIES}
    print(policy, {k: round(v, 2) for k, v in psnr.items()})
    assert psnr[policy] > 40 and all(psnr[policy] > v + 10 for k, v in psnr.items() if k != policy), psnr


@pytest.mark.parametrize("node,inputs,needles", [
    ("DRIVE_CompositeBackground",
     {"edited": ["vace", 0], "original": ["load", 0], "mask": ["mask", 0], "grow": 0, "feather": 0.0,
      "blend": "alpha"},
     ("81 frames but the original has 79", "Align Edited Clip (DRIVE)")),
    ("DRIVE_EditReport",
     {"original": ["load", 0], "edited": ["vace", 0], "mask": ["mask", 0], "dilation_px": 3,
      "flow_preset": "ultrafast", "prompt": ""},
     ("79 frames but the edited clip has 81", "Align Edited Clip (DRIVE)")),
    ("DRIVE_Harmonize",
     {"image": ["load", 0], "mask": ["vace_mask", 0], "strength": 1.0, "temporal_smoothing": 0.96, "fps": 16.0,
      "frames_per_batch": 8},
     ("720x720 px but the frames are 72x128", "Align Edited Clip (DRIVE)")),
    ("DRIVE_AlignEditedClip",
     {"original": ["load", 0], "edited": ["vace", 0], "frame_offset": 79, "frame_stride": 1,
      "resize_policy": "crop_centre"},
     ("frame_offset 79 is beyond the source's last frame (79 frames, 0..78)",)),
    ("DRIVE_AlignEditedClip",
     {"original": ["load", 0], "edited": ["vace", 0], "frame_offset": -81, "frame_stride": 1,
      "resize_policy": "crop_centre"},
     ("the edit ends before the source starts", "raise frame_offset")),
])
def test_mismatched_clips_are_refused_naming_the_fix(comfy, source, node, inputs, needles):
    graph = foreign_graph()
    graph["vace_mask"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": SIDE, "height": SIDE}}
    graph["node"] = {"class_type": node, "inputs": inputs}
    graph["show"] = {"class_type": "PreviewImage", "inputs": {"images": ["node", 0]}}
    entry = comfy.run(graph, timeout=600)
    assert entry["status"]["status_str"] == "error"
    message = execution_error(entry).get("exception_message", "")
    assert all(n in message for n in needles), message
