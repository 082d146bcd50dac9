"""The built-in model: Deskhand Nano, shipped in assets/models/nano, usable with no download.

It is a registry entry nobody has to register: `Registry` lists it next to the registered models
(unless one of them took its name) and uses it when no other model is chosen or registered, so a
fresh install can run a task at once. It is never written to registry.json and never deleted
(the files belong to the installation, which may be read-only).

`DESKHAND_BUILTIN_MODEL` names another folder to use instead (a packager's layout), or, set
empty, none at all (the tests' default: most of them need "no model yet").
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from agent.paths import asset

NAME = "nano"
ENV = "DESKHAND_BUILTIN_MODEL"
SOURCE = "builtin:nano"


def builtin_folder() -> Path | None:
    """The built-in model's folder, or None when there is none (not shipped, or switched off)."""
    value = os.environ.get(ENV)
    if value is None:
        folder = asset("models", NAME)
    elif not value.strip():
        return None
    else:
        folder = Path(value).expanduser()
    return folder.resolve() if (folder / "genai_config.json").is_file() else None


def builtin_entry():
    """The built-in model as a registry entry (models.registry.ModelEntry), or None."""
    folder = builtin_folder()
    if folder is None:
        return None
    stat = (folder / "genai_config.json").stat()
    return _entry(str(folder), stat.st_mtime_ns)


@cache
def _entry(folder: str, _mtime: int):
    from models.registry import ModelEntry
    from models.validate import folder_size

    path = Path(folder)
    added = datetime.fromtimestamp((path / "genai_config.json").stat().st_mtime, UTC)
    return ModelEntry(name=NAME, path=folder, format="onnx-genai", source=SOURCE,
                      size_bytes=folder_size(path), added=added.isoformat(timespec="seconds"),
                      owned=False, model_type="fara15")
