#!/usr/bin/env python3
"""Run a ComfyUI workflow headless and collect its outputs: the pack's main-job command.

    python scripts/run_workflow.py workflows/drive_instance_edit.json --video clip.mp4 \
        --prompt "a silver robotic wolf" --points '[{"x":250,"y":300}]' --out results/

Talks to the ComfyUI at --url; if none answers there, starts one from $COMFYUI_DIR
(with this pack linked in) and stops it at the end. Takes UI-format workflows (what the
editor saves) or API-format prompts. --video may be a folder: every clip in it runs in
turn (batch mode), each into its own sub-folder of --out. Standard library only, so it
runs under ComfyUI's own python.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from comfy_server import RunError, Server
from workflow_convert import WorkflowError, ui_to_api

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v"}
VIDEO_LOADERS = {"DRIVE_LoadVideo": "video", "LoadVideo": "file"}
POSITIVE_INPUTS = ("positive",)
NEGATIVE_INPUTS = ("negative",)
PROGRESS_EVERY_S = 15.0


def load_prompt(path: Path, server: Server) -> dict:
    """Read a UI- or API-format workflow file and return an API prompt."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RunError(f"cannot read workflow {path}: {err}") from None
    if "nodes" in data and "links" in data:
        try:
            return ui_to_api(data, server.request("/object_info", timeout=120))
        except WorkflowError as err:
            raise RunError(str(err)) from None
    return data.get("prompt", data)


def _nodes_of(prompt: dict, class_types) -> list[str]:
    return [nid for nid, n in prompt.items() if n["class_type"] in class_types]


def _text_encoders_feeding(prompt: dict, input_names: tuple[str, ...]) -> list[str]:
    """Ids of the text encoders whose conditioning reaches any input named like ``input_names``.

    Walks upstream through conditioning nodes (Apply ControlNet, Conditioning Set Mask, ...):
    from such a node it follows its input of the same role, else its ``conditioning`` input.
    """
    found, todo = set(), []
    for node in prompt.values():
        todo += [(v[0], name) for name, v in node["inputs"].items() if name in input_names and isinstance(v, list)]
    seen = set()
    while todo:
        nid, role = todo.pop()
        src = prompt.get(nid)
        if src is None or (nid, role) in seen:
            continue
        seen.add((nid, role))
        if isinstance(src["inputs"].get("text"), str):
            found.add(nid)
            continue
        for name in (role, "conditioning", "conditioning_1", "conditioning_to"):
            link = src["inputs"].get(name)
            if isinstance(link, list):
                todo.append((link[0], role))
                break
    return sorted(found)


def apply_overrides(prompt: dict, args: argparse.Namespace, video_name: str | None) -> dict:
    """Return a copy of ``prompt`` with the command line's overrides applied."""
    prompt = json.loads(json.dumps(prompt))
    if video_name is not None:
        loaders = _nodes_of(prompt, VIDEO_LOADERS)
        if not loaders:
            raise RunError("--video given, but the workflow has no DRIVE_LoadVideo / LoadVideo node")
        for nid in loaders:
            prompt[nid]["inputs"][VIDEO_LOADERS[prompt[nid]["class_type"]]] = video_name
    for flag, inputs in (("prompt", POSITIVE_INPUTS), ("negative", NEGATIVE_INPUTS)):
        text = getattr(args, flag)
        if text is None:
            continue
        encoders = _text_encoders_feeding(prompt, inputs)
        if not encoders:
            raise RunError(f"--{flag} given, but no text encoder feeds a '{inputs[0]}' input")
        for nid in encoders:
            prompt[nid]["inputs"]["text"] = text
    for flag, name in (("points", "positive_points"), ("negative_points", "negative_points")):
        value = getattr(args, flag)
        if value is None:
            continue
        trackers = [nid for nid, n in prompt.items() if name in n["inputs"]]
        if not trackers:
            raise RunError(f"--{flag.replace('_', '-')} given, but no node in the workflow takes {name}")
        for nid in trackers:
            prompt[nid]["inputs"][name] = value
    if args.seed is not None:
        for node in prompt.values():
            for name in ("seed", "noise_seed"):
                if isinstance(node["inputs"].get(name), int):
                    node["inputs"][name] = args.seed
    for item in args.set or []:
        target, _, value = item.partition("=")
        node_ref, _, name = target.partition(".")
        ids = [nid for nid, n in prompt.items()
               if node_ref in (nid, n["class_type"], n.get("_meta", {}).get("title"))]
        if not ids or not name or not value:
            raise RunError(f"--set {item!r}: use NODE.input=value, NODE being a node id, title or type "
                           "(JSON values allowed)")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        for nid in ids:
            prompt[nid]["inputs"][name] = parsed
    return prompt


