"""The bad-input catalogue, unit half: bad or edge inputs to the drive_ops functions the nodes hand them to.

Each row is a Case (tests/bad_input_catalogue.py): what is given, and either the error
text it must produce (the fix, with numbers) or a check of the correct output. The
node-level half runs inside a real ComfyUI (tests/integration/test_bad_input_nodes.py,
test_bad_input_api.py). Files are made by the tests: clips with PyAV, weight files with
torch / safetensors, booby-trapped pickles whose payload would leave a marker file.
"""

from __future__ import annotations

import os
import pickle
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from bad_input_catalogue import Case, assert_outcome, classify
from bad_input_files import Payload, poked, random_frames, write_audio_only, write_clip
from drive_ops.composite.compositing import composite_video
from drive_ops.composite.harmonize import harmonize_video
from drive_ops.composite.harmonizer_model import build_harmonizer, load_state_dict_file, random_state_dict
from drive_ops.core.mask_frames import mask_on_frame, match_mask_frames
from drive_ops.core.validate import (check_finite, check_image, check_latent, check_mask, check_numbers,
                                     non_finite_frames, unit_range_mask)
from drive_ops.core.weights import load_weight_file
from drive_ops.diffusion.masked_cfg import mask_to_latent
from drive_ops.diffusion.rave_grid import fitted_grid_size
from drive_ops.evaluate.edit_report import build_report
from drive_ops.masks.prompts import parse_boxes, parse_points
from drive_ops.masks.sam2_build import check_image_size, detect_sam2_variant
from drive_ops.video.decode import check_memory, file_fingerprint, load_video, tensor_bytes
from drive_ops.video.encode import checked_prefix, encode_video, gif_rate, video_rate

