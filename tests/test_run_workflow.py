"""The headless runner's pieces that need no ComfyUI: flags, overrides, device choice, batch, reports."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import run_workflow
from comfy_server import RunError, Server, device_args
from run_batch import Job, Manifest, fingerprint, request_fingerprint, run_jobs
from run_outputs import collect_reports, format_reports, write_json
from workflow_convert import ui_to_api, with_prompt_values

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
INFO = json.loads((ROOT / "tests" / "workflows" / "object_info.json").read_text())


def _args(**over) -> argparse.Namespace:
    base = dict(prompt=None, negative=None, points=None, negative_points=None, seed=None, set=None)
    return argparse.Namespace(**{**base, **over})


def test_help_lists_every_environment_variable_the_scripts_read():
    pattern = r"os\.environ(?:\.get\(|\[)\s*[\"'](\w+)[\"']"
    names = {name for path in SCRIPTS.glob("*.py") for name in re.findall(pattern, path.read_text())}
    assert names >= {"COMFYUI_URL", "COMFYUI_DIR", "COMFYUI_PYTHON", "COMFY_EXTRA_ARGS"}
    out = subprocess.run([sys.executable, str(SCRIPTS / "run_workflow.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    env_part = out.split("environment variables:")[1]
    for name in names:
        assert name in env_part, f"--help does not list {name}"


def _fake_python(tmp_path: Path, answer: str) -> str:
    script = tmp_path / f"python_{answer}"
    script.write_text(f"#!/bin/sh\necho {answer}\n")
    script.chmod(0o755)
    return str(script)


def test_cpu_flag_is_added_only_where_torch_has_no_device(tmp_path, capsys):
    assert device_args(_fake_python(tmp_path, "False"), ["--lowvram"]) == ["--lowvram", "--cpu"]
    assert "starting ComfyUI with --cpu" in capsys.readouterr().err
    assert device_args(_fake_python(tmp_path, "True"), ["--lowvram"]) == ["--lowvram"]
    assert device_args(_fake_python(tmp_path, "False"), ["--cpu"]) == ["--cpu"]


def test_a_python_without_torch_names_the_variable(tmp_path):
    broken = tmp_path / "python_broken"
    broken.write_text("#!/bin/sh\necho 'No module named torch' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(RunError, match="COMFYUI_PYTHON"):
        device_args(str(broken))


def test_this_torch_probe_runs():
    """The probe itself runs under a real torch (the CPU test machine: --cpu is added)."""
    import torch

    args = device_args(sys.executable)
    assert ("--cpu" in args) == (not torch.cuda.is_available())


def _instance_edit() -> tuple[dict, dict]:
    ui = json.loads((ROOT / "workflows" / "drive_instance_edit.json").read_text())
    return ui, ui_to_api(ui, INFO)


def test_file_overrides_set_the_uploaded_name():
    prompt = json.loads((ROOT / "tests" / "workflows" / "patch_nodes_ksampler.api.json").read_text())
    out = run_workflow.apply_overrides(prompt, _args(), None, {"LoadImageMask.image": "uploaded_mask.png"})
    masks = [n for n in out.values() if n["class_type"] == "LoadImageMask"]
    assert masks and all(n["inputs"]["image"] == "uploaded_mask.png" for n in masks)
    assert prompt != out, "the input prompt must stay as it was"
    with pytest.raises(RunError, match="the workflow has no node 'NoSuchNode'.*its nodes: 1 "):
        run_workflow.apply_overrides(prompt, _args(), None, {"NoSuchNode.image": "x.png"})


def test_file_flag_refuses_a_missing_file(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        run_workflow._file_items([f"LoadImageMask.image={tmp_path / 'nope.png'}"])
    with pytest.raises(RunError, match="NODE.input=PATH"):
        run_workflow._file_items(["just_a_path.png"])


def test_embedded_ui_workflow_carries_the_values_that_ran():
    """with_prompt_values is the inverse of the converter's widget half: the UI graph gives the overridden prompt."""
    ui, prompt = _instance_edit()
    args = _args(prompt="a red ball", seed=99, set=["DRIVE_LoadVideo.frame_load_cap=9", "DRIVE_InvertVideo.steps=4"])
    ran = run_workflow.apply_overrides(prompt, args, "clip.mp4")
    embedded = with_prompt_values(ui, ran, INFO)
    assert ui_to_api(embedded, INFO) == ran
    assert ui != embedded and ui_to_api(ui, INFO) == prompt, "the workflow read from disk must not change"


