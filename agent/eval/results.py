"""A run's durable files: the manifest (filed by a configuration hash) and results.jsonl.

results.jsonl gets one complete line per finished task, written, flushed and fsynced, so a run
killed at any moment keeps every finished task and resumes after it. A torn last line (killed
mid-write) is ignored on reading.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from agent.atomic import write_json_atomic
from agent.jsonl import dumps_line, read_lines

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
FORMAT = 1


class ManifestMismatch(RuntimeError):
    """The run folder holds results of a different configuration; resuming would mix them."""


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_hash(manifest: dict[str, Any]) -> str:
    """A stable hash of the configuration (canonical JSON)."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Replace a JSON file atomically."""
    write_json_atomic(path, data)


def open_run_dir(run_dir: Path, manifest: dict[str, Any]) -> bool:
    """Create the run folder with its manifest, or check an existing one matches.

    Returns True when resuming. Raises `ManifestMismatch` naming what changed.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / MANIFEST
    record = {"config_hash": config_hash(manifest), "format": FORMAT, **manifest}
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old.get("config_hash") != record["config_hash"]:
            changed = sorted(k for k in set(old) | set(record)
                             if k != "config_hash" and old.get(k) != record.get(k))
            raise ManifestMismatch(
                f"{run_dir} holds a run with a different configuration (changed: "
                f"{', '.join(changed) or 'format'}); use another --out folder or delete it")
        return True
    write_json(path, record)
    return False


def read_manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / MANIFEST).read_text(encoding="utf-8"))


class ResultsLog:
    """Appends one result line per finished task; safe to call from several threads."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / RESULTS
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = dumps_line(record, sort_keys=True)
        with self._lock:
            self._repair()
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())

    def _repair(self) -> None:
        # A run killed mid-write leaves a line without its newline: cut it off before appending.
        try:
            with open(self.path, "rb+") as f:
                data = f.read()
                if data and not data.endswith(b"\n"):
                    f.truncate(data.rfind(b"\n") + 1)
        except FileNotFoundError:
            pass

    def records(self) -> list[dict[str, Any]]:
        return read_results(self.path.parent)

    def finished_keys(self) -> set[str]:
        return {r["key"] for r in self.records()}


def read_results(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete result line (a torn last line is skipped)."""
    path = Path(run_dir) / RESULTS
    if not path.exists():
        return []
    # Split at "\n" only: a task's answer holding U+2028 must not cost the lines after it.
    return [line.value for line in read_lines(path)
            if isinstance(line.value, dict) and isinstance(line.value.get("key"), str)]
