"""Typed user settings, persisted as JSON in the platform config dir. No Qt here: the CLI reuses it."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.atomic import write_json_atomic
from agent.paths import config_dir, data_dir, read_small_file

SETTINGS_FILE = "settings.json"
POLICIES = ("never", "risky", "always")
PROVIDERS = ("auto", "cpu", "cuda", "dml")
MAX_RECENT = 20


class SettingsError(RuntimeError):
    """Settings could not be saved (disk full, permissions); the message is for users."""


@dataclass
class Settings:
    """Everything a user can change; unknown or mistyped keys in the file fall back to defaults."""

    model: str = ""                       # a registered model name or a model folder
    provider: str = "auto"                # auto | cpu | cuda | dml
    max_steps: int = 30
    settle_timeout: float = 3.0           # seconds to wait for the screen to settle after an action
    policy: str = "risky"                 # confirmation policy: never | risky | always
    confirm_timeout: float = 60.0         # an unanswered confirmation is denied after this
    deny_titles: list[str] = field(default_factory=lambda: ["password", "bank", "keychain"])
    stop_hotkey: str = "ctrl+alt+Escape"
    quick_hotkey: str = "ctrl+alt+space"
    data_dir: str = ""                    # empty: the platform data dir
    keep_screenshots: bool = True
    monitor: int = 1
    hide_window_during_run: bool = True   # collapse to the status pill so the agent never sees us
    preload_model: bool = True            # load and warm up the model when the app starts
    search_url: str = "http://127.0.0.1:8765/search?q={query}"  # the offline sites server
    recent_tasks: list[str] = field(default_factory=list)

    def runs_dir(self) -> Path:
        """Where runs are recorded (the data dir setting wins over the platform default)."""
        base = Path(self.data_dir).expanduser() if self.data_dir.strip() else data_dir()
        return base / "runs"

    def remember_task(self, task: str) -> None:
        """Put `task` first in the recent-task history (no duplicates, bounded)."""
        task = task.strip()
        if not task:
            return
        self.recent_tasks = [task] + [t for t in self.recent_tasks if t != task]
        del self.recent_tasks[MAX_RECENT:]



def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def _absolute_dir(text: str) -> bool:
    try:
        return not text.strip() or Path(text).expanduser().is_absolute()
    except RuntimeError:  # `~someone` who does not exist
        return False


# Beyond its type, what each field must be; a value outside it keeps the default. NaN fails every
# comparison, so the ranges are written to be False for it (a NaN confirm_timeout hung the dialog).
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "provider": (lambda v: v in PROVIDERS, "one of " + ", ".join(PROVIDERS)),
    "policy": (lambda v: v in POLICIES, "one of " + ", ".join(POLICIES)),
    "max_steps": (lambda v: 1 <= v <= 1000, "a whole number from 1 to 1000"),
    "settle_timeout": (lambda v: math.isfinite(v) and 0 <= v <= 60, "seconds from 0 to 60"),
    "confirm_timeout": (lambda v: math.isfinite(v) and 5 <= v <= 3600, "seconds from 5 to 3600"),
    "monitor": (lambda v: 0 <= v <= 64, "a monitor number from 0 to 64"),
    "data_dir": (_absolute_dir, "an absolute folder, or empty for the default"),
    "search_url": (lambda v: "{query}" in v, "a URL containing {query}"),
}


def _typed(value: Any, default: Any) -> Any:
    """`value` if it has the default's type (ints pass as floats), else None."""
    if isinstance(value, bool) or isinstance(default, bool):
        return value if type(value) is type(default) else None
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    if isinstance(default, list):
        return value if isinstance(value, list) else None
    if isinstance(default, str) and isinstance(value, str) and "\x00" in value:
        return None  # a NUL byte breaks every path and environment variable it reaches
    return value if isinstance(value, type(default)) else None


def _field(name: str, value: Any, default: Any) -> tuple[Any, str]:
    """The value to use for one field and, if the file's value was ignored, why."""
    typed = _typed(value, default)
    shown = json.dumps(value, ensure_ascii=True)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    if typed is None:
        return default, f"{name}: {shown} has the wrong type; using {json.dumps(default)}"
    if isinstance(typed, list):
        kept = [v for v in typed if isinstance(v, str) and v.strip() and "\x00" not in v]
        why = f"{name}: {len(typed) - len(kept)} empty or non-text entries dropped"
        return kept, why if len(kept) < len(typed) else ""
    ok, what = RULES.get(name, (lambda _v: True, ""))
    if not ok(typed):
        return default, f"{name}: {shown} is not {what}; using {json.dumps(default)}"
    return typed, ""


def read_settings(path: Path | None = None) -> tuple[Settings, list[str]]:
    """The settings, and one note for the user per value in the file that was ignored.

    Each field is checked on its own: a bad value costs that field (its default is used), never
    the others, and never a crash at start. An unreadable file is kept aside, not overwritten.
    """
    path = path or settings_path()
    try:
        raw = json.loads(read_small_file(path, 1 << 20).decode("utf-8"))  # never a FIFO or 1 GB
    except FileNotFoundError:
        return Settings(), []
    except (OSError, ValueError, RecursionError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return Settings(), [_kept_aside(path, f"cannot be read ({why})")]
    if not isinstance(raw, dict):
        return Settings(), [_kept_aside(path, "is not a JSON object")]
    defaults, values, notes = Settings(), {}, []
    for f in fields(Settings):
        default = getattr(defaults, f.name)
        values[f.name], note = _field(f.name, raw.get(f.name, default), default)
        notes += [f"{path}: {note}"] if note else []
    return Settings(**values), notes


def _kept_aside(path: Path, why: str) -> str:
    # The next save replaces the file; a copy keeps what the user wrote in it.
    copy = path.with_name(path.name + ".unreadable")
    try:
        if not copy.exists():
            shutil.copyfile(path, copy)
    except OSError:
        return f"{path} {why}; using the default settings"
    return f"{path} {why}; using the default settings (the file is kept as {copy.name})"


def load_settings(path: Path | None = None) -> Settings:
    """The settings (see `read_settings` for the notes on values that were ignored)."""
    return read_settings(path)[0]


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically (temp file + rename) so a crash never truncates them."""
    path = path or settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, asdict(settings))
    except OSError as exc:
        raise SettingsError(f"could not save the settings to {path}: {exc.strerror or exc}") from exc
    return path
