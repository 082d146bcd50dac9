"""Typed user settings, persisted as JSON in the platform config dir. No Qt here: the CLI reuses it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.paths import config_dir, data_dir

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

    def normalised(self) -> Settings:
        """A copy with out-of-range values clamped to something usable."""
        s = Settings(**asdict(self))
        s.provider = s.provider if s.provider in PROVIDERS else "auto"
        s.policy = s.policy if s.policy in POLICIES else "risky"
        s.max_steps = min(max(int(s.max_steps), 1), 1000)
        s.settle_timeout = min(max(float(s.settle_timeout), 0.0), 60.0)
        s.confirm_timeout = min(max(float(s.confirm_timeout), 5.0), 3600.0)
        s.monitor = max(int(s.monitor), 0)
        return s


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def _coerce(value: Any, default: Any) -> Any:
    # The file is user-editable: accept a value only if it has the default's type.
    if isinstance(default, bool):
        return value if isinstance(value, bool) else default
    if isinstance(default, int):
        return value if isinstance(value, int) and not isinstance(value, bool) else default
    if isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else default
    if isinstance(default, str):
        return value if isinstance(value, str) else default
    if isinstance(default, list):
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else default
    return default


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings file; a missing or unreadable file gives the defaults."""
    path = path or settings_path()
    defaults = Settings()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return defaults
    if not isinstance(raw, dict):
        return defaults
    values = {f.name: _coerce(raw.get(f.name, getattr(defaults, f.name)), getattr(defaults, f.name))
              for f in fields(Settings)}
    return Settings(**values).normalised()


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically (temp file + rename) so a crash never truncates them."""
    path = path or settings_path()
    tmp = path.with_suffix(".json.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(asdict(settings), indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise SettingsError(f"could not save the settings to {path}: {exc.strerror or exc}") from exc
    return path
