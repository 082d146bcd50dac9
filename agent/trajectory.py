"""Durable run records: run.json, steps.jsonl (appended and flushed per step), one PNG per step.

A run killed mid-step leaves a readable prefix: every line of steps.jsonl is complete or absent
(a torn last line is ignored on load), and run.json is replaced atomically.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import html
import io
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from agent.actions import describe
from agent.atomic import write_json_atomic, write_text_atomic
from agent.click_marker import marked_screenshot
from agent.jsonl import dumps_line
from agent.paths import runs_dir
from agent.records import read_meta, shown
from agent.step import RunResult, Step
from agent.step_record import STEPS, StepRecord, read_steps


class TrajectoryError(RuntimeError):
    """A run could not be recorded (disk full, permissions); the message is for users."""


@dataclass(frozen=True)
class RunInfo:
    id: str
    task: str
    started: float
    status: str
    steps: int
    answer: str
    path: Path


@dataclass(frozen=True)
class RunRecord:
    info: RunInfo
    meta: dict[str, Any]
    steps: list[StepRecord]
    problems: tuple[str, ...] = ()  # damaged lines or fields, each naming its file; for users


@dataclass(frozen=True)
class RunListing:
    runs: list[RunInfo]             # newest first
    problems: tuple[str, ...] = ()  # runs that could not be listed, each naming its file


def _os_error(exc: OSError, what: str) -> TrajectoryError:
    if exc.errno == errno.ENOSPC:
        return TrajectoryError(f"the disk is full: could not save {what}. Free some space; "
                               "the steps recorded so far are kept.")
    where = f" ({exc.filename})" if exc.filename else ""
    return TrajectoryError(f"could not save {what}{where}: {exc.strerror or exc}")


class RunRecorder:
    """Writes one run; implements the loop's `StepRecorder`."""

    def __init__(self, path: Path, meta: dict[str, Any], *, keep_screenshots: bool = True) -> None:
        self.path = path
        self.run_id = path.name
        self.meta = meta
        self.keep_screenshots = keep_screenshots
        self._steps = 0
        # Offline-mode refusals (this process and its children) are filed with the step during
        # which they happened, and all of them in run.json.
        self._offline_started = self._offline_mark = time.time()

    def save_screenshot(self, index: int, image: Image.Image) -> str | None:
        if not self.keep_screenshots:
            return None
        name = f"step-{index:03d}.png"
        try:
            # compress_level 1: ~5x faster than the default at 1920x1080, ~20 % larger files.
            image.save(self.path / name, format="PNG", compress_level=1)
        except OSError as exc:
            with contextlib.suppress(OSError):
                (self.path / name).unlink()  # no half-written PNG left behind
            raise _os_error(exc, f"the screenshot of step {index}") from exc
        return name

    def record(self, step: Step) -> None:
        from agent.offline import attempt_dicts, attempts_since

        now = time.time()
        attempts = attempt_dicts([a for a in attempts_since(self._offline_mark) if a.when <= now])
        record = StepRecord.from_step(step, now=now, offline_attempts=tuple(attempts))
        self._offline_mark = now
        line = dumps_line(record.to_json()).encode("utf-8")
        try:
            fd = os.open(self.path / STEPS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                start = os.lseek(fd, 0, os.SEEK_END)
                try:
                    view = memoryview(line)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, start)  # a disk-full partial line would eat the next one
                    raise
            finally:
                os.close(fd)
        except OSError as exc:
            raise _os_error(exc, f"step {step.index}") from exc
        self._steps += 1

    def finish(self, result: RunResult) -> None:
        self.meta.update(status=result.status.value, answer=result.answer, reason=result.reason,
                         steps=result.steps, elapsed=round(result.elapsed, 3),
                         facts=list(result.facts), finished=time.time())
        from agent.offline import attempt_dicts, attempts_since, isolation_notes

        self.meta["offline"] = {"attempts": attempt_dicts(attempts_since(self._offline_started)),
                                "processes": isolation_notes()}
        try:
            write_json_atomic(self.path / "run.json", self.meta)
        except OSError as exc:
            raise _os_error(exc, "the run summary") from exc