def test_manifest_skips_only_done_jobs_with_their_files(tmp_path):
    out = tmp_path / "out"
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"x")
    job = Job("a.mp4", clip, out / "a", fingerprint({"1": {}}, clip))
    manifest = Manifest(out)
    assert not manifest.is_done(job)
    job.outputs = [out / "a" / "result.mp4"]
    job.outputs[0].parent.mkdir(parents=True)
    job.outputs[0].write_bytes(b"video")
    manifest.record(job, "done", server="http://s", seconds=1.0)
    again = Manifest(out)
    assert again.is_done(Job("a.mp4", clip, out / "a", job.fingerprint))
    assert not again.is_done(Job("a.mp4", clip, out / "a", fingerprint({"1": {"x": 1}}, clip))), "settings changed"
    job.outputs[0].unlink()
    assert not again.is_done(Job("a.mp4", clip, out / "a", job.fingerprint)), "its file is gone"
    assert json.loads((out / "manifest.json").read_text())["jobs"]["a.mp4"]["server"] == "http://s"


class _FakeServer(Server):
    def __init__(self, url: str, fail: set[str] = frozenset()):
        super().__init__(url)
        self.fail, self.ran, self.busy, self.most_busy = fail, [], 0, 0

    def alive(self) -> bool:
        return True


def test_jobs_spread_over_servers_one_at_a_time_and_failures_are_not_retried(tmp_path):
    servers = [_FakeServer("http://a", fail={"c2"}), _FakeServer("http://b", fail={"c2"})]
    lock = threading.Lock()

    def run_one(server: _FakeServer, job: Job) -> None:
        with lock:
            server.busy += 1
            server.most_busy = max(server.most_busy, server.busy)
        time.sleep(0.05)
        with lock:
            server.busy -= 1
            server.ran.append(job.key)
        if job.key in server.fail:
            raise RunError("node 3 failed")

    jobs = [Job(f"c{i}", None, tmp_path / f"c{i}") for i in range(6)]
    manifest = Manifest(tmp_path)
    failures = run_jobs(jobs, servers, run_one, manifest)
    assert sorted(servers[0].ran + servers[1].ran) == sorted(j.key for j in jobs), "each clip runs exactly once"
    assert servers[0].ran and servers[1].ran, "both servers got clips"
    assert all(s.most_busy == 1 for s in servers), "one prompt per server at a time"
    assert len(failures) == 1 and failures[0].startswith("c2: node 3 failed")
    assert manifest.jobs["c2"]["status"] == "failed" and manifest.jobs["c0"]["status"] == "done"


def test_reports_print_and_write_edit_report_numbers(tmp_path):
    entry = {"outputs": {"7": {"drive_report": [{"summary": "background PSNR 31.2 dB\nwarp error 0.001",
                                                 "background_psnr": 31.25, "clip_t": -1.0}]},
                         "9": {"text": ["the summary"]}, "5": {"images": [{"filename": "a.png"}]}}}
    prompt = {"7": {"class_type": "DRIVE_EditReport", "_meta": {"title": "Edit Report (DRIVE)"}},
              "9": {"class_type": "PreviewAny", "_meta": {"title": "Preview Any"}}}
    reports = collect_reports(entry, prompt)
    assert set(reports) == {"7", "9"}
    assert reports["7"]["background_psnr"] == 31.25 and reports["9"]["text"] == "the summary"
    text = format_reports(reports)
    assert "Edit Report (DRIVE) (node 7):" in text and "background_psnr: 31.25" in text and "    warp error 0.001" in text
    write_json(tmp_path / "report.json", {"x": float("inf"), **reports})
    back = json.loads((tmp_path / "report.json").read_text())
    assert back["x"] == "inf" and back["7"]["clip_t"] == -1.0
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"], "no temporary file is left"


