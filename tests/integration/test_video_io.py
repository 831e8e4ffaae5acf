"""DRIVE_LoadVideo / DRIVE_SaveVideo inside a real ComfyUI, through /object_info and /prompt."""

from __future__ import annotations

import json
import os

import av
import numpy as np
import pytest

from comfy_client import execution_error

pytestmark = pytest.mark.integration



def make_clip(path, frames=12, width=70, height=50, fps=10, rate=16000):
    """A small h264 + aac clip (yuv444p allows the odd-free but not-multiple-of-8 size)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for _ in range(frames):
            img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        container.mux(video.encode(None))
        wave = np.sin(np.arange(rate * frames // fps, dtype=np.float32) / 10)[None] * 0.3
        chunk = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = rate, 0
        container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))


def load_save_prompt(video: str, prefix: str, fmt: str = "mp4", cap: int = 8) -> dict:
    return {
        "1": {"class_type": "DRIVE_LoadVideo",
              "inputs": {"video": video, "frame_load_cap": cap, "skip_first_frames": 1, "select_every_nth": 1,
                         "size_policy": "crop_to_multiple_of_8", "longer_side": 512}},
        "2": {"class_type": "DRIVE_SaveVideo",
              "inputs": {"images": ["1", 0], "fps": ["1", 2], "audio": ["1", 1], "filename_prefix": prefix,
                         "format": fmt, "crf": 18}},
    }


def test_object_info_schema(comfy):
    info = comfy.object_info()
    load = info["DRIVE_LoadVideo"]
    assert load["output"] == ["IMAGE", "AUDIO", "FLOAT", "INT", "INT", "INT", "FLOAT"]
    assert load["input"]["required"]["video"][1].get("video_upload") is True
    assert info["DRIVE_SaveVideo"]["output_node"] is True


@pytest.mark.parametrize("fmt", ["mp4", "png"])
def test_load_then_save(comfy, fmt):
    make_clip(comfy.input_dir / "clip.mp4")
    entry = comfy.run_ok(load_save_prompt("clip.mp4", f"DRIVE/itest_{fmt}", fmt))
    saved = entry["outputs"]["2"]["images"][0]
    folder = comfy.output_dir / saved["subfolder"]
    if fmt == "png":
        frames = sorted(os.listdir(folder))
        assert saved["filename"] == "frame_00001.png" and len(frames) == 8
        with av.open(str(folder / frames[0])) as c:
            first = next(c.decode(video=0))
        assert (first.width, first.height) == (64, 48)
        assert b"tEXtprompt\x00" in (folder / frames[0]).read_bytes()
        return
    path = folder / saved["filename"]
    assert path.is_file() and saved["subfolder"] == "DRIVE" and saved["filename"].endswith(".mp4")
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = sum(1 for _ in c.decode(stream))
        assert (frames, stream.width, stream.height) == (8, 64, 48)
        assert float(stream.average_rate) == pytest.approx(10.0)
        assert c.streams.audio, "the source audio was not muxed"
        assert json.loads(c.metadata["prompt"])["1"]["class_type"] == "DRIVE_LoadVideo"
        assert "workflow" not in c.metadata  # no UI graph is posted by this test
    assert not [f for f in os.listdir(folder) if ".partial-" in f]


def test_prefix_cannot_escape_the_output_folder(comfy):
    make_clip(comfy.input_dir / "clip.mp4")
    entry = comfy.run(load_save_prompt("clip.mp4", "../../escape", cap=2))
    assert entry["status"]["status_str"] == "error"
    assert "outside the output folder" in execution_error(entry).get("exception_message", "")
    assert not list(comfy.base.parent.glob("escape*"))


def test_bad_inputs_get_clear_errors(comfy):
    status, body = comfy.submit(load_save_prompt("missing.mp4", "DRIVE/missing"))
    assert status == 400 and "video not found" in json.dumps(body)
    (comfy.input_dir / "notes.mp4").write_text("not a video")
    entry = comfy.run(load_save_prompt("notes.mp4", "DRIVE/notes"))
    assert entry["status"]["status_str"] == "error"
    assert "not a video file" in execution_error(entry)["exception_message"]
