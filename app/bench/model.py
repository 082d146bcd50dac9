"""The bench's cost model: memory bandwidth, weight bytes read per token, full-model estimates.

Extrapolation from a model with few layers to Fara-7B (28 text layers, 32 vision blocks, 4 of
them full-attention) splits each measured phase over its parts by a work model, then scales the
per-layer part:
- vision and prefill are compute-bound: the split follows multiply-accumulates (linear layers
  per token plus attention, which grows with the sequence: windows of 64 patches in windowed
  vision blocks, the whole image in full-attention blocks, the causal prompt in text layers);
- decode is memory-bound: the split follows the weight bytes read per token (decoder layers vs
  LM head, as stored by each backend).
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FULL = {"text": 28, "vision": 32, "vision_full_attention": 4}


@dataclass(frozen=True)
class Shape:
    """The sizes of a Qwen2.5-VL checkpoint that the cost model needs."""

    hidden: int
    intermediate: int
    q_width: int
    kv_width: int
    vocab: int
    layers: int
    v_hidden: int
    v_intermediate: int
    v_out: int
    v_blocks: int
    v_full_blocks: int
    window_patches: int
    patch: int
    merge: int

    @classmethod
    def from_config(cls, hf_dir: Path) -> Shape:
        """Read the sizes from `hf_dir/config.json` (nested text_config or flat)."""
        cfg = json.loads((Path(hf_dir) / "config.json").read_text())
        t, v = cfg.get("text_config") or cfg, cfg["vision_config"]
        head_dim = t.get("head_dim") or t["hidden_size"] // t["num_attention_heads"]
        window = int(v.get("window_size", 112)) // int(v.get("patch_size", 14))
        return cls(
            hidden=t["hidden_size"], intermediate=t["intermediate_size"],
            q_width=t["num_attention_heads"] * head_dim,
            kv_width=t["num_key_value_heads"] * head_dim, vocab=t["vocab_size"],
            layers=t["num_hidden_layers"], v_hidden=v["hidden_size"],
            v_intermediate=v["intermediate_size"], v_out=v["out_hidden_size"],
            v_blocks=v["depth"], v_full_blocks=len(v.get("fullatt_block_indexes", [])),
            window_patches=window * window, patch=int(v.get("patch_size", 14)),
            merge=int(v.get("spatial_merge_size", 2)))

    def text_layer_macs(self, tokens: int, past: int = 0) -> float:
        """One decoder layer over `tokens` new tokens after `past` cached ones (causal)."""
        d = self.hidden
        linear = d * (self.q_width + 2 * self.kv_width) + self.q_width * d + 3 * d * self.intermediate
        # QK^T and PV: each new token attends to the cached ones and, on average, half the new.
        return tokens * linear + 2 * tokens * (past + tokens / 2) * self.q_width

    def vision_macs(self, patches_per_image: int, images: int) -> dict[str, float]:
        """Per windowed block, per full-attention block, and the rest (patch embed, merger)."""
        d, n = self.v_hidden, patches_per_image * images
        linear = n * (4 * d * d + 3 * d * self.v_intermediate)
        merged = d * self.merge**2
        return {"window": linear + 2 * n * self.window_patches * d,
                "full": linear + 2 * n * patches_per_image * d,
                "other": n * 3 * 2 * self.patch**2 * d + n / self.merge**2 * merged * (merged + self.v_out)}


def measure_bandwidth(megabytes: int = 1024, repeats: int = 5,
                      threads: int | None = None) -> dict[str, float]:
    """Best-of-`repeats` memory bandwidth in GB/s: streaming read (`threads`) and copy (one)."""
    import numpy as np

    n = megabytes * 1024 * 1024 // 8
    src = np.ones(n, dtype=np.float64)
    dst = np.empty_like(src)
    threads = threads or max(1, os.cpu_count() or 1)
    parts = np.array_split(src, threads)

    def read_all() -> None:
        # numpy releases the GIL inside reductions, so the threads stream in parallel
        workers = [threading.Thread(target=np.add.reduce, args=(p,)) for p in parts]
        for t in workers:
            t.start()
        for t in workers:
            t.join()

    best_read = best_copy = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        read_all()
        best_read = min(best_read, time.perf_counter() - start)
        start = time.perf_counter()
        np.copyto(dst, src)
        best_copy = min(best_copy, time.perf_counter() - start)
    size = src.nbytes
    return {"read_gbs": size / best_read / 1e9, "copy_gbs": 2 * size / best_copy / 1e9,
            "threads": threads, "megabytes": megabytes}


def bytes_per_token(runner: str, dtype: str, hf_dir: Path, folder: Path) -> dict[str, int]:
    """Weight bytes a decode step reads: decoder layers and LM head, as the backend stores them."""
    if runner != "torch":
        return _onnx_weight_bytes(Path(folder) / "model.onnx")
    width = 2 if dtype == "bfloat16" else 4
    found = {"layers": 0, "lm_head": 0}
    for name, count in _checkpoint_tensors(Path(hf_dir)):
        part = _part(name)
        if part:
            found[part] += count * width
    return found


def weight_bytes(folder: Path, runner: str, dtype: str) -> int:
    """Bytes of all weights a backend loads: the export's graph files, or the checkpoint in `dtype`."""
    if runner != "torch":
        return sum(p.stat().st_size for p in Path(folder).iterdir()
                   if p.name.endswith((".onnx", ".onnx.data")))
    width = 2 if dtype == "bfloat16" else 4
    return sum(count * width for _, count in _checkpoint_tensors(Path(folder)))


