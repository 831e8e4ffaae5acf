"""Cancel stops every long loop of the pack at its next unit (frame, chunk or step), on every core.

ComfyUI checks for an interrupt inside its progress hook, and 0.33 calls that hook at most
once per 100 ms and per 0.5 % of a bar's total; here the hook (standing in for ComfyUI's)
sets the interrupt flag at the first report it gets, and each node must stop at its next
unit: the check that raises is the first one after the flag, and nothing is written.
bench/cancel.py measures the time from Cancel to the stop on a running server.
"""

from __future__ import annotations

import pytest
import torch

from bad_input_files import random_frames

pytestmark = pytest.mark.integration

T = 12


def box_mask(t=T, h=16, w=16) -> torch.Tensor:
    m = torch.zeros(t, h, w)
    m[:, 4:12, 4:12] = 1.0
    return m


def random_harmonizer(p):
    """Harmonizer's regressor with random weights, as Load Harmonizer gives it: Harmonize's loop runs only with
    one (without weights the frames pass through in one step)."""
    import comfy.model_patcher

    from drive_ops.composite.harmonizer_model import random_state_dict

    model = p["composite"].build_harmonizer(random_state_dict(0))
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


def latent(t=4) -> dict:
    return {"samples": torch.randn(t, 4, 8, 8, generator=torch.Generator().manual_seed(2))}


LOOPS = {
    "harmonize": lambda p, s, out: p["composite"].Harmonize.execute(
        image=random_frames(T), mask=box_mask(), strength=1.0, temporal_smoothing=0.9, fps=8.0, frames_per_batch=1,
        harmonizer=random_harmonizer(p)),
    "fill": lambda p, s, out: p["composite"].FillBackground.execute(
        images=random_frames(T), mask=box_mask(), grow=1, flow_quality="ultrafast", keyframe=-1,
        inpaint_method="telea", steps=2, cfg=4.0, denoise=1.0, seed=0),
    "propagate": lambda p, s, out: p["mask"].PropagateMask.execute(
        images=random_frames(T), mask=box_mask(1), frame_index=0, flow_quality="ultrafast", occlusion_check=False,
        threshold=0.5),
    "invert": lambda p, s, out: p["invert"].InvertVideo.execute(
        s["model"], s["negative"], latent(), 4, "ddim", 0.5, 0.05, 0.2, "after", 1.0, 1, 0),
    "sample": lambda p, s, out: p["edit"].MaskedCFGSampler.execute(
        s["model"], s["positive"], s["negative"], latent(), 4, 7.5, 0.0, 1, False, 0, 0, "nearest", 0.5),
    "save": lambda p, s, out: save_video(p),
}


def save_video(p):
    """Save Video outside a prompt: no hidden inputs, so no workflow metadata (as with --disable-metadata)."""
    from comfy.cli_args import args

    before, args.disable_metadata = args.disable_metadata, True
    try:
        return p["video"].SaveVideo.execute(random_frames(T), 8.0, "cancel/clip", "png", 19)
    finally:
        args.disable_metadata = before


@pytest.fixture
def output_dir(tmp_path):
    import folder_paths

    before = folder_paths.get_output_directory()
    folder_paths.set_output_directory(str(tmp_path))
    yield tmp_path
    folder_paths.set_output_directory(before)


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_cancel_stops_at_the_next_unit(name, pack, sd, output_dir):
    import comfy.model_management as mm
    import comfy.utils

    checks_after_flag = []
    real_check = mm.throw_exception_if_processing_interrupted

    def check():
        if mm.processing_interrupted():
            checks_after_flag.append(1)
        real_check()

    def cancel(value, total, preview, node_id=None):   # what Cancel does while the node runs
        mm.interrupt_current_processing(True)

    mm.throw_exception_if_processing_interrupted = check
    comfy.utils.set_progress_bar_global_hook(cancel)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            LOOPS[name](pack, sd, output_dir)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
        mm.throw_exception_if_processing_interrupted = real_check
        mm.interrupt_current_processing(False)
    assert checks_after_flag == [1], f"{name} went on for {len(checks_after_flag) - 1} units after Cancel"
    assert not any(p.is_file() for p in output_dir.rglob("*")), f"{name} left files behind"
