"""Check that a folder holds a model Deskhand can run, and verify it against its manifest.

Two formats are recognised:
- "onnx-genai": an onnxruntime-genai folder (genai_config.json, decoder/embedding/vision ONNX
  files, tokenizer.json, processor_config.json), as published for Fara-7B or made by `export`.
- "hf": a Hugging Face checkpoint (config.json + safetensors), the input of `export`.

The optional manifest `deskhand.json` lists every file with its size and sha256:
    {"deskhand_manifest": 1, "files": [{"path": "model.onnx", "size": 123, "sha256": "..."}], ...}
Validation checks that listed files exist with the listed size (cheap) and loads the small
files the runtime reads (tokenizer, configs, chat template; `agent.inference.model_files`), so a
folder that validates also loads; `verify_manifest` re-hashes the listed files (slow, streaming),
which `import` does before registering a folder.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.atomic import write_json_atomic
from agent.inference.model_files import HF, ONNX, folder_problems

MANIFEST = "deskhand.json"
GENAI_CONFIG = "genai_config.json"
SUPPORTED_TYPES = ("fara", "qwen2_5_vl")
HF_SUPPORTED_TYPES = ("qwen2_5_vl",)
# Sections of genai_config.json "model" whose files must exist, and what to call them in messages.
_SECTIONS = {"decoder": "decoder", "embedding": "embedding", "vision": "vision"}
_CHUNK = 4 << 20


@dataclass
class ValidationReport:
    """What `validate_*` found; `ok` when there are no errors."""

    path: Path
    format: str | None = None
    model_type: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Files the configuration refers to (relative paths), for size and manifest checks.
    files: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """A few lines for the terminal or a dialog."""
        head = f"{self.path}: " + (
            f"valid {self.format} model ({self.model_type})" if self.ok else "not a usable model"
        )
        lines = [head] + [f"  error: {e}" for e in self.errors]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def detect_format(path: Path) -> str | None:
    """"onnx-genai", "hf", or None from the files present (no deep checks)."""
    if (path / GENAI_CONFIG).is_file():
        return "onnx-genai"
    if (path / "config.json").is_file() and any(path.glob("*.safetensors*")):
        return "hf"
    return None


def validate_folder(path: str | os.PathLike[str]) -> ValidationReport:
    """Validate a folder of either format, choosing by the files it holds."""
    folder = Path(path)
    fmt = detect_format(folder) if folder.is_dir() else None
    if fmt == "hf":
        return validate_hf_folder(folder)
    return validate_model_folder(folder)


def validate_model_folder(path: str | os.PathLike[str]) -> ValidationReport:
    """Check an onnxruntime-genai folder (Fara / Qwen2.5-VL); loads its small files, not the graphs."""
    folder = Path(path)
    report = ValidationReport(folder, format="onnx-genai")
    if not folder.is_dir():
        report.errors.append(f"{folder} is not a folder")
        return report
    config = _read_json(folder / GENAI_CONFIG, report)
    if config is None:
        if not (folder / GENAI_CONFIG).exists() and (folder / "config.json").exists():
            report.errors.append(
                "this looks like a Hugging Face checkpoint, not an ONNX folder: "
                "convert it with `deskhand models export`"
            )
        return report
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict):
        report.errors.append("genai_config.json has no \"model\" section")
        return report
    report.model_type = model.get("type")
    if report.model_type not in SUPPORTED_TYPES:
        report.errors.append(
            f"genai_config.json model.type is {report.model_type!r}; Deskhand runs vision models "
            f"of type {' or '.join(repr(t) for t in SUPPORTED_TYPES)} (Fara-7B / Qwen2.5-VL)"
        )
    for key, label in _SECTIONS.items():
        section = model.get(key)
        if not isinstance(section, dict):
            report.errors.append(
                f"genai_config.json has no model.{key} section"
                + (" (a text-only export? Deskhand needs the vision model)"
                   if key in ("vision", "embedding") else "")
            )
            continue
        names = list(_filenames(section))
        if not names:
            report.errors.append(f"genai_config.json model.{key} names no ONNX file")
        for name in names:
            _check_onnx_file(folder, name, label, report)
    report.errors += folder_problems(folder, ONNX)
    _check_manifest(folder, report)
    return report


def validate_hf_folder(path: str | os.PathLike[str]) -> ValidationReport:
    """Check a Hugging Face Qwen2.5-VL checkpoint folder (the input of `export`)."""
    folder = Path(path)
    report = ValidationReport(folder, format="hf")
    config = _read_json(folder / "config.json", report)
    if config is None:
        return report
    report.model_type = config.get("model_type") if isinstance(config, dict) else None
    if report.model_type not in HF_SUPPORTED_TYPES:
        report.errors.append(
            f"config.json model_type is {report.model_type!r}; expected 'qwen2_5_vl' (Fara-7B)"
        )
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        data = _read_json(index, report)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if data is not None and not isinstance(weight_map, dict):
            report.errors.append(f"{index.name} has no \"weight_map\" object")
        shards = sorted({v for v in (weight_map if isinstance(weight_map, dict) else {}).values()
                         if isinstance(v, str)})
        for shard in shards:
            target = _inside(folder, shard)
            if target is None or not _is_file(target):
                report.errors.append(f"{index.name} names shard '{shard}' which is missing"
                                     + (" (or outside the folder)" if target is None else ""))
        report.files = ["config.json", index.name, *shards]
    elif (folder / "model.safetensors").is_file():
        report.files = ["config.json", "model.safetensors"]
    else:
        report.errors.append("no model.safetensors or model.safetensors.index.json")
    report.errors += folder_problems(folder, HF)
    _check_manifest(folder, report)
    return report


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


def verify_manifest(folder: Path, *, progress: bool = True) -> VerifyResult:
    """Re-hash every file listed in deskhand.json and compare (one progress bar over all bytes)."""
    manifest = load_manifest(folder)
    if manifest is None:
        return VerifyResult(0, has_manifest=False)
    entries = manifest_files(manifest)
    # Only files inside the folder: a hostile manifest must not make us read /dev/zero or ~/.
    targets = {rel: _inside(folder, rel) for rel in entries}
    present = {rel: t for rel, t in targets.items() if t is not None and _is_file(t)}
    missing = tuple(sorted(set(entries) - set(present)))
    bar = _bar(sum(t.stat().st_size for t in present.values()), "verifying", progress)
    mismatched = []
    try:
        for rel, target in present.items():
            if sha256_file(target, bar) != entries[rel]["sha256"].lower():
                mismatched.append(rel)
    finally:
        bar.close()
    return VerifyResult(len(present), tuple(mismatched), missing)


def write_manifest(folder: Path, *, progress: bool = False, known: dict[str, str] | None = None,
                   **info: Any) -> dict[str, Any]:
    """Hash every file of `folder` and write deskhand.json; `info` adds fields (source, ...).

    `known` maps relative paths to sha256 digests computed already (e.g. while downloading),
    which saves re-reading gigabytes.
    """
    known = known or {}
    files = sorted(p for p in _walk(folder) if p != MANIFEST)
    todo = [p for p in files if p not in known]
    bar = _bar(sum((folder / p).stat().st_size for p in todo), "hashing", progress and bool(todo))
    try:
        listed = [{"path": p, "size": (folder / p).stat().st_size,
                   "sha256": known.get(p) or sha256_file(folder / p, bar)} for p in files]
    finally:
        bar.close()
    manifest = {"deskhand_manifest": 1, **info,
                "created": datetime.now(UTC).isoformat(timespec="seconds"), "files": listed}
    write_json_atomic(folder / MANIFEST, manifest, ascii_only=True)
    return manifest


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


def manifest_files(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Normalise the file list: accepts [{"path","sha256","size"?}] or {"path": "sha256"}."""
    files = manifest.get("files", {})
    out: dict[str, dict[str, Any]] = {}
    if isinstance(files, dict):
        for path, value in files.items():
            entry = value if isinstance(value, dict) else {"sha256": value}
            out[str(path)] = entry
    elif isinstance(files, list):
        for entry in files:
            if isinstance(entry, dict) and "path" in entry:
                out[str(entry["path"])] = entry
    return {p: e for p, e in out.items() if isinstance(e.get("sha256"), str)}


