"""The model registry: named models in the user's data dir (`agent.paths.models_dir()`).

Where the files live:
- `download` and `export` write into the registry's own folder, `models_dir()/<name>/`; these
  entries are *owned* and `remove` deletes their files.
- `import DIR` registers the folder **in place** (a 5 GB model is not copied by default) and
  `remove` only unregisters it; `import --copy` copies it into the registry's folder instead.
The index is `models_dir()/registry.json`, rewritten atomically (temp file + rename) so a crash
never leaves it half-written. A hand-edited or damaged index never stops the valid entries from
working: a broken entry (or a file that is no JSON at all) is skipped with a note naming the file
(`Registry.notes`), and before such a file is rewritten it is copied to
`registry.json.broken-<time>`, so nothing the program could not read is lost silently.
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

from agent.atomic import write_json_atomic
from agent.paths import models_dir
from models.validate import ValidationReport, folder_size, validate_folder

INDEX = "registry.json"
FORMATS = ("onnx-genai", "hf")
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


# The type each field of an index entry must have; the rest are optional (None allowed).
_REQUIRED: dict[str, type] = {"name": str, "path": str, "format": str, "source": str,
                              "size_bytes": int, "added": str, "owned": bool}
_OPTIONAL: dict[str, type] = {"model_type": str, "manifest": dict}


def entry_from(item: Any) -> ModelEntry:
    """One index entry as read from registry.json, or ModelError saying what is wrong with it."""
    if not isinstance(item, dict):
        raise ModelError(f"not a JSON object ({type(item).__name__})")
    for key in _REQUIRED:
        if key not in item:
            raise ModelError(f"'{key}' is missing")
    for key, kind in (_REQUIRED | _OPTIONAL).items():
        value = item.get(key)
        if key in _OPTIONAL and value is None:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ModelError(f"'{key}' should be {kind.__name__}, not {type(value).__name__}")
    check_name(item["name"])
    texts = [v for v in item.values() if isinstance(v, str)]
    if any(ord(c) < 32 or ord(c) == 127 for text in texts for c in text):
        raise ModelError("a field holds control characters (they would rewrite the terminal)")
    if item["format"] not in FORMATS:
        raise ModelError(f"'format' is {item['format']!r}, not one of {', '.join(FORMATS)}")
    if not os.path.isabs(item["path"]):
        raise ModelError("'path' is not an absolute path (the model's place would depend on "
                         "the current folder)")
    if item["size_bytes"] < 0:
        raise ModelError("'size_bytes' is negative")
    return ModelEntry(**{k: item[k] for k in ModelEntry.__dataclass_fields__ if k in item})


def check_name(name: str) -> str:
    """Return `name` if usable as a model name and folder name, else raise ModelError."""
    # fullmatch: with `match`, "$" also accepts a name ending in "\n".
    if not isinstance(name, str) or not _NAME.fullmatch(name):
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
        self._notes: dict[str, None] = {}  # an ordered set: each read finds the same problems

    @property
    def notes(self) -> list[str]:
        """What was wrong with registry.json (skipped entries, backups kept), for the user."""
        return list(self._notes)

    @property
    def index_path(self) -> Path:
        return self.root / INDEX

    def entries(self) -> list[ModelEntry]:
        """All entries (the built-in model's too), sorted by name."""
        return sorted(self._with_builtin().values(), key=lambda e: e.name.lower())

    def _with_builtin(self) -> dict[str, ModelEntry]:
        """The registered entries, and the built-in model unless its name is taken."""
        from models.builtin import builtin_entry

        entries = self._load()
        builtin = builtin_entry()
        if builtin is not None and builtin.name not in entries:
            entries[builtin.name] = builtin
        return entries

    def is_builtin(self, name: str) -> bool:
        """Whether `name` is the built-in model (not an entry of registry.json)."""
        return name not in self._load() and name in self._with_builtin()

    def get(self, name: str) -> ModelEntry:
        """The entry called `name`, or a ModelError that suggests close names."""
        entries = self._with_builtin()
        if name in entries:
            return entries[name]
        close = difflib.get_close_matches(name, list(entries), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else (
            " Registered: " + ", ".join(sorted(entries)) if entries else
            " No models are registered yet (see `deskhand models import/download/export`).")
        if self._notes:  # the model may be in the part of registry.json that was skipped
            hint += "\n" + "\n".join(self._notes)
        raise ModelError(f"no model named {name!r}.{hint}")

    def __contains__(self, name: object) -> bool:
        return name in self._with_builtin()

    def owned_folder(self, name: str) -> Path:
        """Where an owned model called `name` lives."""
        return self.root / check_name(name)

    def is_inside(self, path: Path) -> bool:
        """True when `path` is inside the registry's own folder (so we may delete it)."""
        return Path(path).resolve().is_relative_to(self.root.resolve()) and (
            Path(path).resolve() != self.root.resolve())

    def deletes_files(self, entry: ModelEntry) -> bool:
        """Whether `remove` deletes the entry's folder: only an owned model's own folder.

        An index edited by hand (or by another program) may mark any path as owned; only the
        folder `<registry>/<name>` itself (not a link to elsewhere, not another model's folder,
        not the registry folder) is ever deleted.
        """
        own = self.owned_folder(entry.name)
        return (entry.owned and not own.is_symlink() and self.is_inside(entry.folder)
                and entry.folder.resolve() == own.resolve())

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
        if self.is_builtin(name):
            raise ModelError(f"{name!r} is the built-in model: it comes with Deskhand and cannot "
                             "be removed; it is only used while no other model is chosen "
                             "(`deskhand models default NAME`)")
        deleted = False
        if delete_files and self.deletes_files(entry):
            shutil.rmtree(entry.folder, ignore_errors=True)
            deleted = True
        del entries[name]
        self._save(entries)
        return entry, deleted

    @property
    def default(self) -> str | None:
        """The model chosen as the default (`deskhand models default`), if it still exists."""
        _, default, _ = self._read()
        return default if default in self._with_builtin() else None

    def effective_default(self) -> str | None:
        """The model used when none is named: the chosen default, else the only registered
        model, else the built-in one when nothing is registered; None when it is ambiguous
        (several registered, none chosen) or there is no model at all."""
        if self.default:
            return self.default
        registered = self._load()
        if len(registered) == 1:
            return next(iter(registered))
        if not registered:
            from models.builtin import builtin_entry

            builtin = builtin_entry()
            return builtin.name if builtin is not None else None
        return None

    def set_default(self, name: str) -> ModelEntry:
        """Make `name` the model used when none is named."""
        entry = self.get(name)
        self._save(self._load(), default=name)
        return entry

    def _load(self) -> dict[str, ModelEntry]:
        return self._read()[0]

    def _read(self) -> tuple[dict[str, ModelEntry], str | None, bool]:
        """Entries, default name, and whether anything in the file had to be skipped."""
        path = self.index_path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, None, False
        except OSError as exc:  # permissions: nothing we could write would help either
            raise ModelError(f"cannot read the model registry {path} ({exc.strerror or exc})"
                             ) from exc
        except ValueError as exc:  # not UTF-8
            return self._broken(f"{path} is not UTF-8 text ({exc})")
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[…" nesting
            return self._broken(f"{path} is not valid JSON ({exc})")
        if not isinstance(raw, dict) or not isinstance(raw.get("models", []), list):
            return self._broken(f"{path} is not a registry (expected an object with a "
                                "\"models\" list)")
        out: dict[str, ModelEntry] = {}
        skipped = False
        for number, item in enumerate(raw.get("models", []), start=1):
            label = item.get("name") if isinstance(item, dict) else None
            where = f"{path}: entry {number}" + (f" ({label!r})" if isinstance(label, str) else "")
            try:
                entry = entry_from(item)
            except ModelError as exc:
                self._note(f"{where} is skipped: {exc}")
                skipped = True
                continue
            if entry.name in out:
                self._note(f"{where} is skipped: the name is registered twice")
                skipped = True
                continue
            out[entry.name] = entry
        default = raw.get("default")
        if default is not None and not isinstance(default, str):
            self._note(f"{path}: \"default\" is not a model name; ignored")
            default, skipped = None, True
        return out, default, skipped

    def _broken(self, why: str) -> tuple[dict[str, ModelEntry], str | None, bool]:
        self._note(f"{why}; no model from it can be used until it is fixed. It is kept as a "
                   "backup when the registry is next written.")
        return {}, None, True

    def _note(self, text: str) -> None:
        self._notes[text] = None

    def _save(self, entries: dict[str, ModelEntry], *, default: str | None = None) -> None:
        _, current_default, damaged = self._read()
        default = default or current_default
        known = default in entries or (default is not None and self.is_builtin(default))
        data = {"version": 1, "default": default if known else None,
                "models": [asdict(e) for e in sorted(entries.values(), key=lambda e: e.name)]}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if damaged:  # what we could not read may still matter to its owner
                backup = self._backup()
                self._note(f"the previous {self.index_path.name} was kept as {backup}")
            write_json_atomic(self.index_path, data, ascii_only=True)
        except OSError as exc:
            raise ModelError(f"cannot write the model registry in {self.root} "
                             f"({exc.strerror or exc}); check that the folder is writable"
                             ) from exc

    def _backup(self) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for n in range(1000):
            backup = self.index_path.with_name(f"{INDEX}.broken-{stamp}" + (f"-{n}" if n else ""))
            try:  # O_EXCL: never overwrite an earlier backup
                with open(backup, "xb") as out, open(self.index_path, "rb") as src:
                    shutil.copyfileobj(src, out)
                return backup
            except FileExistsError:
                continue
        raise FileExistsError(f"too many backups of {self.index_path}")


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
    name = registry.effective_default()
    if name:
        return registry.get(name)
    entries = registry.entries()
    if not entries:
        raise ModelError("no model is registered yet")
    names = ", ".join(e.name for e in entries)
    raise ModelError(f"several models are registered ({names}): name one with --model, or "
                     "choose the default with `deskhand models default NAME`")
