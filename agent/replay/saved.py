"""Saved tasks: a name for a replayable run, so that it can be started by name (tray, terminal).

Stored as one small JSON object {name: run id} in the data dir; read defensively like every run
record (a damaged file costs the saved names, never a crash).
"""

from __future__ import annotations

import json
from pathlib import Path

from agent.atomic import write_json_atomic
from agent.paths import data_dir, read_small_file
from agent.trajectory import TrajectoryError

MAX_FILE = 1 << 20
MAX_NAME = 80


def _clean(name: str) -> str:
    """A name as stored and compared: single spaces, no control characters."""
    text = " ".join(name.split())
    if not text or len(text) > MAX_NAME or not text.isprintable():
        raise ValueError(f"a saved task needs a printable name of 1 to {MAX_NAME} characters")
    return text


class SavedTasks:
    """Names of replayable runs (`saved-tasks.json` in the data dir by default)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else data_dir() / "saved-tasks.json"

    def all(self) -> dict[str, str]:
        """Every saved name with its run id (empty when none or unreadable)."""
        try:
            data = json.loads(read_small_file(self.path, MAX_FILE, follow_links=False))
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def save(self, name: str, run_id: str) -> str:
        """Name a run (replacing an earlier run of that name); returns the stored name."""
        name = _clean(name)
        tasks = self.all()
        tasks[name] = run_id
        self._write(tasks)
        return name

    def forget(self, name: str) -> bool:
        """Remove a name; False if there was none."""
        tasks = self.all()
        key = self.find(name)
        if key is None:
            return False
        del tasks[key]
        self._write(tasks)
        return True

    def find(self, name: str) -> str | None:
        """The stored name that `name` means (case and spacing ignored), if any."""
        wanted = " ".join(name.split()).casefold()
        return next((k for k in self.all() if k.casefold() == wanted), None)

    def run_id(self, name: str) -> str | None:
        """The run a saved name stands for."""
        key = self.find(name)
        return self.all()[key] if key is not None else None

    def _write(self, tasks: dict[str, str]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, tasks)
        except OSError as exc:
            raise TrajectoryError(f"could not save the task names: {exc.strerror or exc}") from exc