def _part(name: str) -> str | None:
    if "visual" in name or "embed_tokens" in name:
        return None
    if "lm_head" in name:
        return "lm_head"
    return "layers" if ".layers." in f".{name}" else None


def _onnx_weight_bytes(model_path: Path) -> dict[str, int]:
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    found = {"layers": 0, "lm_head": 0}
    for init in model.graph.initializer:
        part = _part(init.name)
        if not part:
            continue
        entries = {e.key: e.value for e in init.external_data}
        found[part] += int(entries["length"]) if "length" in entries else len(init.raw_data)
    return found


def _checkpoint_tensors(hf_dir: Path):
    """(name, element count) of every tensor, from the safetensors headers."""
    for path in sorted(hf_dir.glob("*.safetensors")):
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        for name, meta in header.items():
            if name != "__metadata__":
                count = 1
                for dim in meta["shape"]:
                    count *= dim
                yield name, count


def extrapolate(step: dict[str, Any], shape: Shape, weights: dict[str, int],
                size: tuple[int, int]) -> dict[str, Any]:
    """Per-layer costs of one measured step and the full-model step they add up to."""
    w, h = size
    patches = (w // shape.patch) * (h // shape.patch)
    encoded = step["images_encoded"]
    out: dict[str, Any] = {"step": step["step"]}
    # Vision: split by MACs into windowed blocks, full-attention blocks and the rest.
    v = shape.vision_macs(patches, encoded)
    windowed = shape.v_blocks - shape.v_full_blocks
    total = windowed * v["window"] + shape.v_full_blocks * v["full"] + v["other"]
    per = step["vision_s"] / total if encoded else 0.0
    out["vision_block_window_s"] = per * v["window"]
    out["vision_block_full_s"] = per * v["full"]
    out["vision_full_s"] = per * ((FULL["vision"] - FULL["vision_full_attention"]) * v["window"]
                                  + FULL["vision_full_attention"] * v["full"] + v["other"])
    # Prefill: decoder layers over the computed tokens (attending to the cached ones too); the
    # LM head runs for the last token only.
    layer = shape.text_layer_macs(step["computed_tokens"], step["cached_tokens"])
    head = shape.hidden * shape.vocab
    per = step["prefill_s"] / (shape.layers * layer + head)
    out["prefill_layer_s"] = per * layer
    out["prefill_full_s"] = per * (FULL["text"] * layer + head)
    # Decode: per token, split by weight bytes read (layers vs LM head).
    read = weights["layers"] + weights["lm_head"]
    t = step["decode_per_token_s"]
    out["decode_layer_ms"] = 1000 * t * weights["layers"] / shape.layers / read
    full_read = weights["layers"] / shape.layers * FULL["text"] + weights["lm_head"]
    out["decode_full_ms"] = 1000 * t * full_read / read
    out["full_weight_bytes"] = full_read
    out["step_full_s"] = (step["preprocess_s"] + out["vision_full_s"] + out["prefill_full_s"]
                          + out["decode_full_ms"] / 1000 * max(step["generated"] - 1, 0))
    return out
