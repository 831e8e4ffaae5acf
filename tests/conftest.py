"""Shared fixtures: the repository root, the shared data folder, and integration gating.

Integration tests (marker ``integration``) run inside a real ComfyUI: ``COMFYUI_DIR``, or the
core tools/setup_env.sh keeps under the cache folder that ``DRIVE_COMFY_CORE`` names (0.3.64,
the default, or 0.33.0; run pytest with that core's venv, .venv or .venv-0.33). Elsewhere they
skip with the reason, except in CI (``CI=true``), where a skipped integration test is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from comfy_core import comfy_version, core_at_least

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CACHE = REPO_ROOT / os.environ.get("DRIVE_CACHE", ".cache")
CORES = ("0.3.64", "0.33.0")
CORE = os.environ.get("DRIVE_COMFY_CORE", CORES[0])
CACHED_COMFYUI = CACHE / f"ComfyUI-{CORE}"
CACHED_NODE_MODULES = CACHE / "node" / "node_modules"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_configure(config):
    """Point the integration tests at the set-up's ComfyUI and playwright-core unless told otherwise."""
    if CORE not in CORES:
        raise pytest.UsageError(f"DRIVE_COMFY_CORE={CORE!r}: the set-up keeps the cores {', '.join(CORES)}")
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


NOT_FOR_THIS_CORE: list[str] = []


def pytest_collection_modifyitems(config, items):
    """Deselect tests of core nodes an older core lacks (``min_core``); without a ComfyUI, skip the integration tests."""
    if os.environ.get("COMFYUI_DIR"):
        newer = [item for item in items if item.get_closest_marker("min_core")
                 and not core_at_least(item.get_closest_marker("min_core").args[0])]
        if newer:
            config.hook.pytest_deselected(items=newer)
            items[:] = [item for item in items if item not in newer]
            NOT_FOR_THIS_CORE.extend(item.nodeid for item in newer)
        return
    skip = pytest.mark.skip(reason=f"integration test: no ComfyUI ({CACHED_COMFYUI} is absent); run tools/setup_env.sh "
                                   "or set COMFYUI_DIR to a ComfyUI checkout")
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
    where = os.environ.get("COMFYUI_DIR")
    core = f"ComfyUI {comfy_version(where)}" if where else "no ComfyUI"
    terminalreporter.write_line(f"integration tests on {core}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    if NOT_FOR_THIS_CORE:
        terminalreporter.write_line(f"not run on {core}: {len(NOT_FOR_THIS_CORE)} tests of core nodes it lacks "
                                    "(marked min_core; they run on the newer core)")
    import bad_input_catalogue

    if bad_input_catalogue.TALLY:
        terminalreporter.write_line("bad-input catalogue: " + bad_input_catalogue.tally_line())
