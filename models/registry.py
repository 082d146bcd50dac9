"""The model registry: named models in the user's data dir (`agent.paths.models_dir()`).

Where the files live:
- `download` and `export` write into the registry's own folder, `models_dir()/<name>/`; these
  entries are *owned* and `remove` deletes their files.
- `import DIR` registers the folder **in place** (a 5 GB model is not copied by default) and
  `remove` only unregisters it; `import --copy` copies it into the registry's folder instead.
The index is `models_dir()/registry.json`, rewritten atomically (temp file + rename) so a crash
never leaves it half-written.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.paths import models_dir
from models.validate import ValidationReport, folder_size, validate_folder

INDEX = "registry.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class ModelError(ValueError):
    """A model cannot be found, registered or used; the message is for users."""


@dataclass(frozen=True)
class ModelEntry:
    """One registered model."""

    name: str
    path: str
    format: str  # "onnx-genai" or "hf"
    source: str  # "import:<dir>", "hf:<repo>@<commit>[/<subfolder>]", "export:<dir>"
    size_bytes: int
    added: str  # ISO 8601, UTC
    owned: bool  # files live in the registry's folder and `remove` may delete them
    model_type: str | None = None
    manifest: dict[str, Any] | None = None

    @property
    def folder(self) -> Path:
        return Path(self.path)


def check_name(name: str) -> str:
    """Return `name` if usable as a model name and folder name, else raise ModelError."""
    if not _NAME.match(name):
        raise ModelError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 80, starting with a letter or digit)"
        )
    return name


def name_from(text: str) -> str:
    """A valid default name derived from a folder or repo name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._") or "model"
    return cleaned[:80]


def human_size(size: float) -> str:
    """1536 -> '1.5 KB' (decimal units, as the Hub shows them)."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


class Registry:
    """The index of registered models (one JSON file)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else models_dir()

    @property
    def index_path(self) -> Path:
        return self.root / INDEX

    def entries(self) -> list[ModelEntry]:
        """All entries, sorted by name."""
        return sorted(self._load().values(), key=lambda e: e.name.lower())

    def get(self, name: str) -> ModelEntry:
        """The entry called `name`, or a ModelError that suggests close names."""
        entries = self._load()
        if name in entries:
            return entries[name]
        close = difflib.get_close_matches(name, list(entries), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else (
            " Registered: " + ", ".join(sorted(entries)) if entries else
            " No models are registered yet (see `deskhand models import/download/export`).")
        raise ModelError(f"no model named {name!r}.{hint}")

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def owned_folder(self, name: str) -> Path:
        """Where an owned model called `name` lives."""
        return self.root / check_name(name)

    def is_inside(self, path: Path) -> bool:
        """True when `path` is inside the registry's own folder (so we may delete it)."""
        return Path(path).resolve().is_relative_to(self.root.resolve()) and (
            Path(path).resolve() != self.root.resolve())

    def add(self, folder: Path, *, name: str, source: str, owned: bool,
            report: ValidationReport | None = None) -> ModelEntry:
        """Validate `folder` and register it as `name` (the name must be free)."""
        check_name(name)
        if name in self:
            raise ModelError(f"a model named {name!r} is already registered; "
                             "choose another with --name or remove it first")
        report = report or validate_folder(folder)
        if not report.ok:
            raise ModelError(report.summary())
        entry = ModelEntry(
            name=name, path=str(Path(folder).resolve()), format=report.format or "onnx-genai",
            source=source, size_bytes=folder_size(Path(folder)),
            added=datetime.now(UTC).isoformat(timespec="seconds"), owned=owned,
            model_type=report.model_type, manifest=report.manifest,
        )
        entries = self._load()
        entries[name] = entry
        self._save(entries)
        return entry

    def remove(self, name: str, *, delete_files: bool = True) -> tuple[ModelEntry, bool]:
        """Unregister `name`; delete its folder only if owned and inside the registry folder.

        Returns the entry and whether files were deleted.
        """
        entries = self._load()
        entry = self.get(name)
        deleted = False
        if delete_files and entry.owned and self.is_inside(entry.folder):
            shutil.rmtree(entry.folder, ignore_errors=True)
            deleted = True
        del entries[name]
        self._save(entries)
        return entry, deleted

    @property
    def default(self) -> str | None:
        """The model `deskhand run` uses without --model, if one was chosen and still exists."""
        entries, default = self._read()
        return default if default in entries else None

    def set_default(self, name: str) -> ModelEntry:
        """Make `name` the model used when none is named."""
        entry = self.get(name)
        self._save(self._load(), default=name)
        return entry

    def _load(self) -> dict[str, ModelEntry]:
        return self._read()[0]

    def _read(self) -> tuple[dict[str, ModelEntry], str | None]:
        try:
            raw = json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, None
        except (OSError, ValueError) as exc:
            raise ModelError(f"the model registry {self.index_path} is unreadable ({exc}); "
                             "fix or delete it") from exc
        fields = ModelEntry.__dataclass_fields__
        out = {}
        for item in raw.get("models", []):
            entry = ModelEntry(**{k: v for k, v in item.items() if k in fields})
            out[entry.name] = entry
        return out, raw.get("default")

    def _save(self, entries: dict[str, ModelEntry], *, default: str | None = None) -> None:
        default = default or self._read()[1]
        self.root.mkdir(parents=True, exist_ok=True)
        data = {"version": 1, "default": default if default in entries else None,
                "models": [asdict(e) for e in sorted(entries.values(), key=lambda e: e.name)]}
        tmp = self.index_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.index_path)


