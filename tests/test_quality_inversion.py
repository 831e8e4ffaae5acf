"""DRIVE claim 1 on the trained test bed: invert, then reconstruct at cfg 1 (empty prompt, the pack's default).

Three held-out one-object clips (HELDOUT_START + 21, 22, 23), 4 frames at 64 px (frames batched,
one torch thread), pixel PSNR vs the frames, per-frame mean then clip mean. Measured on these
weights (clips 21 / 22 / 23, then the mean):

    AE round trip      32.57 / 35.94 / 31.63   33.38 dB
    DDIM 10 steps      30.21 / 34.88 / 30.49   31.86
    DDIM 25 steps      31.80 / 35.71 / 30.63   32.71
    DDIM 50 steps      32.27 / 35.92 / 31.10   33.09   (0.29 dB under the AE: claim holds)
    EasyInv 50 steps   31.37 / 35.20 / 29.75   32.10   (0.99 dB UNDER DDIM: "EasyInv >= DDIM" fails here)
    STEM 50 steps      30.74 / 33.74 / 21.05   28.51   (reported; 256 bases over 4 x 64 tokens)

EasyInv's claim is about SD-scale inversion drift, which a 45.8 dB DDIM round trip in latent space
(testbed record) leaves little room for; its blend then costs exactness. Wall time ~60-90 s here.
"""

from __future__ import annotations

import pytest
from quality_edit import CLIP_SEEDS, load_testbed_or_skip, make_case, reconstruction_psnr

FRAMES = 4


@pytest.fixture(scope="module")
def tb():
    return load_testbed_or_skip()


@pytest.fixture(scope="module")
def psnrs(tb):
    cases = [make_case(s, FRAMES) for s in CLIP_SEEDS[:3]]
    runs = [("ddim", 10), ("ddim", 25), ("ddim", 50), ("easyinv", 50), ("stem", 50)]
    out = {run: [reconstruction_psnr(tb, c, *run) for c in cases] for run in runs}
    return out


def clip_mean(values):
    return sum(values) / len(values)


def test_reconstruction_rises_with_steps_and_reaches_the_autoencoder(psnrs):
    """PSNR rises with steps (10 < 25 < 50, on every clip) and at 50 steps is within 2 dB of the AE round trip."""
    per_clip = [[psnrs[("ddim", s)][i][0] for s in (10, 25, 50)] for i in range(3)]
    for p10, p25, p50 in per_clip:
        assert p10 < p25 < p50, per_clip
    ae = clip_mean([b for _, b in psnrs[("ddim", 50)]])
    assert clip_mean([p[2] for p in per_clip]) >= ae - 2.0


def test_easyinv_against_ddim_and_stem_reported(psnrs):
    """DRIVE: EasyInv >= DDIM. Measured on the same clips and seeds: 32.10 vs 33.09 dB, so the claim does not
    hold on this world; asserted is what does (EasyInv within 1.5 dB of DDIM, STEM within 7 dB, every run
    above 20 dB per clip), so a regression of either shows. The report states the failure."""
    ddim = clip_mean([a for a, _ in psnrs[("ddim", 50)]])
    easy = clip_mean([a for a, _ in psnrs[("easyinv", 50)]])
    stem = clip_mean([a for a, _ in psnrs[("stem", 50)]])
    assert easy >= ddim - 1.5, (ddim, easy)
    assert stem >= ddim - 7.0, (ddim, stem)
    assert min(a for run in psnrs.values() for a, _ in run) > 20.0
