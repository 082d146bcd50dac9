"""Checks that run before any long export work: checkpoint kind, files, disk and memory."""

from __future__ import annotations

import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from models.export.families import FAMILIES, Family, family_of

REQUIRED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")
GB = 1024**3

# Bytes per parameter in the output, by text precision (int4 carries block scales and zero points).
_TEXT_BYTES = {"int4": 0.6, "fp16": 2.0, "fp32": 4.0}
_VISION_BYTES = {None: 4.0, "int8": 1.1, "int4": 0.6}


class ExportError(RuntimeError):
    """An export cannot run or failed; the message tells the user what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """What the checks learned about a source checkpoint."""

    path: Path
    config: dict
    weight_files: tuple[Path, ...]
    text_params: int
    vision_params: int
    embed_params: int
    source_bytes: int
    family: Family


def inspect_checkpoint(hf_dir: Path) -> Checkpoint:
    """Validate a checkpoint folder of a known family and count its parameters (headers only)."""
    if not hf_dir.is_dir():
        raise ExportError(f"{hf_dir} is not a folder; give the path of a downloaded checkpoint")
    if not (hf_dir / "config.json").is_file():
        raise ExportError(f"{hf_dir} is not a Hugging Face checkpoint: config.json is missing")
    try:
        config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{hf_dir / 'config.json'} is not readable JSON: {exc}") from exc
    archs = config.get("architectures") or []
    family = family_of(config)
    if family is None:
        kind = config.get("model_type") or (archs[0] if archs else "unknown")
        known = list(FAMILIES.values())
        raise ExportError(
            f"{hf_dir} is not a {known[0].name} checkpoint nor a "
            + " nor a ".join(f.name for f in known[1:]) + f" one (it is {kind!r}); the exporter "
            "handles " + ", ".join(f"{f.examples} ({f.architecture})" for f in known) + " only"
        )
    missing = [name for name in REQUIRED_FILES if not (hf_dir / name).is_file()]
    index = hf_dir / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        weight_files = tuple(hf_dir / s for s in shards)
        missing += [s for s in shards if not (hf_dir / s).is_file()]
    elif (hf_dir / "model.safetensors").is_file():
        weight_files = (hf_dir / "model.safetensors",)
    else:
        weight_files = ()
        missing.append("model.safetensors (or model.safetensors.index.json and its shards)")
    if missing:
        raise ExportError(f"{hf_dir} is incomplete; missing files: {', '.join(missing)}. "
                          "Download the checkpoint again or finish the download.")
    text = vision = embed = 0
    for path in weight_files:
        for name, numel in _tensor_sizes(path):
            if ".visual." in f".{name}" or name.startswith("visual."):
                vision += numel
            elif name.endswith("embed_tokens.weight"):
                embed += numel
            else:
                text += numel
    if vision == 0:
        raise ExportError(f"{hf_dir} has no vision tower weights; is it a text-only export?")
    return Checkpoint(hf_dir, config, weight_files, text, vision, embed,
                      sum(p.stat().st_size for p in weight_files), family)


def _tensor_sizes(path: Path):
    """(name, element count) for every tensor, read from the safetensors header only."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in meta["shape"]:
            count *= dim
        yield name, count


def estimate_output_bytes(ckpt: Checkpoint, precision: str, vision_quant: str | None) -> int:
    """A generous estimate of the export folder's size."""
    text = ckpt.text_params * _TEXT_BYTES[precision]
    vision = ckpt.vision_params * _VISION_BYTES[vision_quant]
    embed = ckpt.embed_params * _VISION_BYTES[vision_quant]  # same option as vision
    return int((text + vision + embed) * 1.1) + 64 * 1024**2


def free_bytes(path: Path) -> int:
    """Free disk space at `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def available_ram() -> int | None:
    """Available memory in bytes, or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def export_ram_bytes(ckpt: Checkpoint, precision: str = "int4", provider: str = "cpu") -> int:
    """Private memory the export needs at its peak.

    An int4 export for another provider (fp16 weights) goes through the builder's own quantizer,
    which holds the whole graph: that path keeps the old estimate (1.25x the checkpoint; at
    Fara-7B's size it was killed at 21.8 GB on a 24 GB machine).

    Measured at Fara-7B's full size (16.6 GB checkpoint; README "Models"): the text stage reads
    the checkpoint as mapped views and quantizes one matrix at a time, so its private memory is
    about its largest matrix in fp32 times 1.3 (2.8 GB: the 152064 x 3584 LM head);
    the vision stage holds the fp32 vision graph about three times over (8.1 GB for 0.68 B
    parameters). The mapped checkpoint pages are page cache the kernel can drop, not counted.
    """
    if precision == "int4" and provider != "cpu":
        return int(ckpt.source_bytes * 1.25)
    largest = ckpt.embed_params * 4  # the embedding / LM head is the largest text matrix
    return int(max(3 * 4 * ckpt.vision_params, 1.3 * largest) + 1.0 * GB)


def check_resources(ckpt: Checkpoint, out_dir: Path, precision: str,
                    vision_quant: str | None, provider: str = "cpu") -> int:
    """Raise ExportError when disk or memory is clearly too small; return the size estimate."""
    need = estimate_output_bytes(ckpt, precision, vision_quant)
    free = free_bytes(out_dir)
    if free < need:
        raise ExportError(
            f"not enough disk space in {out_dir}: the export needs about {need / GB:.1f} GB, "
            f"{free / GB:.1f} GB are free. Free some space or choose another output folder."
        )
    ram_need = export_ram_bytes(ckpt, precision, provider)
    ram = available_ram()
    if ram is not None and ram < ram_need:
        raise ExportError(
            f"not enough memory: the export needs about {ram_need / GB:.1f} GB available, "
            f"{ram / GB:.1f} GB are. Close other programs or export on a larger machine."
        )
    return need