FRAME = (64, 64)          # (height, width) of the tracker's frames in the point cases
MARKER = "payload-ran"    # a booby-trapped pickle would create this file


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Every file the cases read: clips, stills, weights (good, broken, booby-trapped)."""
    from PIL import Image
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("bad_input")
    marker = str(d / MARKER)
    write_clip(d / "one.mkv", 1, 16, 16)
    write_clip(d / "pixel.mkv", 3, 1, 1)
    write_clip(d / "odd.mkv", 3, 7, 5)
    write_clip(d / "ntsc.mp4", 12, 32, 32, rate=Fraction(24000, 1001), codec="libx264", pix_fmt="yuv420p")
    full = (d / "ntsc.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(full[: len(full) // 2])
    (d / "empty.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    write_audio_only(d / "audio.m4a")
    Image.fromarray(np.full((5, 7, 3), 200, np.uint8)).save(d / "still.png")
    state = {"w": torch.ones(3)}
    torch.save(state, d / "good.pth")
    save_file(state, str(d / "good.safetensors"))
    (d / "zero.pth").write_bytes(b"")
    (d / "zero.safetensors").write_bytes(b"")
    (d / "random.pth").write_bytes(np.random.default_rng(1).bytes(5000))
    (d / "random.safetensors").write_bytes(np.random.default_rng(2).bytes(5000))
    (d / "notes.pth").write_text("this is a text file, not a checkpoint")
    (d / "truncated.pth").write_bytes((d / "good.pth").read_bytes()[:300])
    sft = (d / "good.safetensors").read_bytes()
    (d / "truncated.safetensors").write_bytes(sft[: len(sft) - 6])
    torch.save([torch.ones(2)], d / "list.pth")
    torch.save({"x": Payload(os.system, f"touch {marker}")}, d / "trap_zip.pth")
    torch.save({"x": Payload(os.system, f"touch {marker}")}, d / "trap_legacy.pth",
               _use_new_zipfile_serialization=False)
    with open(d / "trap_exec.pth", "wb") as fh:
        pickle.dump({"x": Payload(exec, f"open({marker!r}, 'w').close()")}, fh, protocol=2)
    import subprocess
    with open(d / "trap_popen.pth", "wb") as fh:
        pickle.dump(Payload(subprocess.Popen, ["touch", marker]), fh, protocol=2)
    (d / "folder.pth").mkdir()
    return d


def _weights(files: Path, name: str) -> dict:
    return load_weight_file(files / name, "a test checkpoint", "Download it again.")


def _payload_refused(files: Path, name: str) -> None:
    try:
        _weights(files, name)
    finally:
        assert not (files / MARKER).exists(), f"the payload of {name} ran"


def _encode_into_empty(files: Path, name: str, frames: torch.Tensor, fps: float, fmt="mp4", sub="out"):
    """encode_video into a fresh folder; the folder must stay empty when it fails."""
    out = files / f"{sub}_{name.replace(chr(0), '_')}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    try:
        return encode_video(frames, fps, str(out / name), fmt)
    except Exception:
        assert os.listdir(out) == [], f"a failed save left {os.listdir(out)}"
        raise


def _probe_rate(path: str) -> Fraction:
    with av.open(path) as container:
        return Fraction(container.streams.video[0].average_rate)


def _ntsc_round_trip(files: Path) -> Fraction:
    loaded = load_video(str(files / "ntsc.mp4"))
    out = files / "ntsc_saved.mp4"
    out.unlink(missing_ok=True)
    encode_video(loaded.frames, loaded.fps, str(out), "mp4")
    return _probe_rate(str(out))


def _replaced_with_same_mtime(files: Path) -> tuple[str, str]:
    a, b = files / "cache_a.mkv", files / "cache_b.mkv"
    write_clip(a, 3, 16, 16)
    write_clip(b, 4, 16, 16)
    before = file_fingerprint(str(a))
    stat = os.stat(a)
    shutil.copyfile(b, a)
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))   # what cp -p / rsync -t do
    return before, file_fingerprint(str(a))


def _report(edited: torch.Tensor, mask=None, source=None, t=3):
    source = random_frames(t) if source is None else source
    return build_report(source, edited, mask, dilation_px=1, flow_preset="ultrafast")


def _harmonize_no_background():
    frames = random_frames(2)
    out, _ = harmonize_video(frames, torch.ones(2, 16, 16), None)
    return float((out - frames).abs().max())


NAN_PIXELS = poked(poked(random_frames(), (1, 3, 4, 0), float("nan")), (2, 0, 0, 1), float("nan"))

CASES = [
    # --- finiteness: one check for every IMAGE / LATENT / MASK input
    (Case("image-nan-pixels", "all IMAGE nodes", "2 NaN pixels in frames 1 and 2",
          ("2 NaN", "2 of 4 frames", "frame 1, 2", "--fp32-vae", "--bf16-vae")),
     lambda f: check_image(NAN_PIXELS)),
    (Case("image-posinf", "all IMAGE nodes", "+inf in frame 3", ("1 +inf", "frame 3", "--fp32-vae")),
     lambda f: check_image(poked(random_frames(), (3, 1, 1, 2), float("inf")))),
    (Case("image-neginf", "all IMAGE nodes", "-inf in frame 0", ("1 -inf", "frame 0")),
     lambda f: check_image(poked(random_frames(), (0, 1, 1, 2), float("-inf")))),
    (Case("image-fp16-nan", "all IMAGE nodes", "a NaN in a half-precision clip", ("1 NaN", "frame 2")),
     lambda f: check_image(poked(random_frames().half(), (2, 5, 5, 0), float("nan")))),
    (Case("image-huge-finite", "all IMAGE nodes", "finite values near float32's largest (3e38)",
          check=lambda r: r is None),
     lambda f: check_image(torch.full((2, 8, 8, 3), 3e38))),
    (Case("image-one-frame", "all IMAGE nodes", "a clean 1-frame 1x1 IMAGE", check=lambda r: r is None),
     lambda f: check_image(torch.rand(1, 1, 1, 3))),
    (Case("image-empty-batch", "all IMAGE nodes", "an IMAGE with 0 frames", ("at least one frame", "(0, 16, 16, 3)")),
     lambda f: check_image(torch.zeros(0, 16, 16, 3))),
    (Case("image-3d", "all IMAGE nodes", "a 3-D tensor where an IMAGE belongs", ("IMAGE batch", "(16, 16, 3)")),
     lambda f: check_image(torch.zeros(16, 16, 3))),
    (Case("latent-nan", "Invert Video, Masked-CFG Sampler", "a NaN latent (fp16 VAE encode)",
          ("1 NaN", "Non-finite latents", "--fp32-vae")),
     lambda f: check_latent({"samples": poked(torch.zeros(2, 4, 8, 8), (1, 0, 0, 0), float("nan"))})),
    (Case("latent-not-a-latent", "Invert Video, Masked-CFG Sampler", "a dict without samples", ("LATENT", "VAE Encode")),
     lambda f: check_latent({"images": torch.zeros(1)})),
    (Case("mask-nan", "all MASK nodes", "a NaN in a mask", ("1 NaN", "node upstream that produced the mask")),
     lambda f: check_mask(poked(torch.zeros(2, 8, 8), (0, 1, 1), float("nan")))),
    (Case("mask-4d", "all MASK nodes", "a 4-D mask that is no [T,H,W,1]", ("MASK [frames, height, width]",)),
     lambda f: check_mask(torch.zeros(1, 2, 8, 8))),
    (Case("mask-trailing-one", "all MASK nodes", "a [T,H,W,1] mask", check=lambda r: r is None),
     lambda f: check_mask(torch.zeros(2, 8, 8, 1))),
    (Case("mask-out-of-range", "Composite / Color Filters / Harmonize", "a mask of -0.5..3.0",
          check=lambda r: float(r[0].min()) == 0.0 and float(r[0].max()) == 1.0 and "-0.5 to 3" in r[1]),
     lambda f: unit_range_mask(torch.tensor([[-0.5, 3.0], [0.2, 1.0]]))),
    (Case("number-nan", "every node with FLOAT inputs", "strength NaN through the API", ("strength is nan", "finite")),
     lambda f: check_numbers(strength=float("nan"))),
    (Case("frames-located", "all IMAGE nodes", "NaN in frames 0 and 9 of 10", check=lambda r: r == [0, 9]),
     lambda f: non_finite_frames(poked(poked(torch.zeros(10, 4, 4, 3), (0,), float("nan")), (9, 0), float("inf")))),
    (Case("finite-what", "all IMAGE nodes", "the message names the input", ("the edited clip holds",)),
     lambda f: check_finite(NAN_PIXELS, "the edited clip")),
    # --- weight files (SAM 2 Loader, Load Harmonizer)
    (Case("weights-zero-pth", "Load Harmonizer / Load SAM2", "a 0-byte .pth", ("zero.pth", "is empty (0 bytes", "Download")),
     lambda f: _weights(f, "zero.pth")),
    (Case("weights-zero-sft", "Load SAM2", "a 0-byte .safetensors", ("zero.safetensors", "is empty (0 bytes")),
     lambda f: _weights(f, "zero.safetensors")),
    (Case("weights-random-pth", "Load Harmonizer", "random bytes as .pth", ("random.pth", "is not a PyTorch checkpoint")),
     lambda f: _weights(f, "random.pth")),
    (Case("weights-random-sft", "Load SAM2", "random bytes as .safetensors", ("is not a valid .safetensors file",)),
     lambda f: _weights(f, "random.safetensors")),
    (Case("weights-text-pth", "Load Harmonizer", "a text file named .pth", ("notes.pth", "not a PyTorch checkpoint")),
     lambda f: _weights(f, "notes.pth")),
    (Case("weights-truncated-pth", "Load Harmonizer", "a .pth cut short", ("truncated.pth", "truncated")),
     lambda f: _weights(f, "truncated.pth")),
    (Case("weights-truncated-sft", "Load SAM2", "a .safetensors cut short", ("truncated.safetensors", "truncated")),
     lambda f: _weights(f, "truncated.safetensors")),
    (Case("weights-list", "Load Harmonizer", "a pickle of a list", ("holds a list, not a dict",)),
     lambda f: _weights(f, "list.pth")),
    (Case("weights-folder", "Load SAM2", "a folder named .pth", ("is not a file",)),
     lambda f: _weights(f, "folder.pth")),
    (Case("trap-zip", "Load Harmonizer", "torch.save of os.system (zip format)",
          ("holds Python code", "posix.system", "refused unread")),
     lambda f: _payload_refused(f, "trap_zip.pth")),
    (Case("trap-legacy", "Load Harmonizer", "legacy torch.save of os.system", ("trap_legacy.pth", "holds Python code", "posix.system", "refused unread")),
     lambda f: _payload_refused(f, "trap_legacy.pth")),
    (Case("trap-exec", "Load SAM2", "a raw pickle calling exec", ("trap_exec.pth", "holds Python code or objects (exec)", "refused unread")),
     lambda f: _payload_refused(f, "trap_exec.pth")),
    (Case("trap-popen", "Load SAM2", "a raw pickle calling subprocess.Popen", ("trap_popen.pth", "holds Python code", "Popen", "refused unread")),
     lambda f: _payload_refused(f, "trap_popen.pth")),
    (Case("weights-good", "Load Harmonizer / Load SAM2", "a plain .pth and .safetensors",
          check=lambda r: all(torch.equal(s["w"], torch.ones(3)) for s in r)),
     lambda f: (_weights(f, "good.pth"), _weights(f, "good.safetensors"))),
    (Case("harmonizer-wrong-layout", "Load Harmonizer", "a state dict of another model",
          ("not Harmonizer's", "392 tensors are missing", "ZHKKKe/Harmonizer")),
     lambda f: build_harmonizer({"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(1)})),
    (Case("harmonizer-not-tensors", "Load Harmonizer", "a dict holding a string", ("not a plain state dict",)),
     lambda f: (torch.save({"w": "text"}, f / "strings.pth"), load_state_dict_file(f / "strings.pth"))),
    (Case("harmonizer-random-ok", "Load Harmonizer", "random weights in the right layout",
          check=lambda r: not r.training),
     lambda f: build_harmonizer(random_state_dict(0))),
    (Case("sam2-not-sam2", "Load SAM2", "a Harmonizer state dict in models/sam2",
          ("not a SAM 2 checkpoint", "sam2.1_hiera_tiny.pt", "facebookresearch/sam2")),
     lambda f: detect_sam2_variant(random_state_dict(0))),
    (Case("sam2-image-size", "Load SAM2", "image_size 1000 through the API", ("multiple of 32", "use 992 or 1024")),
     lambda f: check_image_size(1000)),
    # --- points and boxes (Track Object)
    (Case("point-far-outside", "Track Object", "a point at (5000, -20) on 64x64 frames",
          ("(5000, -20)", "outside the 64x64 frames", "after Load Video's")),
     lambda f: parse_points('[{"x": 5000, "y": -20}]', FRAME)),
    (Case("point-nan", "Track Object", "a NaN coordinate", ("the x of point 1 is nan", "finite")),
     lambda f: parse_points('[{"x": NaN, "y": 3}]', FRAME)),
    (Case("point-string", "Track Object", 'x given as "abc"', ("'abc' (str), not a number",)),
     lambda f: parse_points('[{"x": "abc", "y": 3}]', FRAME)),
    (Case("point-bool", "Track Object", "x given as true", ("True (bool), not a number",)),
     lambda f: parse_points('[{"x": true, "y": 3}]', FRAME)),
    (Case("point-garbage", "Track Object", "text that is no JSON", ("points must be JSON", "Points Editor")),
     lambda f: parse_points("the wolf", FRAME)),
    (Case("point-no-y", "Track Object", 'a point without "y"', ("cannot read point 1",)),
     lambda f: parse_points('[{"x": 3}]', FRAME)),
    (Case("point-single-quotes", "Track Object", "Python-literal points (single quotes)",
          check=lambda r: r == [(3.0, 4.0)]),
     lambda f: parse_points("[{'x': 3, 'y': 4}]", FRAME)),
    (Case("point-looks-normalized", "Track Object", "Points Editor normalize=True output read as pixels",
          ("look normalized", "points_normalized on")),
     lambda f: parse_points('[{"x": 0.42, "y": 0.3}]', FRAME)),
    (Case("point-normalized", "Track Object", "normalized points with points_normalized on",
          check=lambda r: r == [(0.5 * 64, 0.25 * 64)]),
     lambda f: parse_points('[{"x": 0.5, "y": 0.25}]', FRAME, normalized=True)),
    (Case("point-normalized-pixels", "Track Object", "pixel points with points_normalized on",
          ("points_normalized is on", "(30, 3) is not in 0..1")),
     lambda f: parse_points('[{"x": 30, "y": 3}]', FRAME, normalized=True)),
    (Case("point-7x5-edge", "Track Object", "a point on the corner of 7x5 frames", check=lambda r: r == [(7.0, 5.0)]),
     lambda f: parse_points("[[7, 5]]", (5, 7))),
    (Case("point-7x5-outside", "Track Object", "a point one pixel right of 7x5 frames", ("outside the 7x5 frames",)),
     lambda f: parse_points("[[8, 5]]", (5, 7))),
    (Case("point-1x1", "Track Object", "the only pixel of a 1x1 clip", check=lambda r: r == [(0.0, 0.0)]),
     lambda f: parse_points("[[0, 0]]", (1, 1))),
    (Case("box-nan", "Track Object", "a NaN box", ("value 1 of box 1 is nan",)),
     lambda f: parse_boxes([[float("nan"), 1, 20, 20]], FRAME)),
    (Case("box-outside", "Track Object", "a box past the right edge", ("outside the 64x64 frames", "(0, 0, 65, 64)")),
     lambda f: parse_boxes([0, 0, 65, 64], FRAME)),
    (Case("box-string", "Track Object", "a box with a string", ("'a' (str), not a number",)),
     lambda f: parse_boxes(["a", 1, 2, 3], FRAME)),
    (Case("box-three-numbers", "Track Object", "a box of 3 numbers", ("box 1 needs 4 numbers",)),
     lambda f: parse_boxes([[1, 2, 3]], FRAME)),
    (Case("box-xywh-as-xyxy", "Track Object", "an xywh box read as corners", ("set bbox_format to xywh",)),
     lambda f: parse_boxes([30, 10, 20, 20], FRAME)),
    (Case("box-xywh", "Track Object", "Points Editor's bbox_format xywh with bbox_format xywh",
          check=lambda r: r == [(30.0, 10.0, 50.0, 30.0)]),
     lambda f: parse_boxes([(30, 10, 20, 20)], FRAME, "xywh")),
    (Case("box-xywh-outside", "Track Object", "an xywh box whose width runs off the frame", ("outside the 64x64",)),
     lambda f: parse_boxes([(30, 10, 40, 20)], FRAME, "xywh")),
    (Case("box-full-frame", "Track Object", "the whole 64x64 frame as a box", check=lambda r: r == [(0.0, 0.0, 64.0, 64.0)]),
     lambda f: parse_boxes(torch.tensor([0, 0, 64, 64]), FRAME)),
    (Case("box-none", "Track Object", "an empty BBOX list (Points Editor without a box)", check=lambda r: r == []),
     lambda f: parse_boxes([], FRAME)),
    # --- video files (Load Video)
    (Case("video-empty", "Load Video", "a 0-byte mp4", ("empty.mp4 is empty (0 bytes", "again")),
     lambda f: load_video(str(f / "empty.mp4"))),
    (Case("video-random", "Load Video", "random bytes named .mp4", ("is not a video file", "Pick an mp4")),
     lambda f: load_video(str(f / "random.mp4"))),
    (Case("video-truncated", "Load Video", "an mp4 cut in half", ("truncated", "Copy or export the file again")),
     lambda f: load_video(str(f / "truncated.mp4"))),
    (Case("video-audio-only", "Load Video", "an audio-only m4a", ("has no video stream",)),
     lambda f: load_video(str(f / "audio.m4a"))),
    (Case("video-still", "Load Video", "a still png", check=lambda r: tuple(r.frames.shape) == (1, 5, 7, 3)
          and bool((r.frames * 255).round().eq(200).all())),
     lambda f: load_video(str(f / "still.png"))),
    (Case("video-one-frame", "Load Video", "a 1-frame clip", check=lambda r: r.frame_count == 1 and r.fps == 10),
     lambda f: load_video(str(f / "one.mkv"))),
    (Case("video-1x1", "Load Video", "a 1x1 clip", check=lambda r: tuple(r.frames.shape) == (3, 1, 1, 3)),
     lambda f: load_video(str(f / "pixel.mkv"))),
    (Case("video-7x5", "Load Video", "a 7x5 clip kept as it is", check=lambda r: tuple(r.frames.shape) == (3, 5, 7, 3)),
     lambda f: load_video(str(f / "odd.mkv"))),
    (Case("video-7x5-crop8", "Load Video", "a 7x5 clip cropped to multiples of 8",
          ("a side of 5 px is smaller than 8 px", "size_policy keep")),
     lambda f: load_video(str(f / "odd.mkv"), size_policy="crop_to_multiple_of_8")),
    (Case("video-skip-all", "Load Video", "skip_first_frames past the end", ("has 3 frames", "below 3")),
     lambda f: load_video(str(f / "odd.mkv"), skip_first_frames=3)),
    (Case("video-ram-rule", "Load Video", "300 1080p frames with room for 10",
          ("a third of the free RAM after 1 GiB", "About 10 frames would fit", "frame_load_cap (to 10")),
     lambda f: check_memory(300, 1080, 1920, available=3 * 10 * tensor_bytes(1, 1080, 1920) + 2**30)),
    (Case("video-cache-cp-p", "Load Video", "a file replaced keeping its mtime (cp -p)",
          check=lambda r: r[0] != r[1] and r[0].split(":")[1] == r[1].split(":")[1]),
     lambda f: _replaced_with_same_mtime(f)),
    # --- frame rates and saving (Save Video)
    (Case("fps-ntsc-float", "Save Video", "fps 23.976 and 23.976023976",
          check=lambda r: r == [Fraction(24000, 1001)] * 3),
     lambda f: [video_rate(v) for v in (23.976, 23.976023976, 24000 / 1001)]),
    (Case("fps-ntsc-family", "Save Video", "29.97, 59.94, 14.985 (29.97 / 2)",
          check=lambda r: r == [Fraction(30000, 1001), Fraction(60000, 1001), Fraction(15000, 1001)]),
     lambda f: [video_rate(v) for v in (29.97, 59.94, 14.985)]),
    (Case("fps-integer", "Save Video", "24, 25, 12.5 fps", check=lambda r: r == [24, 25, Fraction(25, 2)]),
     lambda f: [video_rate(v) for v in (24.0, 25.0, 12.5)]),
    (Case("fps-ntsc-end-to-end", "Load Video -> Save Video", "a 24000/1001 clip loaded and saved as mp4",
          check=lambda r: r == Fraction(24000, 1001)),
     lambda f: _ntsc_round_trip(f)),
    (Case("fps-nan", "Save Video", "fps NaN", ("fps must be a positive number, got nan",)),
     lambda f: _encode_into_empty(f, "nan.mp4", random_frames(2), float("nan"))),
    (Case("gif-250fps", "Save Video", "gif at 250 fps",
          check=lambda r: os.path.isfile(r.path) and "saved at 50 fps" in r.notes[0]
          and _probe_rate(r.path) == 50),
     lambda f: _encode_into_empty(f, "fast.gif", random_frames(6), 250.0, "gif")),
    (Case("gif-24fps", "Save Video", "gif at 24 fps (delays of 4 and 5 hundredths)",
          check=lambda r: r[0] == 24 and r[1] is None),
     lambda f: gif_rate(24.0)),
    (Case("save-nul-path", "Save Video", "a NUL byte in the file name", ("holds a NUL byte",)),
     lambda f: _encode_into_empty(f, "a\0b.mp4", random_frames(2), 10.0)),
    (Case("save-no-frames", "Save Video", "an IMAGE with no frames", ("non-empty [T,H,W,C]",)),
     lambda f: _encode_into_empty(f, "none.mp4", torch.zeros(0, 8, 8, 3), 10.0)),
    (Case("prefix-nul", "Save Video", "filename_prefix with a NUL byte", ("control character '\\x00' at position 5",)),
     lambda f: checked_prefix("DRIVE\0x")),
    (Case("prefix-newline", "Save Video", "filename_prefix with a newline", ("control character '\\n'",)),
     lambda f: checked_prefix("DRIVE\nx")),
    (Case("prefix-empty", "Save Video", "an empty filename_prefix",
          check=lambda r: r[0] == "DRIVE/video" and "empty" in r[1]),
     lambda f: checked_prefix("")),
    (Case("prefix-folder", "Save Video", 'filename_prefix "clips/"',
          check=lambda r: r[0] == "clips/video" and "names a folder" in r[1]),
     lambda f: checked_prefix("clips/")),
    (Case("prefix-dot", "Save Video", 'filename_prefix "."', check=lambda r: r[0] == "DRIVE/video"),
     lambda f: checked_prefix(".")),
    (Case("prefix-absolute", "Save Video", 'filename_prefix "/tmp/x"', ("is an absolute path", "e.g. DRIVE/video")),
     lambda f: checked_prefix("/tmp/x")),
    (Case("prefix-traversal", "Save Video", 'filename_prefix "a/../../x"', ("climbs out with '..'",
                                                                          "outside the output folder")),
     lambda f: checked_prefix("a/../../x")),
    (Case("prefix-not-text", "Save Video", "filename_prefix 5 through the API", ("must be text, got int",)),
     lambda f: checked_prefix(5)),
    # --- grids (RAVE Grid Patch, Masked-CFG Sampler, Invert Video)
    (Case("grid-larger-than-clip", "RAVE Grid Patch", "grid_size 8 on 2 frames",
          check=lambda r: r[0] == 2 and "2 padded" in r[1] and "instead of padding to 64" in r[1]),
     lambda f: fitted_grid_size(2, 8)),
    (Case("grid-fits", "RAVE Grid Patch", "grid_size 3 on 8 and on 10 frames",
          check=lambda r: r == [(3, None), (3, None)]),
     lambda f: [fitted_grid_size(8, 3), fitted_grid_size(10, 3)]),
    (Case("grid-one-frame", "RAVE Grid Patch", "grid_size 3 on 1 frame", check=lambda r: r[0] == 1 and r[1]),
     lambda f: fitted_grid_size(1, 3)),
    # --- masks against frames and latents
    (Case("mask-frame-count", "Harmonize / Mask Preview", "3 mask frames for 4 video frames",
          ("3 frames but the video has 4", "single mask frame")),
     lambda f: match_mask_frames(torch.zeros(3, 8, 8), 4)),
    (Case("mask-size", "Mask Preview / Edit Report", "a 8x6 mask on 8x8 frames", ("8x6 px but the frames are 8x8",)),
     lambda f: match_mask_frames(torch.zeros(1, 6, 8), 4, 8, 8)),
    (Case("prompt-mask-size", "Propagate Mask / Track Object", "a 10x10 prompt mask on 16x16 frames",
          ("10x10 px but the frames are 16x16",)),
     lambda f: mask_on_frame(torch.ones(1, 10, 10), 0, 4, 16, 16)),
    (Case("mask-latent-size", "Masked-CFG Sampler", "a 64x64 mask for latents of 48x48 frames",
          ("64x64 px but the latents belong to frames of about 48x48",)),
     lambda f: mask_to_latent(torch.ones(2, 64, 64), 6, 6)),
    # --- compositing, harmonising, measuring
    (Case("composite-mask-3", "Composite Background", "a mask of 3.0 (added masks)",
          check=lambda r: torch.equal(r[0], r[1])),
     lambda f: (composite_video(random_frames(2, seed=1), random_frames(2), torch.full((2, 16, 16), 3.0)),
                random_frames(2, seed=1))),
    (Case("composite-empty-mask", "Composite Background", "an empty mask",
          check=lambda r: torch.equal(r, random_frames(2))),
     lambda f: composite_video(random_frames(2, seed=1), random_frames(2), torch.zeros(2, 16, 16), grow=2, feather=2.0,
                               blend="laplacian")),
    (Case("composite-all-ones", "Composite Background", "an all-one mask",
          check=lambda r: torch.allclose(r, random_frames(2, seed=1))),
     lambda f: composite_video(random_frames(2, seed=1), random_frames(2), torch.ones(16, 16))),
    (Case("composite-frame-counts", "Composite Background", "3 edited frames over 4 originals",
          ("edited video has 3 frames but the original has 4",)),
     lambda f: composite_video(random_frames(3), random_frames(4), torch.ones(16, 16))),
    (Case("harmonize-empty-mask", "Harmonize", "an empty mask (no weights: pass-through)",
          check=lambda r: torch.equal(r[0], random_frames(2))),
     lambda f: harmonize_video(random_frames(2), torch.zeros(2, 16, 16), None)),
    (Case("harmonize-no-background", "Harmonize", "an all-one mask: no background to match",
          check=lambda r: r < 2e-3),
     lambda f: _harmonize_no_background()),
    (Case("report-nan-edited", "Edit Report", "NaN frames with a mask",
          ("the edited clip holds non-finite values", "--fp32-vae")),
     lambda f: _report(poked(random_frames(3), (1, 2, 2, 0), float("nan")), torch.zeros(3, 16, 16))),
    (Case("report-mask-everything", "Edit Report", "an all-one mask", ("covers every pixel of every frame", "1..1")),
     lambda f: _report(random_frames(3, seed=1), torch.ones(3, 16, 16))),
    (Case("report-one-frame", "Edit Report", "1-frame clips", ("at least 2 frames",)),
     lambda f: _report(random_frames(1, seed=1), t=1)),
]


@pytest.mark.parametrize("case,run", CASES, ids=[c.id for c, _ in CASES])
def test_bad_input(case: Case, run, files):
    observed, detail = classify(case, lambda: run(files))
    assert_outcome(case, observed, detail)


def test_catalogue_ids_are_unique():
    ids = [c.id for c, _ in CASES]
    assert len(ids) == len(set(ids))
