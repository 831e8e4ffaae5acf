"""A ComfyUI server reachable over HTTP, started and stopped here when none answers.

Run alone (``python scripts/comfy_server.py``) it starts the set-up's ComfyUI with the pack
and keeps it running until Ctrl+C, so repeated ``run_workflow.py`` calls skip ComfyUI's
start and reuse its loaded models.

Shared by the headless runner (``scripts/run_workflow.py``) and the integration tests'
fixture (``tests/integration/conftest.py``): ``Server(url).start(comfy_dir, python, ...)``
links this pack into a fresh custom_nodes folder, writes an extra_model_paths.yaml,
launches ``main.py`` on the URL's port and waits until it answers; ``stop()`` ends it and
removes the temporary folder it made. Standard library only, so it runs under ComfyUI's own python.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Sequence

PACK_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "http://127.0.0.1:8188"
DEFAULT_COMFYUI_DIR = PACK_DIR / ".cache" / "ComfyUI-0.3.64"
PACK_LINK_NAME = "comfyui-drive"
# Asks ComfyUI's python whether its torch sees an accelerator ComfyUI can use without --cpu.
_ACCELERATOR_PROBE = (
    "import torch\n"
    "mps = getattr(torch.backends, 'mps', None)\n"
    "xpu = getattr(torch, 'xpu', None)\n"
    "print(torch.cuda.is_available() or bool(mps and mps.is_available()) or bool(xpu and xpu.is_available()))")


def device_args(python: str, extra_args: Sequence[str] = ()) -> list[str]:
    """``extra_args`` plus ``--cpu`` when ``python``'s torch has no CUDA, MPS or XPU device (and none is forced).

    ComfyUI itself assumes CUDA unless told otherwise and stops with "Torch not compiled
    with CUDA enabled" on a CPU-only install.
    """
    args = list(extra_args)
    if any(a in args for a in ("--cpu", "--directml", "--cuda-device")):
        return args
    try:
        probe = subprocess.run([python, "-c", _ACCELERATOR_PROBE], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RunError(f"cannot run ComfyUI's python {python!r}: {err}; set COMFYUI_PYTHON") from None
    if probe.returncode != 0:
        raise RunError(f"ComfyUI's python {python!r} cannot import torch (set COMFYUI_PYTHON to the python "
                       f"that runs ComfyUI):\n{probe.stderr[-1500:]}")
    if probe.stdout.strip().splitlines()[-1:] == ["False"]:
        print("no CUDA/MPS/XPU device in this torch: starting ComfyUI with --cpu", file=sys.stderr)
        args.append("--cpu")
    return args


class RunError(RuntimeError):
    """A failure the user can act on; printed without a traceback."""


class Server:
    """A ComfyUI reachable over HTTP, possibly one this script started."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.process: subprocess.Popen | None = None
        self.workdir: Path | None = None
        self._own_workdir = False
        self._log = None

    def request(self, path: str, payload: dict | None = None, timeout: float = 60) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            raise RunError(f"{path} answered HTTP {err.code}: {_describe_rejection(detail)}") from None
        return json.loads(body) if body else {}

    def upload(self, path: Path) -> str:
        """Upload a file (video, image, mask) into ComfyUI's input folder; returns the name a loader widget takes."""
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode()
        tail = (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue"
                f"\r\n--{boundary}--\r\n").encode()
        try:
            body = head + path.read_bytes() + tail
        except OSError as err:
            raise RunError(f"cannot read {path}: {err.strerror}") from None
        req = urllib.request.Request(self.url + "/upload/image", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                info = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise RunError(f"uploading {path} to {self.url} failed (HTTP {err.code}); files over ComfyUI's upload "
                           "cap (100 MB by default, --max-upload-size) must be copied into ComfyUI/input") from None
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else info["name"]

    def download(self, item: dict, target: Path) -> None:
        """Save one output file (``{"filename", "subfolder", "type"}`` from /history) at ``target``."""
        query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".partial")
        with urllib.request.urlopen(f"{self.url}/view?{query}", timeout=300) as resp, open(tmp, "wb") as fh:
            shutil.copyfileobj(resp, fh)
        os.replace(tmp, target)

    def alive(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/object_info/KSampler", timeout=3).close()
            return True
        except (urllib.error.URLError, OSError):
            return False

    def start(self, comfy_dir: Path, python: str, timeout: float, workdir: Path | None = None,
              model_paths: dict[str, list[Path]] | None = None, extra_args: Sequence[str] = ()) -> Path:
        """Start ComfyUI on this URL's port with the pack linked into ``workdir``/custom_nodes; returns its log.

        ``model_paths`` adds model folders (``{"checkpoints": [dir, ...]}``) through the same
        extra_model_paths.yaml; ``extra_args`` go to main.py. ``workdir`` defaults to a new temp dir.
        """
        if not (comfy_dir / "main.py").is_file():
            raise RunError(f"no ComfyUI answers at {self.url} and COMFYUI_DIR={comfy_dir} has no main.py; "
                           "start ComfyUI yourself or point COMFYUI_DIR at a ComfyUI checkout")
        port = urllib.parse.urlparse(self.url).port or 8188
        if os.sep in python:  # ComfyUI runs in comfy_dir: a relative path to its python would miss
            python = str(Path(python).absolute())
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="drive-run-"))
        nodes_dir = self.workdir / "custom_nodes"
        nodes_dir.mkdir(parents=True, exist_ok=True)
        if not any((comfy_dir / "custom_nodes" / d / "nodes" / "extension.py").is_file()
                   and (comfy_dir / "custom_nodes" / d).resolve() == PACK_DIR
                   for d in os.listdir(comfy_dir / "custom_nodes")):
            (nodes_dir / PACK_LINK_NAME).symlink_to(PACK_DIR)
        yaml = self.workdir / "extra_model_paths.yaml"
        entries = {"custom_nodes": [nodes_dir], **(model_paths or {})}
        yaml.write_text("drive_run:\n" + "".join(
            f"  {key}: |\n" + "".join(f"    {path}\n" for path in paths) for key, paths in entries.items()))
        log_path = self.workdir / "comfy.log"
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [python, "main.py", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
             "--extra-model-paths-config", str(yaml), *extra_args],
            cwd=comfy_dir, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while not self.alive():
            if self.process.poll() is not None or time.time() > deadline:
                tail = log_path.read_text()[-3000:]
                self.stop()
                raise RunError(f"ComfyUI did not start (log tail):\n{tail}")
            time.sleep(0.5)
        print(f"started ComfyUI at {self.url} (log {log_path}, removed when it stops)" if self._own_workdir
              else f"started ComfyUI at {self.url} (log {log_path})", file=sys.stderr)
        return log_path

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
            self._log.close()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir, self._own_workdir = None, False


