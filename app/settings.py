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
from agent.options import (
    APP_DENY_TITLES,
    DEFAULTS,
    MODES,
    POLICIES,
    PROVIDERS,
    RETIRED_SEARCH_URL,
    RunOptions,
)
from agent.paths import SETTINGS_FILE, checked_data_dir, config_dir, read_small_file, runs_dir

MAX_RECENT = 20


class SettingsError(RuntimeError):
    """Settings could not be saved (disk full, permissions); the message is for users."""


@dataclass
class Settings:
    """Everything a user can change; unknown or mistyped keys in the file fall back to defaults."""

    # Run options are stored as plain strings and numbers (the file's format); their defaults
    # and meaning are agent.options.RunOptions'.
    model: str = ""                       # a registered model name or a model folder
    provider: str = DEFAULTS.provider.value
    max_steps: int = DEFAULTS.max_steps
    settle_timeout: float = DEFAULTS.settle_timeout
    policy: str = DEFAULTS.policy.value
    mode: str = DEFAULTS.mode.value       # browser or desktop: the model family's prompt variant
    confirm_timeout: float = DEFAULTS.confirm_timeout
    deny_titles: list[str] = field(default_factory=lambda: list(APP_DENY_TITLES))
    stop_hotkey: str = "ctrl+alt+Escape"
    quick_hotkey: str = "ctrl+alt+space"
    data_dir: str = ""                    # empty: the platform data dir (see agent.paths.data_dir)
    keep_screenshots: bool = DEFAULTS.keep_screenshots
    monitor: int = DEFAULTS.monitor
    hide_window_during_run: bool = True   # collapse to the status pill so the agent never sees us
    preload_model: bool = True            # load and warm up the model when the app starts
    autostart: bool = False               # start the tray on login (app/autostart.py writes the entry)
    search_url: str = DEFAULTS.search_url  # empty: no search page (web_search says so)
    recent_tasks: list[str] = field(default_factory=list)

    def runs_dir(self) -> Path:
        """Where runs are recorded: `agent.paths.runs_dir` with this data-dir setting."""
        return runs_dir(self.data_dir)

    def run_options(self, *, offline: bool = DEFAULTS.offline) -> RunOptions:
        """These settings as the options of one run (`offline`: the app's verified offline mode)."""
        return RunOptions(
            max_steps=self.max_steps, settle_timeout=self.settle_timeout, policy=self.policy,
            provider=self.provider, monitor=self.monitor, deny_titles=tuple(self.deny_titles),
            confirm_timeout=self.confirm_timeout, search_url=self.search_url,
            keep_screenshots=self.keep_screenshots, offline=offline, mode=self.mode)

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
    return not text.strip() or checked_data_dir(text) is not None


def _search_url(text: str) -> bool:
    return not text or "{query}" in text


# Beyond its type, what each field must be; a value outside it keeps the default. NaN fails every
# comparison, so the ranges are written to be False for it (a NaN confirm_timeout hung the dialog).
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "provider": (lambda v: v in PROVIDERS, "one of " + ", ".join(PROVIDERS)),
    "policy": (lambda v: v in POLICIES, "one of " + ", ".join(POLICIES)),
    "mode": (lambda v: v in MODES, "one of " + ", ".join(MODES)),
    "max_steps": (lambda v: 1 <= v <= 1000, "a whole number from 1 to 1000"),
    "settle_timeout": (lambda v: math.isfinite(v) and 0 <= v <= 60, "seconds from 0 to 60"),
    "confirm_timeout": (lambda v: math.isfinite(v) and 5 <= v <= 3600, "seconds from 5 to 3600"),
    "monitor": (lambda v: 0 <= v <= 64, "a monitor number from 0 to 64"),
    "data_dir": (_absolute_dir, "an absolute folder, or empty for the default"),
    "search_url": (_search_url, "a URL containing {query}, or empty for none"),
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
    if raw.get("search_url") == RETIRED_SEARCH_URL:
        raw["search_url"] = ""  # the old default, saved by every earlier release: not a choice
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
