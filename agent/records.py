"""Reading run records that may be damaged or hostile: run.json, field checks, screenshot paths.

Everything read from a run folder passes through here once (steps.jsonl through
`agent.step_record`, which uses the checks below), so every viewer (`deskhand runs`, the HTML
export, the app's History, the eval report) gets the same checked values: a bad field or line
costs that field or line and a note naming the file, never the other runs or steps, and a
screenshot is only ever read from inside its own run folder.
"""

from __future__ import annotations

import json
import math
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def is_text(v: Any) -> bool:
    return v is None or isinstance(v, str)


def is_pair(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(is_number(x) for x in v)


def is_size(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 2 and all(is_count(x) and 0 < x < 1 << 20 for x in v))


def is_monitor(v: Any) -> bool:
    return (isinstance(v, dict) and all(isinstance(v.get(k), int) and not isinstance(v.get(k), bool)
                                        for k in ("index", "left", "top", "width", "height"))
            and v["width"] > 0 and v["height"] > 0
            and is_number(v.get("scale", 1.0)) and v.get("scale", 1.0) > 0)


def is_timings(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and is_number(x) for k, x in v.items())


# field: (check, what it should be, value used instead). Absent fields keep their defaults.
Check = tuple[Callable[[Any], bool], str, Any]
META_FIELDS: dict[str, Check] = {
    "task": (lambda v: isinstance(v, str), "text", ""),
    "started": (lambda v: is_number(v) and 0 <= v < LATEST_TIME, "a time in seconds", 0.0),
    "status": (lambda v: isinstance(v, str), "text", "unknown"),
    "steps": (lambda v: v is None or is_count(v), "a step count", None),
    "answer": (is_text, "text", ""),
    "reason": (is_text, "text", ""),
    "pid": (lambda v: v is None or (is_count(v) and v < 1 << 31), "a process id", None),
    "settings": (lambda v: isinstance(v, dict), "an object", {}),
}


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def checked(obj: dict[str, Any], fields: dict[str, Check], where: str) -> list[str]:
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
    return meta, checked(meta, META_FIELDS, shown(file))