def _describe_rejection(body: str) -> str:
    """Turn /prompt's 400 body into one readable line per node error."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return body[:2000]
    lines = [data.get("error", {}).get("message", "")]
    for node_id, err in (data.get("node_errors") or {}).items():
        for e in err.get("errors", []):
            lines.append(f"node {node_id} ({err.get('class_type')}): {e.get('message')} {e.get('details', '')}")
    return "\n".join(ln for ln in lines if ln)


def main(argv: list[str] | None = None) -> int:
    """Start ComfyUI with the pack on --url and keep it until Ctrl+C or SIGTERM; say so when one already answers."""
    ap = argparse.ArgumentParser(description="Keep a ComfyUI with this pack running for repeated "
                                             "scripts/run_workflow.py calls (they find it at the same URL).")
    ap.add_argument("--url", default=os.environ.get("COMFYUI_URL", DEFAULT_URL),
                    help=f"where it listens (default $COMFYUI_URL or {DEFAULT_URL})")
    ap.add_argument("--comfyui-dir", type=Path, default=os.environ.get("COMFYUI_DIR", DEFAULT_COMFYUI_DIR),
                    help="the ComfyUI folder to start (default $COMFYUI_DIR or the set-up's .cache/ComfyUI-0.3.64)")
    ap.add_argument("--python", default=os.environ.get("COMFYUI_PYTHON", sys.executable),
                    help="the python that runs ComfyUI (default $COMFYUI_PYTHON or this python)")
    ap.add_argument("--start-timeout", type=float, default=300, help="seconds to wait for ComfyUI to answer")
    ap.add_argument("extra", nargs=argparse.REMAINDER,
                    help="after --: more arguments for ComfyUI's main.py (e.g. -- --lowvram)")
    args = ap.parse_args(argv)
    server = Server(args.url)
    if server.alive():
        print(f"a ComfyUI already answers at {server.url}: run_workflow.py uses it as it is", file=sys.stderr)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    extra = [a for a in args.extra if a != "--"]
    try:
        server.start(Path(args.comfyui_dir), args.python, args.start_timeout,
                     extra_args=device_args(args.python, extra))
        print(f"ComfyUI with the pack answers at {server.url}; run workflows with "
              f"scripts/run_workflow.py ... --server {server.url}; Ctrl+C stops it", file=sys.stderr)
        return server.process.wait()
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