def execute(server: Server, prompt: dict, timeout: float) -> dict:
    """Queue ``prompt``, print progress, and return its /history entry once done."""
    queued = server.request("/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})
    pid = queued["prompt_id"]
    start, last_state, last_print = time.time(), "", 0.0
    while time.time() - start < timeout:
        entry = server.request(f"/history/{pid}").get(pid)
        if entry and entry.get("status", {}).get("completed") is not None:
            status = entry["status"]
            if status.get("status_str") == "error":
                err = next((d for e, d in status.get("messages", []) if e == "execution_error"), {})
                raise RunError(f"node {err.get('node_id')} ({err.get('node_type')}) failed: "
                               f"{err.get('exception_message', 'unknown error').strip()}")
            print(f"  done in {time.time() - start:.0f}s", file=sys.stderr)
            return entry
        state = "running" if server.request("/queue").get("queue_running") else "queued"
        if state != last_state or time.time() - last_print >= PROGRESS_EVERY_S:
            print(f"  {state}, {time.time() - start:.0f}s", file=sys.stderr)
            last_state, last_print = state, time.time()
        time.sleep(1.0)
    raise RunError(f"the workflow did not finish within {timeout:.0f}s (prompt {pid} is still queued/running)")


def collect_outputs(server: Server, entry: dict, out_dir: Path) -> list[Path]:
    """Download every file the run produced into ``out_dir``, keeping ComfyUI's sub-folders."""
    saved = []
    for node_out in entry.get("outputs", {}).values():
        for items in node_out.values():
            if not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict) or "filename" not in item or item.get("type") != "output":
                    continue
                query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
                target = out_dir / item.get("subfolder", "") / item["filename"]
                if target in saved:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with urllib.request.urlopen(f"{server.url}/view?{query}", timeout=300) as resp, \
                        open(target, "wb") as fh:
                    shutil.copyfileobj(resp, fh)
                saved.append(target)
    return saved


def upload_video(server: Server, path: Path) -> str:
    """Upload a clip into ComfyUI's input folder; returns the name the loader widget takes."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue"
            f"\r\n--{boundary}--\r\n").encode()
    body = head + path.read_bytes() + tail
    req = urllib.request.Request(server.url + "/upload/image", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            info = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raise RunError(f"uploading {path} failed (HTTP {err.code}); files over ComfyUI's upload cap "
                       "(100 MB by default, --max-upload-size) must be copied into ComfyUI/input") from None
    return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else info["name"]


def clips_of(video: Path | None) -> list[Path | None]:
    if video is None:
        return [None]
    if video.is_dir():
        clips = sorted(p for p in video.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not clips:
            raise RunError(f"no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) in {video}")
        return clips
    if not video.is_file():
        raise RunError(f"--video {video} does not exist")
    return [video]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workflow", type=Path, help="UI- or API-format workflow JSON")
    ap.add_argument("--video", type=Path, help="input clip, or a folder of clips for batch mode")
    ap.add_argument("--prompt", help="text for every encoder wired to a sampler's positive input")
    ap.add_argument("--negative", help="text for every encoder wired to a sampler's negative input")
    ap.add_argument("--points", help='positive clicks for the tracker, e.g. \'[{"x":250,"y":300}]\'')
    ap.add_argument("--negative-points", help="negative clicks for the tracker, same format")
    ap.add_argument("--seed", type=int, help="seed for every seed / noise_seed input")
    ap.add_argument("--set", action="append", metavar="NODE.input=value",
                    help="any other input, by node id, title or type; repeatable")
    ap.add_argument("--out", type=Path, default=Path("drive_outputs"), help="folder for the results")
    ap.add_argument("--url", default=os.environ.get("COMFYUI_URL", "http://127.0.0.1:8188"))
    ap.add_argument("--comfyui-dir", type=Path, default=os.environ.get("COMFYUI_DIR"),
                    help="ComfyUI checkout to start when none answers at --url (default $COMFYUI_DIR)")
    ap.add_argument("--python", default=os.environ.get("COMFYUI_PYTHON", sys.executable),
                    help="python that runs ComfyUI when this script starts it")
    ap.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait for one clip")
    ap.add_argument("--start-timeout", type=float, default=300, help="seconds to wait for ComfyUI to start")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = Server(args.url)
    try:
        clips = clips_of(args.video)
        if not server.alive():
            if args.comfyui_dir is None:
                raise RunError(f"no ComfyUI answers at {args.url}; start one or set COMFYUI_DIR")
            server.start(Path(args.comfyui_dir), args.python, args.start_timeout,
                         extra_args=os.environ.get("COMFY_EXTRA_ARGS", "").split())
        base_prompt = load_prompt(args.workflow, server)
        for clip in clips:
            name = upload_video(server, clip) if clip is not None else None
            out_dir = args.out / clip.stem if clip is not None and len(clips) > 1 else args.out
            print(f"running {args.workflow.name}" + (f" on {clip.name}" if clip else ""), file=sys.stderr)
            entry = execute(server, apply_overrides(base_prompt, args, name), args.timeout)
            for path in collect_outputs(server, entry, out_dir):
                print(path)
        return 0
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