def sha256_file(path: Path, bar: Any = None) -> str:
    """Streaming sha256 of a file; advances `bar` (a tqdm) by the bytes read."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    return digest.hexdigest()


def folder_size(folder: Path) -> int:
    """Total bytes of the regular files below `folder`."""
    return sum((folder / p).stat().st_size for p in _walk(folder))


def _walk(folder: Path) -> Iterator[str]:
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # e.g. .cache left by other tools
        for name in names:
            if not name.startswith("."):
                yield Path(root, name).relative_to(folder).as_posix()


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, disable=not enabled,
                mininterval=0.5)


def _read_json(path: Path, report: ValidationReport) -> Any:
    if not path.is_file():
        report.errors.append(f"{path.name} is missing")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: "[[[[…" nesting
        report.errors.append(f"{path.name} is not readable JSON ({exc})")
        return None


def _filenames(section: dict[str, Any]) -> Iterator[str]:
    """Every "filename" in a config section, including pipeline stages (split NPU models)."""
    for key, value in section.items():
        if key == "filename" and isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            yield from _filenames(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from _filenames(item)


def _inside(folder: Path, name: str) -> Path | None:
    """`folder/name` resolved, or None when it leaves the folder or is no usable path at all."""
    try:  # a NUL byte or an over-long name in a hostile config raises instead of resolving
        target = (folder / name).resolve()
    except (OSError, ValueError):
        return None
    return target if target.is_relative_to(folder.resolve()) else None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # ENAMETOOLONG and friends: not a file we can use
        return False


def _check_onnx_file(folder: Path, name: str, label: str, report: ValidationReport) -> None:
    target = _inside(folder, name)
    if target is None:
        report.errors.append(f"genai_config.json names {label} file '{name}' outside the folder")
        return
    if not _is_file(target):
        report.errors.append(f"genai_config.json names {label} file '{name}' which is missing")
        return
    report.files.append(name)
    for location in external_data_locations(target):
        data = _inside(target.parent, location)
        rel = (Path(name).parent / location).as_posix()
        if data is None:
            report.errors.append(f"{name} refers to external data '{location}' outside the folder")
        elif not _is_file(data):
            report.errors.append(f"{name} needs its external data file '{rel}' which is missing")
        elif rel not in report.files:
            report.files.append(rel)


# In an ONNX protobuf, a tensor's external data is a StringStringEntryProto
# {key: "location", value: <file>}: field 1 (tag 0x0a) length 8 "location", then field 2 (0x12).
_LOCATION = b"\x0a\x08location\x12"


def external_data_locations(onnx_file: Path) -> set[str]:
    """File names an ONNX model's tensors keep their data in, found without loading the model."""
    # A byte scan (memchr-fast on an mmap) rather than onnx.load: onnx is not a runtime dependency
    # and the graph file of a 7B model can be large.
    found: set[str] = set()
    size = onnx_file.stat().st_size
    if size == 0:
        return found
    with open(onnx_file, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        pos = mm.find(_LOCATION)
        while pos != -1:
            start = pos + len(_LOCATION)
            length, start = _varint(mm, start)
            if 0 < length < 4096 and start + length <= size:
                try:
                    found.add(mm[start:start + length].decode("utf-8"))
                except UnicodeDecodeError:
                    pass
            pos = mm.find(_LOCATION, start)
    return found


def _varint(buf: mmap.mmap, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while pos < len(buf) and shift < 35:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return value, pos


def _check_manifest(folder: Path, report: ValidationReport) -> None:
    try:
        manifest = load_manifest(folder)
    except ValueError as exc:
        report.errors.append(str(exc))
        return
    if manifest is None:
        return
    report.manifest = manifest
    for rel, entry in manifest_files(manifest).items():
        target = _inside(folder, rel)
        # deskhand.json says "size"; the exporter's manifest says "bytes".
        size = entry.get("size", entry.get("bytes"))
        if target is None or not _is_file(target):
            report.errors.append(f"{MANIFEST} lists '{rel}' which is missing")
        elif isinstance(size, int) and target.stat().st_size != size:
            report.errors.append(
                f"'{rel}' has {target.stat().st_size} bytes but {MANIFEST} says {size}"
                " (incomplete copy or download?)"
            )
