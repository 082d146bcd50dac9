"""Reading run records that may be damaged or hostile: run.json, steps.jsonl, screenshot paths.

Everything read from a run folder passes through here once, so every viewer (`deskhand runs`,
the HTML export, the app's History, the eval report) gets the same checked values: a bad field
or line costs that field or line and a note naming the file, never the other runs or steps, and
a screenshot is only ever read from inside its own run folder.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.jsonl import read_lines
from agent.paths import read_small_file

MAX_META = 1 << 20         # run.json holds a summary; a bigger file is not one of ours
MAX_NOTES = 20             # problems listed per file
LATEST_TIME = 32503680000  # 3000-01-01: later times fail in time.localtime on some platforms


def shown(path: Path | str) -> str:
    """A path for a message: control characters in file names escaped (they reach terminals)."""
    text = str(path)
    return text if text.isprintable() else ascii(text)[1:-1]


def inside(folder: Path, name: Any) -> Path | None:
    """`folder`/`name` resolved, if that is a regular file inside `folder` (links followed)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        return None
    try:
        base = folder.resolve(strict=True)
        target = (folder / name).resolve(strict=True)
        regular = stat.S_ISREG(target.stat().st_mode)
    except (OSError, RuntimeError, ValueError):
        return None
    return target if regular and target != base and target.is_relative_to(base) else None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _text(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _pair(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_number(x) for x in v)


def _size(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 2 and all(_count(x) and 0 < x < 1 << 20 for x in v))


def _monitor(v: Any) -> bool:
    return (isinstance(v, dict) and all(isinstance(v.get(k), int) and not isinstance(v.get(k), bool)
                                        for k in ("index", "left", "top", "width", "height"))
            and v["width"] > 0 and v["height"] > 0
            and _number(v.get("scale", 1.0)) and v.get("scale", 1.0) > 0)


def _timings(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and _number(x) for k, x in v.items())


# field: (check, what it should be, value used instead). Absent fields keep their defaults.
Check = tuple[Callable[[Any], bool], str, Any]
META_FIELDS: dict[str, Check] = {
    "task": (lambda v: isinstance(v, str), "text", ""),
    "started": (lambda v: _number(v) and 0 <= v < LATEST_TIME, "a time in seconds", 0.0),
    "status": (lambda v: isinstance(v, str), "text", "unknown"),
    "steps": (lambda v: v is None or _count(v), "a step count", None),
    "answer": (_text, "text", ""),
    "reason": (_text, "text", ""),
    "pid": (lambda v: v is None or (_count(v) and v < 1 << 31), "a process id", None),
    "settings": (lambda v: isinstance(v, dict), "an object", {}),
}
STEP_FIELDS: dict[str, Check] = {
    "thoughts": (_text, "text", None),
    "model_text": (_text, "text", None),
    "description": (_text, "text", None),
    "error": (_text, "text", None),
    "note": (_text, "text", None),
    "url": (_text, "text", None),
    "action": (lambda v: v is None or isinstance(v, dict), "an object", None),
    "timings": (_timings, "seconds by phase", {}),
    "screenshot": (_text, "a file name", None),
    "screenshot_point": (lambda v: v is None or _pair(v), "a point", None),
    "screenshot_size": (lambda v: v is None or _size(v), "a size", None),
    "model_size": (lambda v: v is None or _size(v), "a size", None),
    "monitor": (lambda v: v is None or _monitor(v), "a monitor", None),
    "replay": (lambda v: v is None or isinstance(v, dict), "an object", None),
}


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _checked(obj: dict[str, Any], fields: dict[str, Check], where: str) -> list[str]:
    """Replace each mistyped field of `obj` by its default; one note per field replaced."""
    problems = []
    for key, (ok, what, default) in fields.items():
        if key in obj and not ok(obj[key]):
            problems.append(f"{where}: {key!r} is {_short(obj[key])}, not {what}; ignored")
            obj[key] = default
        obj.setdefault(key, default)
    return problems


def read_meta(folder: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The run.json of `folder` with its fields checked; None (with the reason) if unusable.

    A folder without run.json is not a run (yet): None and no note.
    """
    file = folder / "run.json"
    try:  # a link is not followed: a run's files are its own
        if file.is_symlink():
            raise OSError(0, "a symbolic link, not followed")
        data = read_small_file(file, MAX_META, follow_links=False)
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        return None, [f"{shown(file)}: cannot be read ({exc.strerror or exc}); run skipped"]
    try:
        meta = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None, [f"{shown(file)}: not valid JSON; run skipped"]
    if not isinstance(meta, dict):
        return None, [f"{shown(file)}: not a JSON object; run skipped"]
    return meta, _checked(meta, META_FIELDS, shown(file))


def read_steps(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The steps of `folder`/steps.jsonl, checked, with `screenshot` made an absolute path.

    A line that is not a step (bad JSON, not an object, no index) is skipped with a note; a
    screenshot outside the folder is dropped, with the reason in the step's `screenshot_note`.
    """
    file = folder / "steps.jsonl"
    steps: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        if file.is_symlink():
            raise OSError(0, "a symbolic link, not followed")
        for line in read_lines(file):
            where = f"{shown(file)}, line {line.number}"
            step = line.value
            if line.problem:
                problems.append(f"{where}: {line.problem}; skipped")
            elif not isinstance(step, dict):
                problems.append(f"{where}: not a JSON object; skipped")
            elif not _count(step.get("index")):
                problems.append(f"{where}: no step number (\"index\"); skipped")
            else:
                problems += _checked(step, STEP_FIELDS, where)
                _place_screenshot(folder, step)
                steps.append(step)
    except FileNotFoundError:
        pass
    except OSError as exc:
        problems.append(f"{shown(file)}: cannot be read ({exc.strerror or exc})")
    if len(problems) > MAX_NOTES:  # a file of a million bad lines gets a summary, not a flood
        more = len(problems) - MAX_NOTES
        problems[MAX_NOTES:] = [f"{shown(file)}: {more} more problems not listed"]
    return steps, problems


def _place_screenshot(folder: Path, step: dict[str, Any]) -> None:
    name = step.get("screenshot")
    if not name:
        return
    path = inside(folder, name)
    step["screenshot"] = str(path) if path is not None else None
    if path is not None:
        return
    plain = not os.path.isabs(name) and ".." not in Path(name).parts  # nothing probed outside
    if plain and not os.path.lexists(folder / name):
        step["screenshot_note"] = f"screenshot {shown(name)} is missing"
    else:
        step["screenshot_note"] = (f"screenshot {shown(name)} omitted: it is not a file inside "
                                   "the run folder")
