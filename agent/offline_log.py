"""The record of verified offline mode: refused attempts, here and in child processes.

`agent.offline` refuses; this module remembers. Each refusal becomes an `Attempt` in this
process's bounded list and, in a child started by a guarded parent, one line appended to the
parent's file (`DESKHAND_OFFLINE_LOG`). `attempts_since` merges both for run.json, the step
records and the UI, together with what isolates each pixel-holding child (`note_isolation`).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Attempt:
    """One refused connection, lookup or send: when, what, where to, and which process."""

    when: float
    operation: str
    destination: str
    process: str = ""


MAX_CHILD_LOG = 1 << 20  # bytes of one child's attempt log that are read
# Set when this process was started by a guarded parent: its attempts are appended there.
INHERITED_LOG = os.environ.get("DESKHAND_OFFLINE_LOG")
LOG: list[Attempt] = []  # this process's refused attempts, newest last (bounded)
CHILD_LOGS: list[Path] = []  # files the children started from here append their attempts to
_lock = threading.Lock()


def record(operation: str, destination: str, process: str = "") -> None:
    """Note one refused attempt (also written for the parent when this is a child process)."""
    attempt = Attempt(time.time(), operation, destination[:300], process or _process_name())
    LOG.append(attempt)
    del LOG[:-1000]  # bounded memory for a misbehaving library
    if INHERITED_LOG:
        try:  # one short O_APPEND write per line: lines from several processes never mix
            fd = os.open(INHERITED_LOG, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, (json.dumps(asdict(attempt)) + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            pass  # the parent's folder is gone; the attempt was still refused


def new_child_log() -> Path:
    """A fresh file that a child process (and its children) append their attempts to.

    In a child, its own inherited file: grandchildren report to the same parent."""
    if INHERITED_LOG:
        return Path(INHERITED_LOG)
    folder = Path(tempfile.mkdtemp(prefix="deskhand-offline-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "attempts.jsonl"
    path.touch(mode=0o600)
    with _lock:
        CHILD_LOGS.append(path)
    return path


def _process_name() -> str:
    import multiprocessing

    return f"{multiprocessing.current_process().name} (pid {os.getpid()})"


def attempts_since(since: float) -> list[Attempt]:
    """Refused attempts at or after `since`, in this process and in the children it started."""
    found = [a for a in LOG if a.when >= since]
    seen = {(a.when, a.operation, a.destination) for a in found}
    logs = list(CHILD_LOGS) + ([Path(INHERITED_LOG)] if INHERITED_LOG else [])
    for path in logs:
        try:
            if path.stat().st_size == 0:
                continue
            with open(path, "rb") as f:  # bounded: a runaway child cannot exhaust our memory
                text = f.read(MAX_CHILD_LOG).decode("utf-8", "replace")
        except OSError:
            continue
        lines = text.split("\n")
        for line in lines:
            try:
                data = json.loads(line)
                attempt = Attempt(float(data["when"]), str(data["operation"]),
                                  str(data["destination"])[:300], str(data.get("process", "")))
            except (ValueError, KeyError, TypeError):
                continue  # a torn or forged line: skipped, never trusted as code
            key = (attempt.when, attempt.operation, attempt.destination)
            if attempt.when >= since and key not in seen:
                seen.add(key)
                found.append(attempt)
    return sorted(found, key=lambda a: a.when)


def attempt_dicts(attempts: list[Attempt]) -> list[dict[str, Any]]:
    """The JSON form of attempts, for run.json and step records."""
    return [{"time": round(a.when, 3), "operation": a.operation, "destination": a.destination,
             "process": a.process} for a in attempts]


_isolation_notes: dict[str, str] = {}


def note_isolation(process: str, description: str) -> None:
    """Remember what protects a pixel-holding child process (e.g. "model process")."""
    _isolation_notes[process] = description


def isolation_notes() -> dict[str, str]:
    """What protects each pixel-holding child process started so far, for run.json and the UI."""
    return dict(_isolation_notes)


def os_layer_warnings() -> list[str]:
    """One line per child process whose OS layer is not fully on (shown to the user)."""
    return [f"{process}: {text}" for process, text in _isolation_notes.items()
            if not text.startswith("OS layer on")]
