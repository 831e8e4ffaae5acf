"""Shared fixtures: the repository root, the shared data folder, and integration gating.

Integration tests (marker ``integration``) run inside a real ComfyUI: ``COMFYUI_DIR``, or the
one tools/setup_env.sh keeps under the cache folder. Elsewhere they skip with the reason,
except in CI (``CI=true``), where a skipped integration test is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CACHE = REPO_ROOT / os.environ.get("DRIVE_CACHE", ".cache")
CACHED_COMFYUI = CACHE / "ComfyUI-0.3.64"
CACHED_NODE_MODULES = CACHE / "node" / "node_modules"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_configure(config):
    """Point the integration tests at the set-up's ComfyUI and playwright-core unless told otherwise."""
    if not os.environ.get("COMFYUI_DIR") and (CACHED_COMFYUI / "main.py").is_file():
        os.environ["COMFYUI_DIR"] = str(CACHED_COMFYUI)
    if not os.environ.get("NODE_PATH") and CACHED_NODE_MODULES.is_dir():
        os.environ["NODE_PATH"] = str(CACHED_NODE_MODULES)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The tests run tiny models: on one thread they are fastest, and on a shared 2-core
    machine two OpenMP threads spin against each other (seen 10-40x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (reference data lives beside the checkout, not in it)")
    return SHARED_DATA


def pytest_collection_modifyitems(config, items):
    if os.environ.get("COMFYUI_DIR"):
        return
    skip = pytest.mark.skip(reason="integration test: no ComfyUI; run tools/setup_env.sh or set COMFYUI_DIR "
                                   "to a ComfyUI 0.3.64 checkout")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI an integration test may not skip: the skip becomes a failure that keeps its reason."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and "integration" in item.keywords:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"integration test skipped in CI (CI=true), which counts as a failure: {reason}"


def pytest_terminal_summary(terminalreporter):
    """One line with the integration tally, so a run that quietly ran none of them shows it."""
    counts = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        counts[outcome] = sum(1 for r in terminalreporter.stats.get(outcome, [])
                              if getattr(r, "when", "call") in ("call", "setup")
                              and "integration" in getattr(r, "keywords", {}))
    terminalreporter.write_line("integration tests: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    import bad_input_catalogue

    if bad_input_catalogue.TALLY:
        terminalreporter.write_line("bad-input catalogue: " + bad_input_catalogue.tally_line())