def import_model(folder: str | os.PathLike[str], *, name: str | None = None, copy: bool = False,
                 registry: Registry | None = None) -> ModelEntry:
    """Register an existing model folder (in place, or copied into the registry with `copy`)."""
    registry = registry or Registry()
    source_dir = Path(folder).expanduser().resolve()
    if not source_dir.is_dir():
        raise ModelError(f"{source_dir} is not a folder")
    report = validate_folder(source_dir)
    if not report.ok:
        raise ModelError(report.summary())
    name = check_name(name or name_from(source_dir.name))
    if name in registry:
        raise ModelError(f"a model named {name!r} is already registered; "
                         "choose another with --name or remove it first")
    if not copy:
        return registry.add(source_dir, name=name, source=f"import:{source_dir}", owned=False,
                            report=report)
    target = registry.owned_folder(name)
    if target.exists():
        raise ModelError(f"{target} already exists; remove it or choose another --name")
    staging = registry.root / f".copy-{name}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source_dir, staging)
    os.replace(staging, target)
    try:
        return registry.add(target, name=name, source=f"import:{source_dir}", owned=True)
    except ModelError:
        shutil.rmtree(target, ignore_errors=True)
        raise


def resolve_model(name_or_dir: str | os.PathLike[str] | None = None, *,
                  registry: Registry | None = None) -> Path:
    """The folder for `deskhand run --model X`: a registered name, or a folder that validates.

    Without a name: the default model (`deskhand models default NAME`), else the only one.
    """
    registry = registry or Registry()
    if name_or_dir is None:
        return resolve_model(_unnamed(registry).name, registry=registry)
    text = os.fspath(name_or_dir)
    if text in registry:
        entry = registry.get(text)
        if not entry.folder.is_dir():
            raise ModelError(f"model {text!r} is registered at {entry.folder}, which no longer "
                             f"exists; re-import it or `deskhand models remove {text}`")
        return entry.folder
    candidate = Path(text).expanduser()
    if candidate.is_dir():
        report = validate_folder(candidate)
        if not report.ok:
            raise ModelError(report.summary())
        return candidate.resolve()
    if os.sep in text or "/" in text:
        raise ModelError(f"{text} is neither a registered model nor an existing folder")
    return registry.get(text).folder  # raises with suggestions


def _unnamed(registry: Registry) -> ModelEntry:
    if registry.default:
        return registry.get(registry.default)
    entries = registry.entries()
    if len(entries) == 1:
        return entries[0]
    if not entries:
        raise ModelError("no model is registered yet")
    names = ", ".join(e.name for e in entries)
    raise ModelError(f"several models are registered ({names}): name one with --model, or "
                     "choose the default with `deskhand models default NAME`")
