"""Check that a folder holds a model Deskhand can run, and verify it against its manifest.

Two formats are recognised:
- "onnx-genai": an onnxruntime-genai folder (genai_config.json, decoder/embedding/vision ONNX
  files, tokenizer.json, processor_config.json), as published for Fara-7B or made by `export`.
- "hf": a Hugging Face checkpoint (config.json + safetensors), the input of `export`.

The optional manifest `deskhand.json` (`models.manifest`) lists every file with its size and
sha256. Validation checks that listed files exist with the listed size (cheap) and loads the small
files the runtime reads (tokenizer, configs, chat template; `agent.inference.model_files`), so a
folder that validates also loads; `models.manifest.verify_manifest` re-hashes the listed files
(slow, streaming), which `import` does before registering a folder.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.inference.model_files import HF, ONNX, folder_problems
from models.manifest import MANIFEST, folder_files, inside, is_file, load_manifest, manifest_files

GENAI_CONFIG = "genai_config.json"
SUPPORTED_TYPES = ("fara", "qwen2_5_vl", "fara15")
HF_SUPPORTED_TYPES = ("qwen2_5_vl", "qwen3_5")
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
            target = inside(folder, shard)
            if target is None or not is_file(target):
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


def folder_size(folder: Path) -> int:
    """Total bytes of the regular files below `folder`."""
    return sum((folder / p).stat().st_size for p in folder_files(folder))


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


def _check_onnx_file(folder: Path, name: str, label: str, report: ValidationReport) -> None:
    target = inside(folder, name)
    if target is None:
        report.errors.append(f"genai_config.json names {label} file '{name}' outside the folder")
        return
    if not is_file(target):
        report.errors.append(f"genai_config.json names {label} file '{name}' which is missing")
        return
    report.files.append(name)
    for location in external_data_locations(target):
        data = inside(target.parent, location)
        rel = (Path(name).parent / location).as_posix()
        if data is None:
            report.errors.append(f"{name} refers to external data '{location}' outside the folder")
        elif not is_file(data):
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
        target = inside(folder, rel)
        size = entry.size
        if target is None or not is_file(target):
            report.errors.append(f"{MANIFEST} lists '{rel}' which is missing")
        elif size is not None and target.stat().st_size != size:
            report.errors.append(
                f"'{rel}' has {target.stat().st_size} bytes but {MANIFEST} says {size}"
                " (incomplete copy or download?)"
            )
