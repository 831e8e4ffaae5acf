"""Masked CFG keeps ComfyUI's cfg-1 shortcut wherever the result cannot differ (issue 18).

Runs ``cfg1_inprocess.py`` in a subprocess (ComfyUI imported in-process, a tiny SD1.5-shaped
UNet): the uncond pass is skipped at cfg 1 without a mask at every guided step, kept at
unguided steps, under a mask, for stacked patches and for cfg other than 1, with the latents
of the old always-two-pass path (to float tolerance where a pass is skipped, bit for bit
elsewhere); the one-box sampler with one prompt on both inputs runs one pass per step; and
auto chunking (max_grids_per_call 0) takes the largest chunk ComfyUI's memory estimate fits,
counting only the branches that run.
"""

from __future__ import annotations

import pytest

from comfy_inprocess import run_checks_script

pytestmark = pytest.mark.integration


def test_uncond_pass_runs_exactly_where_the_result_reads_it():
    run_checks_script("cfg1_inprocess.py")