def test_server_stop_removes_the_folder_it_made(tmp_path, monkeypatch):
    """A fake main.py that answers like ComfyUI: start() makes a temp folder, stop() removes it."""
    comfy = tmp_path / "comfy"
    comfy.mkdir()
    (comfy / "custom_nodes").mkdir()
    (comfy / "main.py").write_text(
        "import sys, http.server\n"
        "port = int(sys.argv[sys.argv.index('--port') + 1])\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(b'{}')\n"
        "    def log_message(self, *a): pass\n"
        "http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()\n")
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp_root))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = Server(f"http://127.0.0.1:{port}")
    server.start(comfy, sys.executable, 30)
    made = list(temp_root.iterdir())
    assert len(made) == 1 and (made[0] / "custom_nodes" / "comfyui-drive").is_symlink()
    server.stop()
    assert list(temp_root.iterdir()) == [], "the runner's temporary folder is left behind"


def test_every_set_and_file_is_checked_against_the_nodes_inputs():
    """A misspelt input, an unknown node, a value out of range or not among the options: refused before queueing."""
    _, prompt = _instance_edit()

    def run(*sets: str, files: dict | None = None) -> dict:
        return run_workflow.apply_overrides(prompt, _args(set=list(sets)), None, files, INFO)

    assert next(n for n in run("DRIVE_LoadVideo.frame_load_cap=9").values()
                if n["class_type"] == "DRIVE_LoadVideo")["inputs"]["frame_load_cap"] == 9
    with pytest.raises(RunError, match=r"DRIVE_LoadVideo \(node 1\) has no input 'frame_cap'; its inputs: video, "
                                       r"frame_load_cap, skip_first_frames"):
        run("DRIVE_LoadVideo.frame_cap=9")
    with pytest.raises(RunError, match=r"the workflow has no node 'DRIVE_LoadVidoe'.*its nodes: 1 DRIVE_LoadVideo"):
        run("DRIVE_LoadVidoe.frame_load_cap=9")
    with pytest.raises(RunError, match=r"-1 is outside DRIVE_LoadVideo.frame_load_cap's range \(0 to 1000000\)"):
        run("DRIVE_LoadVideo.frame_load_cap=-1")
    with pytest.raises(RunError, match=r"DRIVE_LoadVideo.frame_load_cap takes a number, got 'nine'"):
        run("DRIVE_LoadVideo.frame_load_cap=nine")
    with pytest.raises(RunError, match=r"'huge' is not one of DRIVE_LoadVideo.size_policy's options \(keep, "):
        run("DRIVE_LoadVideo.size_policy=huge")
    with pytest.raises(RunError, match=r"has no input 'img'"):
        run(files={"DRIVE_LoadVideo.img": "uploaded.mp4"})


def test_the_same_command_again_is_skipped_before_any_server_starts(tmp_path, monkeypatch, capsys):
    """A done clip with the same workflow, options and files is skipped with --rerun named; no server is touched."""
    workflow, clip, out = ROOT / "workflows" / "mask_only.json", tmp_path / "clip.mp4", tmp_path / "out"
    clip.write_bytes(b"a clip")
    argv = [str(workflow), "--video", str(clip), "--out", str(out), "--points", '[{"x": 1, "y": 2}]']
    args = run_workflow.parse_args(argv)
    job = run_workflow.jobs_of(args.video, args.out)[0]
    job.request = request_fingerprint(workflow, {k: getattr(args, k) for k in run_workflow.PROMPT_OPTIONS}, clip, {})
    (out / "result.mp4").parent.mkdir(parents=True, exist_ok=True)
    (out / "result.mp4").write_bytes(b"made")
    job.outputs = [out / "result.mp4"]
    Manifest(out).record(job, "done", server="http://s", seconds=1.0)

    def no_server(*a, **k):
        raise AssertionError("a server was started or asked for a run that was done before")

    monkeypatch.setattr(run_workflow, "_ready_servers", no_server)
    assert run_workflow.main(argv) == 0
    err = capsys.readouterr().err
    assert "done before with the same workflow and options" in err and "--rerun runs it again" in err
    with pytest.raises(AssertionError, match="a server was started"):
        run_workflow.main(argv[:-1] + ['[{"x": 5, "y": 2}]'])          # another click: it runs again


