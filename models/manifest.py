"""deskhand.json, the manifest of a model folder: the one reader, writer and verifier.

The shape written (by `models import`, `download` and `export` alike):
    {"deskhand_manifest": 1, "created": "...", ...info,
     "files": [{"path": "model.onnx", "size": 123, "sha256": "..."}], "total_bytes": 123}
Folders written before there was one writer still read: the exporter's old shape listed files as
a dict ({"model.onnx": {"bytes": 123, "sha256": "..."}}) and some hand-made manifests as
{"model.onnx": "sha256"}; `manifest_files` turns every shape into one mapping of `Entry`s.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.atomic import write_json_atomic
from agent.hashing import sha256_file

MANIFEST = "deskhand.json"
FORMAT = 1


@dataclass(frozen=True)
class Entry:
    """One listed file: its size (None when the manifest did not say) and lower-case sha256."""

    size: int | None
    sha256: str


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of re-hashing a folder against its manifest."""

    checked: int
    mismatched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    has_manifest: bool = True

    @property
    def ok(self) -> bool:
        return self.has_manifest and not self.mismatched and not self.missing

    def problems(self) -> list[str]:
        """One line per problem ("name: missing", "name: contents changed"); empty when ok."""
        if not self.has_manifest:
            return [f"{MANIFEST} is missing"]
        return ([f"{name}: missing" for name in self.missing]
                + [f"{name}: contents changed" for name in self.mismatched])


def folder_files(folder: Path) -> Iterator[str]:
    """Relative paths of the files a manifest lists: hidden files and folders left out."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .cache, export state
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(root, name).relative_to(folder).as_posix()


def load_manifest(folder: Path) -> dict[str, Any] | None:
    """The parsed deskhand.json, or None when there is none (raises ValueError if unreadable)."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: "[[[[…" nesting
        raise ValueError(f"{MANIFEST} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{MANIFEST} is not a JSON object")
    return data


def manifest_files(manifest: dict[str, Any]) -> dict[str, Entry]:
    """Every listed file with a sha256, whichever shape the manifest was written in."""
    files = manifest.get("files", {})
    raw: dict[str, Any] = {}
    if isinstance(files, dict):  # the exporter's old shape, or {"path": "sha256"}
        raw = {str(p): v if isinstance(v, dict) else {"sha256": v} for p, v in files.items()}
    elif isinstance(files, list):
        raw = {str(e["path"]): e for e in files if isinstance(e, dict) and "path" in e}
    out = {}
    for path, entry in raw.items():
        digest = entry.get("sha256")
        if not isinstance(digest, str):
            continue
        size = entry.get("size", entry.get("bytes"))  # the old exporter said "bytes"
        ok_size = isinstance(size, int) and not isinstance(size, bool)
        out[path] = Entry(size if ok_size else None, digest.lower())
    return out


def write_manifest(folder: Path, *, progress: bool = False, known: dict[str, str] | None = None,
                   **info: Any) -> dict[str, Any]:
    """Hash every file of `folder` and write deskhand.json; `info` adds fields (source, ...).

    `known` maps relative paths to sha256 digests computed already (e.g. while downloading),
    which saves re-reading gigabytes.
    """
    known = known or {}
    files = sorted(p for p in folder_files(folder) if p != MANIFEST)
    todo = [p for p in files if p not in known]
    bar = progress_bar(sum((folder / p).stat().st_size for p in todo), "hashing",
                       progress and bool(todo))
    try:
        listed = [{"path": p, "size": (folder / p).stat().st_size,
                   "sha256": known.get(p) or sha256_file(folder / p, bar)} for p in files]
    finally:
        bar.close()
    manifest = {"deskhand_manifest": FORMAT, **info,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "total_bytes": sum(f["size"] for f in listed), "files": listed}
    write_json_atomic(folder / MANIFEST, manifest, ascii_only=True)
    return manifest


def verify_manifest(folder: Path, *, progress: bool = True) -> VerifyResult:
    """Re-hash every file listed in deskhand.json and compare (one progress bar over all bytes).

    Raises ValueError when deskhand.json is there but unreadable.
    """
    manifest = load_manifest(folder)
    if manifest is None:
        return VerifyResult(0, has_manifest=False)
    entries = manifest_files(manifest)
    # Only files inside the folder: a hostile manifest must not make us read /dev/zero or ~/.
    targets = {rel: inside(folder, rel) for rel in entries}
    present = {rel: t for rel, t in targets.items() if t is not None and is_file(t)}
    missing = tuple(sorted(set(entries) - set(present)))
    bar = progress_bar(sum(t.stat().st_size for t in present.values()), "verifying", progress)
    mismatched = []
    try:
        for rel, target in present.items():
            if sha256_file(target, bar) != entries[rel].sha256:
                mismatched.append(rel)
    finally:
        bar.close()
    return VerifyResult(len(present), tuple(sorted(mismatched)), missing)


def inside(folder: Path, name: str) -> Path | None:
    """`folder/name` resolved, or None when it leaves the folder or is no usable path at all."""
    try:  # a NUL byte or an over-long name in a hostile config raises instead of resolving
        target = (folder / name).resolve()
    except (OSError, ValueError):
        return None
    return target if target.is_relative_to(folder.resolve()) else None


def is_file(path: Path) -> bool:
    """`path.is_file()`, False instead of raising for an unusable name (ENAMETOOLONG...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A byte-counting tqdm bar (disabled: counts silently)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, disable=not enabled,
                mininterval=0.5)
