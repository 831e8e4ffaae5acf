"""HTTP client for a running ComfyUI: /object_info, /prompt, /history (standard library only)."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

LEVEL_PREFIX = re.compile(r"^(?:\x1b\[[0-9;]*m)?\[[A-Z]+\](?:\x1b\[[0-9;]*m)? ?", re.M)


class ComfyClient:
    """Minimal HTTP client for /object_info, /prompt and /history."""

    def __init__(self, url: str, base: Path, log_path: Path, comfy_dir: Path):
        self.url = url
        self.base = base
        self.input_dir = base / "input"
        self.output_dir = base / "output"
        self.models_dir = base / "models"
        self.log_path = log_path
        self.comfy_dir = comfy_dir

    def _request(self, path: str, payload: dict | None = None) -> tuple[int, dict]:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = resp.read()
                return resp.status, (json.loads(body) if body else {})
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def log_text(self) -> str:
        """The server's log so far, each line without the coloured level prefix 0.33 puts before it
        (``\\x1b[32m[INFO]\\x1b[0m ``), so tests read the same text on every core."""
        return LEVEL_PREFIX.sub("", self.log_path.read_text())

    def object_info(self, node: str | None = None) -> dict:
        status, body = self._request("/object_info" + (f"/{node}" if node else ""))
        assert status == 200, body
        return body

    def submit(self, prompt: dict) -> tuple[int, dict]:
        """POST /prompt; returns (HTTP status, body). 400 means validation refused it."""
        return self._request("/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})

    def run(self, prompt: dict, timeout: float = 900) -> dict:
        """Queue ``prompt`` and wait; returns its /history entry (check ``status``)."""
        status, body = self.submit(prompt)
        if status != 200:
            raise AssertionError(f"prompt refused ({status}): {json.dumps(body)[:4000]}")
        return self.wait(body["prompt_id"], timeout)

    def wait(self, pid: str, timeout: float = 900) -> dict:
        """The /history entry of the queued prompt ``pid`` once it has finished (check ``status``)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            _, hist = self._request(f"/history/{pid}")
            entry = hist.get(pid)
            if entry and entry.get("status", {}).get("completed") is not None and \
                    entry["status"].get("status_str") in ("success", "error"):
                return entry
            time.sleep(0.25)
        raise AssertionError(f"prompt {pid} did not finish in {timeout}s; log: {self.log_path}")

    def run_ok(self, prompt: dict, timeout: float = 900) -> dict:
        """Run ``prompt`` and fail the test with ComfyUI's traceback unless it succeeded."""
        entry = self.run(prompt, timeout)
        if entry["status"]["status_str"] != "success":
            raise AssertionError(f"prompt failed: {execution_error(entry)}")
        return entry

    def free(self) -> None:
        self._request("/free", {"unload_models": True, "free_memory": True})


def execution_error(entry: dict) -> dict:
    """The execution_error message of a failed /history entry ({} if none)."""
    for event, data in entry.get("status", {}).get("messages", []):
        if event == "execution_error":
            return data
    return {}