def test_a_failed_run_keeps_the_log_of_the_comfyui_it_started(tmp_path, capsys):
    server = Server("http://127.0.0.1:1")
    server.workdir = tmp_path / "server"
    server.workdir.mkdir()
    (server.workdir / "comfy.log").write_text("Traceback: the node failed\n")
    run_workflow.keep_log(server, tmp_path / "out")
    kept = tmp_path / "out" / run_workflow.SERVER_LOG
    assert kept.read_text() == "Traceback: the node failed\n" and str(kept) in capsys.readouterr().err


def test_progress_line_names_the_node_its_step_and_the_time_left(monkeypatch):
    from run_progress import ProgressWatch

    clock = [100.0]
    monkeypatch.setattr("run_progress.time.time", lambda: clock[0])
    watch = ProgressWatch("http://127.0.0.1:1", "me", {"16": "Masked-CFG Sampler (DRIVE)"})   # nothing listens
    watch.prompt_id = "p1"
    assert watch.line() is None
    watch.handle({"type": "executing", "data": {"node": "16", "prompt_id": "p1"}})
    assert watch.line() == "node 16 Masked-CFG Sampler (DRIVE)"
    clock[0] += 30
    watch.handle({"type": "progress", "data": {"value": 10, "max": 50, "node": "16", "prompt_id": "p1"}})
    assert watch.line() == "node 16 Masked-CFG Sampler (DRIVE): step 10 of 50, about 2 min 00 s left"
    watch.handle({"type": "progress", "data": {"value": 3, "max": 4, "node": "9", "prompt_id": "another"}})
    assert watch.line().startswith("node 16"), "another prompt's messages are not this one's"


def test_mask_video_takes_the_trackers_place_with_the_clips_frames():
    prompt = json.loads((ROOT / "tests" / "workflows" / "drive_instance_edit.api.json").read_text())
    loader = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_LoadVideo")
    tracker = next(nid for nid, n in prompt.items() if n["class_type"] == "DRIVE_TrackObject")
    readers = {nid: name for nid, n in prompt.items() for name, v in n["inputs"].items() if v == [tracker, 0]}
    out = run_workflow.apply_overrides(prompt, _args(set=["DRIVE_LoadVideo.frame_load_cap=9"],
                                                     points='[{"x": 1, "y": 2}]'), "clip.mp4", {}, INFO, "m.mp4")
    assert out[tracker] == {"class_type": "ThresholdMask", "inputs": {"mask": [f"{tracker}_mask_red", 0], "value": 0.5},
                            "_meta": {"title": "Mask from --mask"}}
    assert out[f"{tracker}_mask_red"]["inputs"] == {"image": [f"{tracker}_mask_video", 0], "channel": "red"}
    mask_loader = out[f"{tracker}_mask_video"]["inputs"]
    assert mask_loader == {**out[loader]["inputs"], "video": "m.mp4"} and mask_loader["frame_load_cap"] == 9
    assert all(out[nid]["inputs"][name] == [tracker, 0] for nid, name in readers.items()), "readers are unchanged"
    assert prompt[tracker]["class_type"] == "DRIVE_TrackObject", "the given prompt is not mutated"


def test_mask_video_needs_a_tracker_and_one_clip(tmp_path):
    prompt = {"1": {"class_type": "DRIVE_LoadVideo", "inputs": {"video": "a.mp4"}}}
    with pytest.raises(RunError, match="no DRIVE_TrackObject"):
        run_workflow.apply_overrides(prompt, _args(), None, mask_name="m.mp4")
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (clips / name).write_bytes(b"x")
    code = run_workflow.main([str(ROOT / "workflows" / "mask_only.json"), "--video", str(clips), "--mask",
                              str(ROOT / "workflows" / "inputs" / "drive_demo_mask.mp4"), "--out", str(tmp_path / "o")])
    assert code == 1
