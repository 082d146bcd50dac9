"""Where Deskhand keeps its files: user data, config, cache, and the shipped assets.

The data dir (runs, models, evaluation results) is answered here only, for the app, the command
line, the MCP server, replay and the harness alike: DESKHAND_DATA_DIR, else the data-dir setting
the app saved in the config dir, else the platform's data dir.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

APP_NAME = "deskhand"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
# The app's settings file (its format is owned by app/settings.py); the data dir's key is read
# here too, because `agent` must not import `app` and the command line must follow the setting.
SETTINGS_FILE = "settings.json"
DATA_DIR_KEY = "data_dir"


def _dir(env: str, kind: str) -> Path:
    override = os.environ.get(env)
    if override:
        return Path(override)
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME, appauthor=False))


def data_dir(setting: str | None = None) -> Path:
    """Runs, models and other user data: DESKHAND_DATA_DIR > the data-dir setting > the default.

    `setting` is the app's data-dir setting when the caller holds it (empty: the default);
    None reads the one saved in the config dir.
    """
    override = os.environ.get("DESKHAND_DATA_DIR")
    if override:
        return Path(override)
    chosen = saved_data_dir() if setting is None else checked_data_dir(setting)
    return chosen if chosen is not None else _dir("DESKHAND_DATA_DIR", "data")


def checked_data_dir(text: str) -> Path | None:
    """The folder a data-dir setting names; None when empty (the default) or not usable.

    Usable: absolute after `~` expansion and free of NUL bytes (which break every path).
    """
    if not isinstance(text, str) or not text.strip() or "\x00" in text:
        return None
    try:
        folder = Path(text).expanduser()
    except RuntimeError:  # `~someone` who does not exist
        return None
    return folder if folder.is_absolute() else None


def saved_data_dir() -> Path | None:
    """The data-dir setting saved by the app, or None (no file, unreadable, unset, invalid)."""
    try:
        raw = json.loads(read_small_file(config_dir() / SETTINGS_FILE, 1 << 20).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # the app reports a damaged file; here it only means "not set"
    return checked_data_dir(raw.get(DATA_DIR_KEY, "")) if isinstance(raw, dict) else None


def config_dir() -> Path:
    """Settings (DESKHAND_CONFIG_DIR overrides)."""
    return _dir("DESKHAND_CONFIG_DIR", "config")


def cache_dir() -> Path:
    """Re-creatable files such as downloads in progress (DESKHAND_CACHE_DIR overrides)."""
    return _dir("DESKHAND_CACHE_DIR", "cache")


def runs_dir(setting: str | None = None) -> Path:
    """Where runs are recorded and listed (see `data_dir` for `setting`)."""
    return data_dir(setting) / "runs"


def models_dir() -> Path:
    return data_dir() / "models"


def read_small_file(path: Path, limit: int, *, follow_links: bool = True) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; OSError for anything else.

    Why not `read_text`: a FIFO or device planted where a settings or run file belongs would
    hang the app at start or flood it; a huge file would fill memory.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file", str(path))
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OSError(0, f"larger than {limit} bytes", str(path))
    return data


def asset(*parts: str) -> Path:
    """A file shipped in assets/."""
    return ASSETS.joinpath(*parts)
