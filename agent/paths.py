"""Where Deskhand keeps its files: user data, config, cache, and the shipped assets."""

from __future__ import annotations

import os
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


def asset(*parts: str) -> Path:
    """A file shipped in assets/."""
    return ASSETS.joinpath(*parts)
