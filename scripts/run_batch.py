"""A batch of clips spread over ComfyUI servers, and the manifest that lets a re-run skip finished ones.

Each server runs one prompt at a time (one worker thread per server takes the next clip);
a clip that fails is recorded with its reason and not tried again in this run; a server
that stops answering leaves the pool. The manifest (``manifest.json`` in ``--out``) holds,
per clip, the fingerprint of the prompt that ran and the files it produced: a re-run
skips a clip whose fingerprint is unchanged and whose files all exist. It also holds the
fingerprint of the request (workflow file, command-line options, clip and input files), so a
re-run of the same command is skipped before any server is started. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import queue
import sys
import threading
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from comfy_server import RunError, Server
from run_outputs import write_json

MANIFEST_NAME = "manifest.json"


@dataclass
class Job:
    """One prompt to run: the clip it is for (or None), where its results go, and its fingerprint."""

    key: str
    clip: Path | None
    out_dir: Path
    fingerprint: str = ""
    outputs: list[Path] = field(default_factory=list)
    request: str = ""


def fingerprint(prompt: dict, clip: Path | None) -> str:
    """A hash of what decides a clip's results: the prompt sent and the clip file's size and time."""
    stat = clip.stat() if clip is not None else None
    data = {"prompt": prompt, "clip": None if stat is None else [stat.st_size, stat.st_mtime_ns]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def request_fingerprint(workflow: Path, options: dict, clip: Path | None, files: dict[str, Path]) -> str:
    """A hash of what the command asked for, known without a server: the workflow file's bytes, the options that
    change the prompt, and the size and time of the clip and of every ``--file``."""
    def stat(path: Path | None) -> list | None:
        return None if path is None else [path.stat().st_size, path.stat().st_mtime_ns]

    data = {"workflow": hashlib.sha256(workflow.read_bytes()).hexdigest(), "options": options, "clip": stat(clip),
            "files": {item: stat(path) for item, path in sorted(files.items())}}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Manifest:
    """``manifest.json`` in the output folder: per job key its status, fingerprint, outputs, server and time."""

    def __init__(self, out: Path):
        self.out = out
        self.path = out / MANIFEST_NAME
        self._lock = threading.Lock()
        try:
            self.jobs: dict[str, dict] = json.loads(self.path.read_text()).get("jobs", {})
        except (OSError, json.JSONDecodeError):
            self.jobs = {}

    def is_done(self, job: Job) -> bool:
        """True when ``job`` ran before with the same fingerprint and every file it made is still there."""
        rec = self.jobs.get(job.key)
        return bool(rec and rec.get("status") == "done" and rec.get("fingerprint") == job.fingerprint
                    and all((self.out / p).exists() for p in rec.get("outputs", [])))

    def done_as_requested(self, job: Job) -> bool:
        """True when ``job`` ran before from the same request (:func:`request_fingerprint`) with all its files."""
        rec = self.jobs.get(job.key)
        return bool(job.request and rec and rec.get("status") == "done" and rec.get("request") == job.request
                    and all((self.out / p).exists() for p in rec.get("outputs", [])))

    def record(self, job: Job, status: str, **info) -> None:
        with self._lock:
            self.jobs[job.key] = {"status": status, "fingerprint": job.fingerprint, "request": job.request,
                                  "outputs": [str(p.relative_to(self.out)) for p in job.outputs], **info}
            write_json(self.path, {"version": 1, "jobs": self.jobs})


def run_jobs(jobs: list[Job], servers: list[Server], run_one: Callable[[Server, Job], None],
             manifest: Manifest) -> list[str]:
    """Run ``jobs`` on ``servers``, one at a time per server; returns one line per failed job."""
    todo: queue.Queue[Job] = queue.Queue()
    for job in jobs:
        todo.put(job)
    failures: list[str] = []
    lock = threading.Lock()

    def worker(server: Server) -> None:
        while True:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            start = time.time()
            try:
                run_one(server, job)
            except (RunError, urllib.error.URLError, OSError) as err:
                reason = str(err).strip() or type(err).__name__
                manifest.record(job, "failed", server=server.url, seconds=round(time.time() - start, 1),
                                error=reason)
                with lock:
                    failures.append(f"{job.key}: {reason} (on {server.url})")
                    if len(jobs) > 1:  # a lone job's failure is the summary itself
                        print(f"[{job.key}] failed on {server.url}: {reason}", file=sys.stderr)
                if not server.alive():
                    print(f"{server.url} stopped answering: no more clips go there", file=sys.stderr)
                    return
                continue
            manifest.record(job, "done", server=server.url, seconds=round(time.time() - start, 1))

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while not todo.empty():
        job = todo.get_nowait()
        manifest.record(job, "failed", error="no server left to run it")
        failures.append(f"{job.key}: no server left to run it")
    return failures
