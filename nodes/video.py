"""Video in and out (DRIVE/video): DRIVE_LoadVideo and DRIVE_SaveVideo.

Thin wrappers over ``drive_ops.video.decode`` / ``drive_ops.video.encode``: ComfyUI paths
(annotated input paths in, ``get_save_image_path`` out), progress bars, metadata and the
UI preview live here; the decoding and encoding do not.
"""

from __future__ import annotations

import logging
import os
import uuid

import folder_paths
from comfy_api.latest import io, ui

from ..drive_ops.core.frame_plan import SIZE_POLICIES
from ..drive_ops.video.encode import FORMATS
from .checks import check_options, combo_answer
from .progress import progress_bar

_LOG = logging.getLogger(__name__)


def _input_videos() -> list[str]:
    input_dir = folder_paths.get_input_directory()
    files = [f for f in os.listdir(input_dir) if os.path.isfile(os.path.join(input_dir, f))]
    return sorted(folder_paths.filter_files_content_types(files, ["video"]))


def _resolve_input(video: str) -> str | None:
    """The annotated path of ``video``, or None if it leaves its base folder."""
    name, base = folder_paths.annotated_filepath(video)
    base = os.path.abspath(base or folder_paths.get_input_directory())
    path = os.path.abspath(os.path.join(base, name))
    return path if os.path.commonpath((base, path)) == base else None


class LoadVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_LoadVideo",
            display_name="Load Video (DRIVE)",
            category="DRIVE/video",
            description="Decodes a video from ComfyUI's input folder into an IMAGE batch, streaming frames into "
                        "one preallocated tensor. Picks frames (skip, stride, cap), sizes them for the VAE, "
                        "applies rotation metadata, and returns the audio of the kept span. Refuses clearly, "
                        "before decoding, when the frames would not fit in RAM.",
            inputs=[
                io.Combo.Input("video", options=_input_videos(), upload=io.UploadType.video,
                               tooltip="A video in ComfyUI/input (upload one, or copy large files there: uploads "
                                       "are capped at 100 MB by default)."),
                io.Int.Input("frame_load_cap", default=0, min=0, max=1_000_000, step=1,
                             tooltip="Load at most this many frames (after skipping and striding); 0 loads them all."),
                io.Int.Input("skip_first_frames", default=0, min=0, max=10_000_000, step=1,
                             tooltip="Source frames to skip at the start."),
                io.Int.Input("select_every_nth", default=1, min=1, max=1000, step=1,
                             tooltip="Keep every n-th frame (1 = all). The fps output is divided by n."),
                io.Combo.Input("size_policy", options=list(SIZE_POLICIES), default="fit_longer_side",
                               tooltip="keep: the source size. crop_to_multiple_of_8: centre crop each side down "
                                       "to a multiple of 8 (what VAE encode would do). fit_longer_side: scale so "
                                       "the longer side is longer_side, then crop to a multiple of 8."),
                io.Int.Input("longer_side", default=512, min=64, max=8192, step=8,
                             tooltip="Target length of the longer side for size_policy fit_longer_side "
                                     "(512 suits SD1.5)."),
            ],
            outputs=[
                io.Image.Output(display_name="images"),
                io.Audio.Output(display_name="audio"),
                io.Float.Output(display_name="fps"),
                io.Int.Output(display_name="frame_count"),
                io.Int.Output(display_name="source_width"),
                io.Int.Output(display_name="source_height"),
                io.Float.Output(display_name="source_duration"),
            ],
        )

    @classmethod
    def execute(cls, video: str, frame_load_cap: int, skip_first_frames: int, select_every_nth: int,
                size_policy: str, longer_side: int) -> io.NodeOutput:
        check_options(cls, size_policy=size_policy)
        import comfy.model_management

        from ..drive_ops.video.decode import load_video

        path = _resolve_input(video)
        if path is None:
            raise ValueError(f"{video!r} points outside ComfyUI's folders")
        loaded = load_video(path, frame_load_cap=frame_load_cap, skip_first_frames=skip_first_frames,
                            select_every_nth=select_every_nth, size_policy=size_policy, longer_side=longer_side,
                            progress=progress_bar(0))
        frames = loaded.frames.to(comfy.model_management.intermediate_device())
        return io.NodeOutput(frames, loaded.audio, loaded.fps, loaded.frame_count, loaded.source_width,
                             loaded.source_height, loaded.source_duration)

    @classmethod
    def fingerprint_inputs(cls, video: str, **kwargs) -> str:
        from ..drive_ops.video.decode import file_fingerprint

        path = _resolve_input(video) if isinstance(video, str) else None
        if path is None or not os.path.isfile(path):
            return f"missing:{video!r}"
        return f"{path}:{file_fingerprint(path)}"

    @classmethod
    def validate_inputs(cls, video: str, size_policy: str | None = None) -> bool | str:
        answer = combo_answer(cls, size_policy=size_policy)
        if answer is not True:
            return answer
        if not isinstance(video, str):
            return (f"video must be a file name from ComfyUI/input (text), got {type(video).__name__} {video!r:.60}; "
                    "pick the video in the list")
        path = _resolve_input(video)
        if path is None:
            return f"{video!r} points outside ComfyUI's folders"
        if not os.path.isfile(path):
            return f"video not found: {video}. Put it in ComfyUI/input (or upload it) and pick it again."
        return True


class SaveVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_SaveVideo",
            display_name="Save Video (DRIVE)",
            category="DRIVE/video",
            description="Encodes an IMAGE batch (with optional audio, trimmed or padded to the video's length) to "
                        "h264 mp4, vp9 webm, gif or a png sequence in ComfyUI's output folder, with the workflow "
                        "embedded as metadata. Odd sizes are padded by one edge pixel for mp4/webm.",
            inputs=[
                io.Image.Input("images", tooltip="The frames to save, [T,H,W,3]."),
                io.Float.Input("fps", default=24.0, min=0.01, max=1000.0, step=0.01,
                               tooltip="Frames per second; wire Load Video's fps here to keep the timing."),
                io.String.Input("filename_prefix", default="DRIVE/video",
                                tooltip="Path under ComfyUI/output, without extension; folders are allowed, paths "
                                        "that leave the output folder are refused. %date:...% style keys work."),
                io.Combo.Input("format", options=list(FORMATS), default="mp4",
                               tooltip="mp4: h264 yuv420p with aac audio. webm: vp9 with opus audio. gif: no audio. "
                                       "png: a folder of lossless 8-bit frames, no audio."),
                io.Int.Input("crf", default=19, min=0, max=63, step=1,
                             tooltip="Quality for mp4 (0-51) and webm (0-63): lower is better and larger. "
                                     "Ignored for gif and png."),
                io.Audio.Input("audio", optional=True,
                               tooltip="Audio to mux (mp4/webm), trimmed or padded with silence to the video's "
                                       "length; wire Load Video's audio here to keep the soundtrack."),
            ],
            outputs=[],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, format) -> bool | str:
        return combo_answer(cls, format=format)

    @classmethod
    def execute(cls, images, fps: float, filename_prefix: str, format: str, crf: int,
                audio: dict | None = None) -> io.NodeOutput:
        check_options(cls, format=format)
        from comfy.cli_args import args

        from ..drive_ops.core.validate import check_image
        from ..drive_ops.video.encode import (checked_prefix, encode_video, file_extension, png_frame_name,
                                              remove_partial, video_rate)

        if format == "mp4" and crf > 51:
            raise ValueError(f"crf {crf} is out of range for mp4 (h264 takes 0-51)")
        check_image(images, "the images to save")
        video_rate(fps)
        prefix, prefix_note = checked_prefix(filename_prefix)
        height, width = int(images.shape[1]), int(images.shape[2])
        out_dir = folder_paths.get_output_directory()
        metadata = None
        if not args.disable_metadata:
            metadata = dict(cls.hidden.extra_pnginfo or {})
            if cls.hidden.prompt is not None:
                metadata["prompt"] = cls.hidden.prompt
        # Encode under a hidden name in the output folder first: the folders and the numbered name
        # are made only once the video exists, so a failed save leaves nothing behind.
        staging = os.path.join(out_dir, f".drive-save-{uuid.uuid4().hex}{file_extension(format)}")
        try:
            result = encode_video(images, fps, staging, format, crf=crf, audio=audio, metadata=metadata or None,
                                  progress=progress_bar(int(images.shape[0])))
            folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(prefix, out_dir, width, height)
            name = f"{filename}_{counter:05}_{file_extension(format)}"
            os.replace(staging, os.path.join(folder, name))
        except BaseException:
            remove_partial(staging)
            raise
        if prefix_note:
            result.notes.insert(0, prefix_note)
        for note in result.notes:
            _LOG.warning("DRIVE_SaveVideo: %s", note)
        if format == "png":
            # The preview shows the first frame; "sequence" lists every frame for API clients.
            saved = [ui.SavedResult(png_frame_name(i), os.path.join(subfolder, name), io.FolderType.output)
                     for i in range(result.frames)]
            preview = ui.SavedImages(saved[:1]).as_dict()
            preview["sequence"] = saved
        else:
            preview = ui.PreviewVideo([ui.SavedResult(name, subfolder, io.FolderType.output)]).as_dict()
        if result.notes:
            preview["text"] = result.notes
        return io.NodeOutput(ui=preview)


NODES: list[type[io.ComfyNode]] = [LoadVideo, SaveVideo]