class TrajectoryStore:
    """All runs under one folder (the user's data dir by default)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else runs_dir()

    def start(self, task: str, settings: dict[str, Any] | None = None, *,
              keep_screenshots: bool = True) -> RunRecorder:
        """Create a run folder and its run.json (status "running")."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_id = f"{stamp}-{uuid.uuid4().hex[:6]}"
        path = self.root / run_id
        meta = {"id": run_id, "task": task, "started": time.time(), "status": "running",
                "pid": os.getpid(), "settings": settings or {}, "format": 1}
        try:
            path.mkdir(parents=True, exist_ok=False)
            write_json_atomic(path / "run.json", meta)
        except OSError as exc:
            raise _os_error(exc, "a new run") from exc
        return RunRecorder(path, meta, keep_screenshots=keep_screenshots)

    def list_runs(self) -> list[RunInfo]:
        """Every readable run, newest first (`scan` also says what could not be read)."""
        return self.scan().runs

    def scan(self) -> RunListing:
        """Every readable run, newest first, and a note naming each file that was passed over."""
        runs, problems = [], []
        for path in self._entries():
            if path.is_symlink():
                problems.append(f"{shown(path)} is a symbolic link, not a run folder; not "
                                f"followed (`deskhand runs delete {shown(path.name)}` removes "
                                "the link only)")
                continue
            meta, notes = read_meta(path)
            problems += notes
            if meta is not None:
                runs.append(self._info(path, meta))
        runs.sort(key=lambda r: r.started, reverse=True)
        return RunListing(runs, tuple(problems))

    def _entries(self) -> list[Path]:
        # The only candidates for a run id are the runs folder's own entries: `.`, `..`, paths
        # and anything outside can never be named.
        try:
            return sorted(self.root.iterdir()) if self.root.is_dir() else []
        except OSError as exc:
            raise TrajectoryError(f"cannot read the runs folder {shown(self.root)}: "
                                  f"{exc.strerror or exc}") from exc

    def _info(self, path: Path, meta: dict[str, Any]) -> RunInfo:
        steps = meta["steps"]
        if steps is None:  # still running, or killed: count what was recorded
            steps = len(read_steps(path)[0])
        status = meta["status"]
        if status == "running" and not _alive(meta["pid"]):
            status = "interrupted"  # the process died mid-run; its steps are still readable
        return RunInfo(path.name, meta["task"], float(meta["started"]), status, steps,
                       meta["answer"] or "", path)

    def _match(self, run_id: str) -> Path:
        # A run folder or a symbolic link, directly inside the runs folder.
        if run_id == "last":
            runs = self.list_runs()
            if not runs:
                raise KeyError("there are no runs yet")
            return runs[0].path
        if _RUN_ID.fullmatch(run_id) is None:
            raise KeyError(f"no run {run_id!r}")
        entries = [p for p in self._entries() if p.name.startswith(run_id)
                   and (p.is_symlink() or (p / "run.json").is_file())]
        matches = [p for p in entries if p.name == run_id] or entries
        if len(matches) == 1:
            return matches[0]
        raise KeyError(f"no run {run_id!r}" if not matches else f"{run_id!r} matches several runs")

    def resolve(self, run_id: str) -> Path:
        """A run's folder from its id or a unique prefix (`last` = the newest)."""
        path = self._match(run_id)
        if path.is_symlink():
            raise KeyError(f"{shown(path)} is a symbolic link, not a run folder; Deskhand does "
                           f"not follow it (`deskhand runs delete {shown(path.name)}` removes the "
                           "link only)")
        return path

    def load(self, run_id: str) -> RunRecord:
        """A run's summary and steps; damaged parts are left out and named in `problems`."""
        path = self.resolve(run_id)
        meta, problems = read_meta(path)
        if meta is None:
            raise KeyError(problems[0] if problems else f"run {run_id!r} has no run.json")
        steps, step_problems = read_steps(path)
        info = self._info(path, {**meta, "steps": meta["steps"] if meta["steps"] is not None
                                 else len(steps)})
        return RunRecord(info, meta, steps, tuple(problems + step_problems))

    def delete(self, run_id: str) -> str:
        """Delete a run's folder; for a symbolic link, the link only. Says what was done."""
        path = self._match(run_id)
        try:
            if path.is_symlink():
                path.unlink()  # never what it points to
                return f"removed the link {shown(path)} (what it points to was left alone)"
            shutil.rmtree(path)  # refuses a folder swapped for a link meanwhile
        except OSError as exc:
            raise TrajectoryError(f"could not delete {shown(path)}: {exc.strerror or exc}") from exc
        return f"deleted {shown(path)}"

    def export_html(self, run_id: str, out: Path | None = None) -> Path:
        """One self-contained HTML file: every step with its screenshot and click marker."""
        record = self.load(run_id)
        try:
            if out is None:  # inside the run folder: a link planted there is replaced, not followed
                out = record.info.path / "report.html"
                write_text_atomic(out, render_html(record))
            else:  # the user's own choice of file (even /dev/stdout) is written as named
                out = Path(out)
                out.write_text(render_html(record), encoding="utf-8")
        except OSError as exc:
            raise _os_error(exc, "the HTML export") from exc
        return out


_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # no separators, never `.` or `..`


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def render_html(record: RunRecord) -> str:
    meta, esc = record.meta, html.escape
    problems = "".join(f'<p class="note">Left out: {esc(p)}</p>' for p in record.problems)
    rows = []
    for step in record.steps:
        image = marked_screenshot(step.screenshot, step.screenshot_point)
        img = f'<img src="{_data_url(image)}" alt="step {step.index}">' if image else ""
        if step.screenshot_note:
            img += f'<p class="note">{esc(step.screenshot_note)}</p>'
        what = describe(step.action) if step.action else (step.error or "")
        timings = ", ".join(f"{k} {v:.2f} s" for k, v in step.timings.items()
                            if not k.startswith("model."))
        error = f'<p class="error">{esc(step.error)}</p>' if step.error else ""
        if step.note:  # what the loop did besides the model's answer (e.g. a second look)
            error += f'<p class="note">{esc(step.note)}</p>'
        rows.append(
            f'<section><h2>Step {step.index + 1}: {esc(what)}</h2>{error}'
            f'<p class="thoughts">{esc(step.thoughts or "")}</p>'
            f'<p class="timings">{esc(timings)}</p>{img}</section>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Deskhand run {esc(record.info.id)}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1260px;margin:2em auto;color:#1d2430;background:#f6f7f9}}
section{{background:#fff;border-radius:10px;padding:1em 1.4em;margin:1em 0;box-shadow:0 1px 3px #0002}}
img{{max-width:100%;border:1px solid #ccd;border-radius:6px}}
.thoughts{{white-space:pre-wrap}} .timings{{color:#667;font-size:.9em}} .error{{color:#b00020}}
.note{{color:#8a5a00}}
</style></head><body>
<h1>{esc(str(meta.get("task", "")))}</h1>
{problems}
<p>Status: <b>{esc(str(meta.get("status", "")))}</b> · {record.info.steps} steps ·
{esc(meta.get("reason", "") or "")}</p>
<p class="thoughts">{esc(meta.get("answer", "") or "")}</p>
{''.join(rows)}
</body></html>
"""
