#!/usr/bin/env python3
"""Run a ComfyUI workflow headless and collect its outputs: the pack's main-job command.

    python scripts/run_workflow.py workflows/drive_instance_edit.json --video clip.mp4 \
        --prompt "a silver robotic wolf" --points '[{"x":250,"y":300}]' --out results/

Talks to the ComfyUI at --server; if none answers there, starts one from $COMFYUI_DIR
(with this pack linked in, and with --cpu where torch has no CUDA/MPS/XPU device) and
stops it at the end. Takes UI-format workflows (what the editor saves) or API-format
prompts. --video may be a folder: every clip in it runs, each into its own sub-folder of
--out; with --server given several times the clips are spread over those servers, one
prompt per server at a time. A manifest in --out lets a re-run skip the clips that are
done. Standard library only, so it runs under ComfyUI's own python.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

from comfy_server import DEFAULT_COMFYUI_DIR, DEFAULT_URL, RunError, Server, device_args
from run_batch import Job, Manifest, fingerprint, request_fingerprint, run_jobs
from run_outputs import collect_files, collect_reports, format_reports, write_json
from run_progress import ProgressWatch, duration
from workflow_convert import WorkflowError, ui_to_api, with_prompt_values

ENVIRONMENT = {
    "COMFYUI_URL": f"the ComfyUI to use when no --server is given (default {DEFAULT_URL})",
    "COMFYUI_DIR": "the ComfyUI folder to start when none answers (default: the test set-up's "
                   ".cache/ComfyUI-0.3.64 when it exists)",
    "COMFYUI_PYTHON": "the python that runs ComfyUI when this script starts it (default: this python)",
    "COMFY_EXTRA_ARGS": "more arguments for ComfyUI's main.py when this script starts it, e.g. "
                        "\"--lowvram --extra-model-paths-config my_paths.yaml\" (--cpu is added by itself where "
                        "torch has no GPU)",
}
REPORT_NAME = "report.json"
SERVER_LOG = "comfyui.log"
PROMPT_OPTIONS = ("prompt", "negative", "points", "negative_points", "seed", "set", "previews")
"""The options that change what a run makes (with the workflow, the clip and the --file inputs)."""
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v"}
VIDEO_LOADERS = {"DRIVE_LoadVideo": "video", "LoadVideo": "file"}
TRACKERS = ("DRIVE_TrackObject",)
POSITIVE_INPUTS = ("positive",)
NEGATIVE_INPUTS = ("negative",)
CONDITIONING_INPUTS = ("positive", "negative", "conditioning", "background", "conditioning_1", "conditioning_2",
                       "conditioning_to", "conditioning_from")
PROGRESS_EVERY_S = 15.0


def _nodes_of(prompt: dict, class_types) -> list[str]:
    return [nid for nid, n in prompt.items() if n["class_type"] in class_types]


def _text_encoders_feeding(prompt: dict, input_names: tuple[str, ...]) -> list[str]:
    """Ids of the text encoders whose conditioning reaches any input named like ``input_names``.

    Starts at the nodes that use conditioning (samplers), not at those that pass it on, and walks
    upstream through conditioning nodes (Apply ControlNet, Conditioning Set Mask, ...): from
    such a node it follows its input of the same role, else its ``conditioning`` input. (An
    Apply ControlNet on the inversion prompt has a ``negative`` input too, but it feeds Invert
    Video's ``conditioning``: its prompt is not a negative one.)
    """
    relays = {v[0] for node in prompt.values() for name, v in node["inputs"].items()
              if name in CONDITIONING_INPUTS and isinstance(v, list)}
    found, todo = set(), []
    for nid, node in prompt.items():
        if nid in relays:
            continue
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


def _node_input(prompt: dict, item: str, flag: str) -> tuple[list[str], str, str]:
    """``NODE.input=value`` -> (ids of the nodes NODE names: id, title or type; input name; value)."""
    target, _, value = item.partition("=")
    node_ref, _, name = target.partition(".")
    if not node_ref or not name or not value:
        form = "NODE.input=value" if flag == "--set" else "NODE.input=PATH"
        raise RunError(f"{flag} {item!r}: use {form}, NODE being a node id, title or type of the workflow"
                       + (" (JSON values allowed)" if flag == "--set" else ""))
    ids = [nid for nid, n in prompt.items() if node_ref in (nid, n["class_type"], n.get("_meta", {}).get("title"))]
    if not ids:
        nodes = ", ".join(f"{nid} {n['class_type']}" + (f" '{n['_meta']['title']}'" if n.get("_meta", {}).get("title")
                                                         not in (None, n["class_type"]) else "")
                          for nid, n in prompt.items())
        raise RunError(f"{flag} {item!r}: the workflow has no node {node_ref!r} (an id, title or type); its nodes: "
                       f"{nodes}")
    return ids, name, value


def check_input(prompt: dict, ids: list[str], name: str, value: object, info: dict, flag: str, item: str) -> None:
    """Refuse ``--set`` / ``--file`` ``item`` unless every node it names declares input ``name`` (in ``info``,
    the server's /object_info) and, for ``--set``, ``value`` is among a combo's options or within a number's
    range: a misspelt input would otherwise be ignored without a word and the run go on with the default."""
    for nid in ids:
        kind = prompt[nid]["class_type"]
        schema = info.get(kind)
        if schema is None:
            continue
        declared = {**schema["input"].get("optional", {}), **schema["input"].get("required", {})}
        if name not in declared:
            order = schema.get("input_order", {})
            names = [*order.get("required", []), *order.get("optional", [])] or sorted(declared)
            raise RunError(f"{flag} {item!r}: {kind} (node {nid}) has no input {name!r}; its inputs: "
                           f"{', '.join(names)}")
        if flag != "--set":
            continue
        kind_of_input, options = declared[name][0], declared[name][1] if len(declared[name]) > 1 else {}
        choices = kind_of_input if isinstance(kind_of_input, list) else \
            options.get("options") if kind_of_input == "COMBO" else None
        if choices is not None and value not in choices:
            raise RunError(f"{flag} {item!r}: {value!r} is not one of {kind}.{name}'s options "
                           f"({', '.join(map(str, choices))})")
        if kind_of_input in ("INT", "FLOAT"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RunError(f"{flag} {item!r}: {kind}.{name} takes a number, got {value!r}")
            low, high = options.get("min"), options.get("max")
            if (low is not None and value < low) or (high is not None and value > high):
                raise RunError(f"{flag} {item!r}: {value!r} is outside {kind}.{name}'s range ({low} to {high})")


def apply_overrides(prompt: dict, args: argparse.Namespace, video_name: str | None,
                    files: dict[str, str] | None = None, info: dict | None = None,
                    mask_name: str | None = None) -> dict:
    """Return a copy of ``prompt`` with the command line's overrides applied.

    ``files`` maps each ``--file NODE.input=PATH`` item to the name its upload got. With
    ``info`` (/object_info) each ``--set`` and ``--file`` is checked against the node's inputs.
    ``mask_name`` (the uploaded ``--mask`` video) replaces the trackers, after every other override.
    """
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
        ids, name, value = _node_input(prompt, item, "--set")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        if info is not None:
            check_input(prompt, ids, name, parsed, info, "--set", item)
        for nid in ids:
            prompt[nid]["inputs"][name] = parsed
    for item, uploaded in (files or {}).items():
        ids, name, _ = _node_input(prompt, f"{item}={uploaded}", "--file")
        if info is not None:
            check_input(prompt, ids, name, uploaded, info, "--file", item)
        for nid in ids:
            prompt[nid]["inputs"][name] = uploaded
    if mask_name is not None:
        use_mask_video(prompt, mask_name)
    return prompt


def use_mask_video(prompt: dict, mask_name: str) -> None:
    """Put the mask video ``mask_name`` (white object on black) where each tracker's mask was, in place.

    The tracker's node id becomes a ThresholdMask (0.5, so a lossy mask video is binary again)
    of the mask video's red channel, read by a loader with the clip loader's settings, so its
    frames are the clip's frames; whatever read the tracker's mask reads it unchanged.
    """
    trackers = _nodes_of(prompt, TRACKERS)
    if not trackers:
        raise RunError(f"--mask given, but the workflow has no {' / '.join(TRACKERS)} node to replace")
    loaders = _nodes_of(prompt, VIDEO_LOADERS)
    if [prompt[nid]["class_type"] for nid in loaders] != ["DRIVE_LoadVideo"]:
        raise RunError("--mask needs a workflow with one DRIVE_LoadVideo (its settings load the mask video)")
    loader = {"class_type": "DRIVE_LoadVideo", "inputs": {**prompt[loaders[0]]["inputs"], "video": mask_name},
              "_meta": {"title": "Mask video (--mask)"}}
    for nid in trackers:
        prompt[f"{nid}_mask_video"] = json.loads(json.dumps(loader))
        prompt[f"{nid}_mask_red"] = {"class_type": "ImageToMask",
                                     "inputs": {"image": [f"{nid}_mask_video", 0], "channel": "red"}}
        prompt[nid] = {"class_type": "ThresholdMask", "inputs": {"mask": [f"{nid}_mask_red", 0], "value": 0.5},
                       "_meta": {"title": "Mask from --mask"}}


def execute(server: Server, prompt: dict, timeout: float, extra_data: dict | None = None,
            label: str = "") -> dict:
    """Queue ``prompt``, print where it is (the running node, its step of its total, the time left, from ComfyUI's
    websocket; the queue state without one), and return its /history entry once done."""
    client_id = uuid.uuid4().hex
    payload = {"prompt": prompt, "client_id": client_id}
    if extra_data:
        payload["extra_data"] = extra_data
    names = {nid: node.get("_meta", {}).get("title") or node["class_type"] for nid, node in prompt.items()}
    watch = ProgressWatch(server.url, client_id, names)
    try:
        pid = server.request("/prompt", payload)["prompt_id"]
        watch.prompt_id = pid
        start, last_line, last_print = time.time(), "", 0.0
        while time.time() - start < timeout:
            entry = server.request(f"/history/{pid}").get(pid)
            if entry and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if status.get("status_str") == "error":
                    err = next((d for e, d in status.get("messages", []) if e == "execution_error"), {})
                    raise RunError(f"node {err.get('node_id')} ({err.get('node_type')}) failed: "
                                   f"{err.get('exception_message', 'unknown error').strip()}")
                print(f"{label}  done in {duration(time.time() - start)}", file=sys.stderr)
                return entry
            where = watch.line() or ("running" if server.request("/queue").get("queue_running") else "queued")
            changed = where.split(":")[0] != last_line.split(":")[0]
            if changed or time.time() - last_print >= PROGRESS_EVERY_S:
                print(f"{label}  {duration(time.time() - start)}: {where}", file=sys.stderr)
                last_line, last_print = where, time.time()
            time.sleep(1.0)
        raise RunError(f"the workflow did not finish within {timeout:.0f}s (prompt {pid} is still queued/running)")
    finally:
        watch.close()


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


def jobs_of(video: Path | None, out: Path) -> list[Job]:
    """One job per clip: a folder's clips each into ``out/<clip stem>``, a single clip (or none) into ``out``."""
    clips = clips_of(video)
    if len(clips) == 1:
        return [Job(clips[0].name if clips[0] else "-", clips[0], out)]
    return [Job(clip.name, clip, out / clip.stem) for clip in clips]


def load_workflow(path: Path, server: Server) -> tuple[dict | None, dict, dict]:
    """Read a UI- or API-format workflow: (the UI graph or None, the API prompt, /object_info)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RunError(f"cannot read workflow {path}: {err}") from None
    info = server.request("/object_info", timeout=120)
    if "nodes" in data and "links" in data:
        try:
            return data, ui_to_api(data, info), info
        except WorkflowError as err:
            raise RunError(str(err)) from None
    return None, data.get("prompt", data), info


def _file_items(items: list[str] | None) -> dict[str, Path]:
    files = {}
    for item in items or []:
        target, _, path = item.partition("=")
        if not path or "." not in target:
            raise RunError(f"--file {item!r}: use NODE.input=PATH, e.g. mask_in.image=workflows/inputs/mask.png")
        if not Path(path).is_file():
            raise RunError(f"--file {item!r}: {path} does not exist")
        files[target] = Path(path)
    return files


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    epilog = "environment variables:\n" + "\n".join(f"  {k:<17} {v}" for k, v in ENVIRONMENT.items())
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=epilog,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workflow", type=Path, help="UI- or API-format workflow JSON")
    ap.add_argument("--video", type=Path, help="input clip, or a folder of clips for batch mode")
    ap.add_argument("--prompt", help="text for every encoder wired to a sampler's positive input")
    ap.add_argument("--negative", help="text for every encoder wired to a sampler's negative input")
    ap.add_argument("--points", help='positive clicks for the tracker, e.g. \'[{"x":250,"y":300}]\'')
    ap.add_argument("--negative-points", help="negative clicks for the tracker, same format")
    ap.add_argument("--seed", type=int, help="seed for every seed / noise_seed input")
    ap.add_argument("--set", action="append", metavar="NODE.input=value",
                    help="any other input, by node id, title or type; repeatable")
    ap.add_argument("--file", action="append", metavar="NODE.input=PATH",
                    help="upload PATH (an image, mask or video) into ComfyUI's input folder and give its name to "
                         "that input, e.g. LoadImageMask.image=workflows/inputs/drive_demo_mask.png; repeatable")
    ap.add_argument("--mask", type=Path,
                    help="a mask video of the object (white on black, the clip's frames) used in place of tracking, "
                         "e.g. workflows/inputs/drive_demo_mask.mp4 for the demo clip")
    ap.add_argument("--out", type=Path, default=Path("drive_outputs"),
                    help="folder for the results, the report numbers (report.json) and manifest.json")
    ap.add_argument("--rerun", action="store_true",
                    help="run every clip again, even those manifest.json in --out records as done")
    ap.add_argument("--previews", action="store_true",
                    help="also download preview outputs (Preview Image and the like) into OUT/previews")
    ap.add_argument("--server", "--url", dest="servers", action="append", metavar="URL",
                    help="a ComfyUI to run on; repeat it to spread a folder of clips over several servers "
                         "(default $COMFYUI_URL or " + DEFAULT_URL + ")")
    ap.add_argument("--comfyui-dir", type=Path, default=os.environ.get("COMFYUI_DIR"),
                    help="ComfyUI folder to start when no server answers (default $COMFYUI_DIR)")
    ap.add_argument("--python", default=os.environ.get("COMFYUI_PYTHON", sys.executable),
                    help="python that runs ComfyUI when this script starts it (default $COMFYUI_PYTHON)")
    ap.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait for one clip")
    ap.add_argument("--start-timeout", type=float, default=300, help="seconds to wait for ComfyUI to start")
    args = ap.parse_args(argv)
    args.servers = args.servers or [os.environ.get("COMFYUI_URL", DEFAULT_URL)]
    if args.comfyui_dir is None and (DEFAULT_COMFYUI_DIR / "main.py").is_file():
        args.comfyui_dir = DEFAULT_COMFYUI_DIR
    return args


def _ready_servers(args: argparse.Namespace) -> tuple[list[Server], Server | None]:
    """The servers that answer, and the one this script started (only when a single one was asked for)."""
    servers = [Server(url) for url in args.servers]
    alive = [s for s in servers if s.alive()]
    if len(servers) > 1:
        for s in servers:
            if s not in alive:
                print(f"warning: no ComfyUI answers at {s.url}; running on the others", file=sys.stderr)
        if not alive:
            raise RunError("none of the --server URLs answers; start ComfyUI there first")
        return alive, None
    if alive:
        return alive, None
    if args.comfyui_dir is None:
        raise RunError(f"no ComfyUI answers at {servers[0].url}; start one or set COMFYUI_DIR")
    extra = device_args(args.python, os.environ.get("COMFY_EXTRA_ARGS", "").split())
    servers[0].start(Path(args.comfyui_dir), args.python, args.start_timeout, extra_args=extra)
    return servers, servers[0]


def _stop_on_sigterm() -> None:
    """A SIGTERM (a killed job, a closed terminal) unwinds like Ctrl+C, so a ComfyUI this script started stops too."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _stop_on_sigterm()
    started, status = None, 1
    try:
        jobs = jobs_of(args.video, args.out)
        files = _file_items(args.file)
        if args.mask is not None:
            if len(jobs) > 1:
                raise RunError("--mask is one clip's mask: give --video a single clip, not a folder")
            if not args.mask.is_file():
                raise RunError(f"--mask {args.mask}: no such file")
        manifest = Manifest(args.out)
        options = {k: getattr(args, k) for k in PROMPT_OPTIONS}
        for job in jobs:
            job.request = request_fingerprint(args.workflow, options, job.clip,
                                              {**files, **({"--mask": args.mask} if args.mask else {})})
        if not args.rerun:
            for job in [job for job in jobs if manifest.done_as_requested(job)]:
                print(f"[{job.key}] done before with the same workflow and options (manifest {manifest.path}): "
                      "skipped; --rerun runs it again", file=sys.stderr)
                jobs.remove(job)
            if not jobs:
                return 0
        servers, started = _ready_servers(args)
        ui, base_prompt, info = load_workflow(args.workflow, servers[0])
        print_lock = threading.Lock()
        uploads: dict[tuple[str, Path], str] = {}

        def upload(server: Server, path: Path) -> str:
            if (server.url, path) not in uploads:
                uploads[(server.url, path)] = server.upload(path)
            return uploads[(server.url, path)]

        def run_one(server: Server, job: Job) -> None:
            label = f"[{job.key}]" if len(jobs) > 1 else ""
            name = upload(server, job.clip) if job.clip is not None else None
            prompt = apply_overrides(base_prompt, args, name, {k: upload(server, p) for k, p in files.items()},
                                     mask_name=upload(server, args.mask) if args.mask else None)
            extra = {"extra_pnginfo": {"workflow": with_prompt_values(ui, prompt, info)}} if ui else None
            print(f"{label} running {args.workflow.name} on {server.url}".strip(), file=sys.stderr)
            entry = execute(server, prompt, args.timeout, extra, label)
            job.outputs = collect_files(server, entry, job.out_dir, args.previews)
            reports = collect_reports(entry, prompt)
            if reports:
                write_json(job.out_dir / REPORT_NAME, reports)
                job.outputs.append(job.out_dir / REPORT_NAME)
            with print_lock:
                if reports:
                    print(format_reports(reports), file=sys.stderr)
                for path in job.outputs:
                    print(path)

        for job in jobs:
            predicted = apply_overrides(base_prompt, args, job.clip.name if job.clip else None,
                                        {k: p.name for k, p in files.items()}, info,
                                        args.mask.name if args.mask else None)
            job.fingerprint = fingerprint(predicted, job.clip)
        pending = [job for job in jobs if args.rerun or not manifest.is_done(job)]
        for job in jobs:
            if job not in pending:
                print(f"[{job.key}] done before (manifest {manifest.path}): skipped; --rerun runs it again",
                      file=sys.stderr)
        failures = run_jobs(pending, servers, run_one, manifest)
        if len(failures) == 1 and len(jobs) == 1:
            print(f"error: {failures[0].split(': ', 1)[1]}", file=sys.stderr)
        elif failures:
            print(f"error: {len(failures)} of {len(jobs)} clip(s) failed:\n  " + "\n  ".join(failures),
                  file=sys.stderr)
        status = 1 if failures else 0
        return status
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if started is not None:
            if status != 0:
                keep_log(started, args.out)
            started.stop()


def keep_log(server: Server, out: Path) -> None:
    """Copy the log of a ComfyUI the runner started into ``out`` before it goes with the server's folder."""
    log = server.workdir / "comfy.log" if server.workdir is not None else None
    if log is None or not log.is_file():
        return
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(log, out / SERVER_LOG)
    print(f"ComfyUI's log of this run: {out / SERVER_LOG}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
