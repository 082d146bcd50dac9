"""A run's durable files: the manifest (filed by a configuration hash) and results.jsonl.

results.jsonl gets one complete line per finished task (`EvalResult`), written, flushed and
fsynced, so a run killed at any moment keeps every finished task and resumes after it. Reading
follows the one rule of `agent.jsonl`: a line that is no result (not an object, no "key") costs
that line, a mistyped field that field (its default is used), and a torn last line (killed
mid-write) is ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.atomic import write_json_atomic
from agent.jsonl import dumps_line, read_records
from agent.records import Check, checked, is_count, is_number, is_text, is_timings

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
FORMAT = 1


class ManifestMismatch(RuntimeError):
    """The run folder holds results of a different configuration; resuming would mix them."""


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


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _obj(v: Any) -> bool:
    return v is None or isinstance(v, dict)


# field: (check, what it should be, value used instead); absent fields keep their defaults.
_FIELDS: dict[str, Check] = {
    "task_id": (_str, "text", ""), "site": (_str, "text", ""), "repeat": (is_count, "a count", 0),
    "question": (_str, "text", ""), "status": (_str, "text", ""), "answer": (_str, "text", ""),
    "reason": (_str, "text", ""), "steps": (is_count, "a step count", 0),
    "final_url": (_str, "text", ""), "passed": (lambda v: isinstance(v, bool), "true or false",
                                                False),
    "verdict": (_obj, "an object", None), "model_judge": (_obj, "an object", None),
    "failure": (is_text, "text", None),
    "env_errors": (lambda v: isinstance(v, list) and all(isinstance(e, str) for e in v),
                   "a list of texts", []),
    "timings": (is_timings, "seconds by phase", {}),
    "tokens": (lambda v: isinstance(v, dict) and all(is_count(n) for n in v.values()),
               "token counts", {}),
    "cpu_s": (is_number, "seconds", 0.0), "wall_s": (is_number, "seconds", 0.0),
    "dir": (_str, "a folder name", ""), "finished": (is_number, "a time in seconds", 0.0),
}


@dataclass(frozen=True)
class EvalResult:
    """One finished task of an evaluation run: the line the harness files, the report reads."""

    key: str                       # task id and repeat ("shop--2#1"): what a resumed run skips
    task_id: str = ""
    site: str = ""
    repeat: int = 0
    question: str = ""
    status: str = ""               # the run's RunStatus value, or "error"
    answer: str = ""
    reason: str = ""
    steps: int = 0
    final_url: str = ""
    passed: bool = False
    verdict: dict[str, Any] | None = None
    model_judge: dict[str, Any] | None = None
    failure: str | None = None     # environment | step_budget | no_answer | wrong_answer
    env_errors: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    dir: str = ""                  # the attempt folder, relative to the run folder
    finished: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this result's line."""
        out = dataclasses.asdict(self)
        out["env_errors"] = list(self.env_errors)
        return out

    @classmethod
    def of(cls, record: dict[str, Any]) -> EvalResult:
        """The result of the harness's in-flight record; ValueError if a field is wrong (a bug)."""
        result, problems = cls.from_json(record)
        if result is None or problems:
            raise ValueError("; ".join(problems))
        return result

    @classmethod
    def from_json(cls, obj: Any, where: str = "result") -> tuple[EvalResult | None, list[str]]:
        """The result of one parsed line and a note per field ignored; None if it is no result."""
        if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
            return None, [f"{where}: not a task result (no \"key\"); skipped"]
        obj = {k: obj[k] for k in ("key", *_FIELDS) if k in obj}  # fields of other versions: out
        problems = checked(obj, _FIELDS, where)
        obj.update(env_errors=tuple(obj["env_errors"]), timings=dict(obj["timings"]),
                   tokens=dict(obj["tokens"]))
        return cls(**obj), problems


class ResultsLog:
    """Appends one result line per finished task; safe to call from several threads."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / RESULTS
        self._lock = threading.Lock()

    def append(self, result: EvalResult) -> None:
        """File one finished task (the only writer of results.jsonl)."""
        line = dumps_line(result.to_json(), sort_keys=True)
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

    def records(self) -> list[EvalResult]:
        return read_results(self.path.parent)

    def finished_keys(self) -> set[str]:
        return {r.key for r in self.records()}


def read_results(run_dir: Path) -> list[EvalResult]:
    """Every task result of the run folder (`check_results` also says what was passed over)."""
    return check_results(run_dir)[0]


def check_results(run_dir: Path) -> tuple[list[EvalResult], list[str]]:
    """Every task result, and a note for each line or field passed over (the module's rule)."""
    path = Path(run_dir) / RESULTS
    if not path.exists():
        return [], []
    # Split at "\n" only: a task's answer holding U+2028 must not cost the lines after it.
    return read_records(path, EvalResult.from_json)
