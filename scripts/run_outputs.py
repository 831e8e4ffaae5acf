"""What a finished prompt left behind: its files, downloaded, and the numbers its report nodes gave.

Used by the headless runner (``scripts/run_workflow.py``). Standard library only.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from comfy_server import Server

# The ui key under which Edit Report (DRIVE) returns its STRING/FLOAT outputs (nodes/evaluate.py).
REPORT_KEY = "drive_report"
PREVIEW_DIR = "previews"


def collect_files(server: Server, entry: dict, out_dir: Path, previews: bool = False) -> list[Path]:
    """Download the run's output files into ``out_dir``, keeping ComfyUI's sub-folders.

    Saved outputs (type ``output``) always; previews (type ``temp``: Preview Image and the
    like) into ``out_dir/previews`` when ``previews`` is set.
    """
    saved: list[Path] = []
    for node_out in entry.get("outputs", {}).values():
        for items in node_out.values():
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, dict) or "filename" not in item:
                    continue
                kind = item.get("type")
                if kind == "output":
                    target = out_dir / item.get("subfolder", "") / item["filename"]
                elif kind == "temp" and previews:
                    target = out_dir / PREVIEW_DIR / item.get("subfolder", "") / item["filename"]
                else:
                    continue
                if target not in saved:
                    server.download(item, target)
                    saved.append(target)
    return saved


def collect_reports(entry: dict, prompt: dict) -> dict[str, dict]:
    """The numbers and texts report nodes showed: ``{node id: {"node": title, "type": class, name: value}}``.

    Edit Report (DRIVE) gives its summary and headline numbers; Preview Any / text
    previews give their text.
    """
    reports = {}
    for node_id, ui in entry.get("outputs", {}).items():
        node = prompt.get(node_id, {})
        values = {}
        for item in ui.get(REPORT_KEY) or []:
            values.update(item)
        if not values and ui.get("text"):
            values["text"] = "\n".join(str(t) for t in ui["text"])
        if values:
            reports[node_id] = {"node": node.get("_meta", {}).get("title", node.get("class_type", node_id)),
                                "type": node.get("class_type"), **values}
    return reports


def format_reports(reports: dict[str, dict]) -> str:
    """The reports as console lines: one line per number, texts indented below their node."""
    lines = []
    for node_id, report in reports.items():
        lines.append(f"{report['node']} (node {node_id}):")
        for name, value in report.items():
            if name in ("node", "type"):
                continue
            if isinstance(value, str) and "\n" in value:
                lines += [f"    {ln}" for ln in value.splitlines()]
            else:
                lines.append(f"  {name}: {value}")
    return "\n".join(lines)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON through a temporary file, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(json.dumps(_finite(data), indent=1) + "\n")
    os.replace(tmp, path)


def _finite(value):
    """JSON has no inf/nan: write them as the strings "inf", "-inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
