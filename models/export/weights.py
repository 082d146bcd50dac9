"""Read checkpoint tensors by name suffix from safetensors files, one tensor at a time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


class Weights:
    """Lazy access to a Hugging Face checkpoint's tensors (single file or sharded index)."""

    def __init__(self, hf_dir: Path) -> None:
        index = hf_dir / "model.safetensors.index.json"
        if index.is_file():
            mapping = json.loads(index.read_text())["weight_map"]
            self._where = {k: hf_dir / v for k, v in mapping.items()}
        else:
            from safetensors import safe_open

            single = hf_dir / "model.safetensors"
            with safe_open(str(single), "pt") as f:
                self._where = {k: single for k in f.keys()}  # noqa: SIM118 - not a dict
        self._handles: dict[Path, object] = {}

    def names(self) -> list[str]:
        """All tensor names."""
        return list(self._where)

    def find(self, suffix: str) -> str:
        """The one tensor name ending with `suffix` (checkpoints differ in their prefixes)."""
        hits = [k for k in self._where if k == suffix or k.endswith("." + suffix)]
        if len(hits) != 1:
            raise KeyError(f"expected one tensor ending in {suffix!r}, found {len(hits)}")
        return hits[0]

    def get(self, name: str) -> np.ndarray:
        """One tensor as float32 numpy (bf16 is widened)."""
        from safetensors import safe_open

        path = self._where[name]
        if path not in self._handles:
            self._handles[path] = safe_open(str(path), "pt")
        return self._handles[path].get_tensor(name).float().numpy()

    def prefix_of(self, suffix: str) -> str:
        """The name prefix in front of `suffix`, e.g. 'visual.' or 'model.visual.'."""
        name = self.find(suffix)
        return name[: len(name) - len(suffix)]
