"""bench/gpu_suite.py at small sizes on the CPU, on the core under test: the script that is to gather every GPU
figure in one call when a GPU is lent must not break unseen. It asserts that every figure ran, not its numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_suite_runs_every_figure_small_on_the_cpu(tmp_path):
    out = tmp_path / "suite.json"
    run = subprocess.run([sys.executable, "-m", "bench.gpu_suite", "--device", "cpu", "--small", "--threads", "1",
                          "--out", str(out)], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    rows = json.loads(out.read_text())["rows"]
    figures = {r["figure"] for r in rows}
    assert {"sampler", "flow", "vram", "invert", "workflow", "video_io", "harmonize", "masks", "tuning",
            "fill"} <= figures
    assert not [r for r in rows if r["metric"] in ("failed", "skipped")], rows
