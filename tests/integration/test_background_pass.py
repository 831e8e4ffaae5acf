"""The Masked-CFG Sampler skips the background pass when the background equals the negative (issue 24, item 3).

The main workflow wires the inversion conditioning (empty text through the Canny ControlNet) to
`background` and empty text through the same ControlNet to `negative`: equal content, other objects.
Counted on a tiny random UNet with a random ControlNet inside an in-process ComfyUI 0.3.64: UNet
passes per step (conditioning rows / frames / steps) were 3 and are now 2, with latents bit for bit
those of the run without a background; a background that differs still costs its third pass.
"""

from __future__ import annotations

import pytest
import torch

from comfy_inprocess import counting_unet_rows, through_controlnet

pytestmark = pytest.mark.integration

T, H, W, STEPS = 2, 8, 8, 3


@pytest.fixture(scope="module")
def env():
    from comfy_inprocess import load_pack, random_controlnet, random_model, start_comfy

    start_comfy()
    torch.set_num_threads(1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return load_pack(), random_model(), random_controlnet()


def test_background_equal_to_the_negative_runs_two_passes_per_step_with_the_same_output(env):
    pack, model, control = env
    gen = torch.Generator().manual_seed(0)
    latent = torch.randn(T, 4, H, W, generator=gen)
    hint = torch.rand(T, 3, 8 * H, 8 * W, generator=gen)
    empty, prompt, other = (torch.zeros(1, 77, 768), torch.randn(1, 77, 768, generator=gen),
                            torch.randn(1, 77, 768, generator=gen))

    def conditioning(text):
        return through_controlnet(control, hint, text)

    counted, rows = counting_unet_rows(model)
    pos, neg = conditioning(prompt), conditioning(empty)
    mask = torch.zeros(1, 8 * H, 8 * W)
    mask[:, 16:48, 16:48] = 1.0

    def edit(background):
        rows[0] = 0
        out = pack("nodes.edit").MaskedCFGSampler.execute(
            counted, pos, neg, {"samples": latent}, STEPS, 7.5, -1.0, 1, False, 0, 0, "nearest", 0.5, mask,
            background=background).args[0]["samples"]
        return out, rows[0] / (T * STEPS)

    plain, plain_passes = edit(None)
    equal, equal_passes = edit(conditioning(empty))
    differs, differs_passes = edit(conditioning(other))
    assert plain_passes == 2 and equal_passes == 2, (plain_passes, equal_passes)   # was 3 with the equal background
    assert torch.equal(equal, plain)
    assert differs_passes == 3 and not torch.allclose(differs, plain, atol=1e-4)
