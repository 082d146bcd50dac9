"""`deskhand models import`: register a folder in place, or copy it in, once it validates and
matches the sha256 hashes of its deskhand.json."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from models.manifest import MANIFEST, verify_manifest
from models.registry import ModelEntry, ModelError, Registry, check_name, name_from
from models.validate import validate_folder


def import_model(folder: str | os.PathLike[str], *, name: str | None = None, copy: bool = False,
                 registry: Registry | None = None, progress: bool = False) -> ModelEntry:
    """Register an existing model folder (in place, or copied into the registry with `copy`).

    The folder must validate and, when it has a deskhand.json, match its sha256 hashes (the
    files are re-read, streaming; `progress` draws a terminal bar).
    """
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
        check_hashes(source_dir, progress=progress)
        return registry.add(source_dir, name=name, source=f"import:{source_dir}", owned=False,
                            report=report)
    target = registry.owned_folder(name)
    if target.exists():
        raise ModelError(f"{target} already exists; remove it or choose another --name")
    staging = registry.root / f".copy-{name}"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source_dir, staging)
    except OSError as exc:  # shutil.Error (a list of failures) is an OSError too
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(f"cannot copy {source_dir} into {registry.root}: {exc}") from exc
    try:  # the copy is what will run, so the copy is what must match the manifest
        check_hashes(staging, progress=progress)
    except ModelError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(staging, target)
    try:
        return registry.add(target, name=name, source=f"import:{source_dir}", owned=True)
    except ModelError:
        shutil.rmtree(target, ignore_errors=True)
        raise


def check_hashes(folder: Path, *, progress: bool = False) -> None:
    """Raise ModelError naming each file that differs from the folder's deskhand.json hashes."""
    try:
        result = verify_manifest(folder, progress=progress)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot check {folder} against its {MANIFEST}: {exc}") from exc
    if not result.has_manifest or result.ok:
        return
    lines = [f"  changed: {rel} (sha256 differs from {MANIFEST})" for rel in result.mismatched]
    lines += [f"  missing: {rel}" for rel in result.missing]
    raise ModelError(f"{folder} does not match its {MANIFEST}:\n" + "\n".join(lines)
                     + "\nthe files were changed or damaged after the manifest was written; "
                     "copy or download them again")
