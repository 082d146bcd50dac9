"""Where Deskhand keeps its files: user data, config, cache, and the shipped assets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

APP_NAME = "deskhand"
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def _dir(env: str, kind: str) -> Path:
    override = os.environ.get(env)
    if override:
        return Path(override)
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Runs, models and other user data (DESKHAND_DATA_DIR overrides)."""
    return _dir("DESKHAND_DATA_DIR", "data")


def config_dir() -> Path:
    """Settings (DESKHAND_CONFIG_DIR overrides)."""
    return _dir("DESKHAND_CONFIG_DIR", "config")


def cache_dir() -> Path:
    """Re-creatable files such as downloads in progress (DESKHAND_CACHE_DIR overrides)."""
    return _dir("DESKHAND_CACHE_DIR", "cache")


def runs_dir() -> Path:
    return data_dir() / "runs"


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
