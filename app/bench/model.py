"""The bench's cost model: memory bandwidth, weight bytes read per token, full-model estimates.

Extrapolation from a model with few layers to Fara-7B (28 text layers, 32 vision blocks, 4 of
them full-attention) splits each measured phase over its parts by a work model, then scales the
per-layer part:
- vision and prefill are compute-bound: the split follows multiply-accumulates (linear layers
  per token plus attention, which grows with the sequence: windows of 64 patches in windowed
  vision blocks, the whole image in full-attention blocks, the causal prompt in text layers);
- decode is memory-bound: the split follows the weight bytes read per token (decoder layers vs
  LM head, as stored by each backend).
Qwen3.5 (Fara1.5) decoders mix the two kinds of layer 3:1. A linear-attention layer has no
keys and values: its prefill work per token is constant (projections, a short convolution and
the gated delta rule on a fixed [heads, key dim, value dim] state), and a decode token reads its
weights plus that state (read and written back), whatever the context. Only the full-attention
layers grow with the context. Each kind is measured, split and scaled to its own full count.
"""

from __future__ import annotations

import json
import os
import re
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.bench.families import FullDepth, full_depth

STATE_WIDTH = 4  # recurrent and convolution states are kept in fp32 by both runtimes


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
    model_type: str = "qwen2_5_vl"
    linear_layers: int = 0      # built linear-attention layers (Qwen3.5); the rest are full
    lin_k_width: int = 0        # key heads x key head dim
    lin_v_width: int = 0        # value heads x value head dim
    lin_v_heads: int = 0
    lin_state: int = 0          # recurrent state elements: value heads x key dim x value dim
    conv_kernel: int = 0
    attn_gate: bool = False     # Qwen3.5 full attention: q_proj also emits an output gate
    v_mlp_mats: int = 3         # Qwen2.5-VL vision MLP is gated (3 matrices), Qwen3.5's is not (2)
    family: str = ""            # the --families key when known (Nano shares Fara1.5's model type)

    @property
    def full_layers(self) -> int:
        """Built full-attention (KV) layers."""
        return self.layers - self.linear_layers

    @property
    def full(self) -> FullDepth:
        """The depth of the real model of this shape's family."""
        return full_depth(self.model_type, self.family)

    def state_bytes(self) -> int:
        """Recurrent plus convolution state of one linear-attention layer (fp32)."""
        conv = (2 * self.lin_k_width + self.lin_v_width) * max(self.conv_kernel - 1, 0)
        return STATE_WIDTH * (self.lin_state + conv)

    @classmethod
    def from_config(cls, hf_dir: Path) -> Shape:
        """Read the sizes from `hf_dir/config.json` (nested text_config or flat)."""
        cfg = json.loads((Path(hf_dir) / "config.json").read_text())
        t, v = cfg.get("text_config") or cfg, cfg["vision_config"]
        head_dim = t.get("head_dim") or t["hidden_size"] // t["num_attention_heads"]
        window = int(v.get("window_size", 112)) // int(v.get("patch_size", 14))
        types = t.get("layer_types") or []
        hybrid = cfg.get("model_type") == "qwen3_5"
        return cls(
            hidden=t["hidden_size"], intermediate=t["intermediate_size"],
            q_width=t["num_attention_heads"] * head_dim,
            kv_width=t["num_key_value_heads"] * head_dim, vocab=t["vocab_size"],
            layers=t["num_hidden_layers"], v_hidden=v["hidden_size"],
            v_intermediate=v["intermediate_size"], v_out=v["out_hidden_size"],
            v_blocks=v["depth"],
            # Qwen2.5-VL lists its full-attention blocks; Qwen3.5 has no windows at all.
            v_full_blocks=len(v["fullatt_block_indexes"]) if "fullatt_block_indexes" in v
            else v["depth"],
            window_patches=window * window, patch=int(v.get("patch_size", 14)),
            merge=int(v.get("spatial_merge_size", 2)),
            model_type=str(cfg.get("model_type", "qwen2_5_vl")),
            linear_layers=sum(x == "linear_attention" for x in types),
            lin_k_width=t.get("linear_num_key_heads", 0) * t.get("linear_key_head_dim", 0),
            lin_v_width=t.get("linear_num_value_heads", 0) * t.get("linear_value_head_dim", 0),
            lin_v_heads=t.get("linear_num_value_heads", 0),
            lin_state=t.get("linear_num_value_heads", 0) * t.get("linear_key_head_dim", 0)
            * t.get("linear_value_head_dim", 0),
            conv_kernel=t.get("linear_conv_kernel_dim", 0),
            attn_gate=hybrid and bool(t.get("attn_output_gate", True)), v_mlp_mats=2 if hybrid else 3)

    def text_layer_macs(self, tokens: int, past: int = 0) -> float:
        """One decoder layer over `tokens` new tokens after `past` cached ones (causal)."""
        d = self.hidden
        q_out = self.q_width * (2 if self.attn_gate else 1)
        linear = d * (q_out + 2 * self.kv_width) + self.q_width * d + 3 * d * self.intermediate
        # QK^T and PV: each new token attends to the cached ones and, on average, half the new.
        return tokens * linear + 2 * tokens * (past + tokens / 2) * self.q_width

    def linear_layer_macs(self, tokens: int) -> float:
        """One linear-attention layer over `tokens` new tokens: no term grows with the past.

        Projections (q, k, v, output gate z, and the per-head decay and update gates), the causal
        convolution over q/k/v, the gated delta rule (per token and value head: read k^T S,
        update S by an outer product, read q^T S: three passes over the state), output, MLP.
        """
        d, k, v = self.hidden, self.lin_k_width, self.lin_v_width
        projections = d * (2 * k + 2 * v + 2 * self.lin_v_heads) + v * d + 3 * d * self.intermediate
        conv = self.conv_kernel * (2 * k + v)
        return tokens * (projections + conv + 3 * self.lin_state)

    def vision_macs(self, patches_per_image: int, images: int) -> dict[str, float]:
        """Per windowed block, per full-attention block, and the rest (patch embed, merger)."""
        d, n = self.v_hidden, patches_per_image * images
        linear = n * (4 * d * d + self.v_mlp_mats * d * self.v_intermediate)
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
    """Weight bytes a decode step reads, as the backend stores them: decoder layers (of which
    "linear" in linear-attention layers) and the LM head (the embedding when tied)."""
    if runner == "llamacpp":
        from app.bench.llamacpp import bytes_per_token as gguf_bytes

        return gguf_bytes(folder)
    linear = _linear_layer_indexes(Path(hf_dir))
    if runner != "torch":
        return _onnx_weight_bytes(Path(folder) / "model.onnx", linear)
    width = 2 if dtype == "bfloat16" else 4
    found = {"layers": 0, "linear": 0, "lm_head": 0}
    embedding = 0
    for name, count in _checkpoint_tensors(Path(hf_dir)):
        if "embed_tokens" in name and "visual" not in name:
            embedding += count * width
        _add(found, name, count * width, linear)
    if not found["lm_head"]:
        found["lm_head"] = embedding  # tied: the head multiplies by the embedding matrix
    return found


def weight_bytes(folder: Path, runner: str, dtype: str) -> int:
    """Bytes of all weights a backend loads: the export's graph files, or the checkpoint in `dtype`."""
    if runner == "llamacpp":
        from app.bench.llamacpp import weight_bytes as gguf_bytes

        return gguf_bytes(folder)
    if runner != "torch":
        return sum(p.stat().st_size for p in Path(folder).iterdir()
                   if p.name.endswith((".onnx", ".onnx.data")))
    width = 2 if dtype == "bfloat16" else 4
    return sum(count * width for _, count in _checkpoint_tensors(Path(folder)))


def _linear_layer_indexes(hf_dir: Path) -> frozenset[int]:
    cfg = json.loads((hf_dir / "config.json").read_text())
    types = (cfg.get("text_config") or cfg).get("layer_types") or []
    return frozenset(i for i, t in enumerate(types) if t == "linear_attention")


def _part(name: str) -> str | None:
    if "visual" in name or "embed_tokens" in name:
        return None
    if "lm_head" in name:
        return "lm_head"
    return "layers" if ".layers." in f".{name}" else None


def _add(found: dict[str, int], name: str, size: int, linear: frozenset[int]) -> None:
    """Count one weight of `size` bytes into its part (and into "linear" for those layers)."""
    part = _part(name)
    if not part:
        return
    found[part] += size
    index = re.search(r"layers\.(\d+)\.", name)
    if part == "layers" and index and int(index.group(1)) in linear:
        found["linear"] += size


def _onnx_weight_bytes(model_path: Path, linear: frozenset[int]) -> dict[str, int]:
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    found = {"layers": 0, "linear": 0, "lm_head": 0}
    for init in model.graph.initializer:
        entries = {e.key: e.value for e in init.external_data}
        size = int(entries["length"]) if "length" in entries else len(init.raw_data)
        _add(found, init.name, size, linear)
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
    full = shape.full
    out: dict[str, Any] = {"step": step["step"]}
    out |= _vision_costs(step, shape, size, full)
    out |= _prefill_costs(step, shape, full)
    out |= _decode_costs(step, shape, weights, full)
    out["step_full_s"] = (step["preprocess_s"] + out["vision_full_s"] + out["prefill_full_s"]
                          + out["decode_full_ms"] / 1000 * max(step["generated"] - 1, 0))
    return out


def _vision_costs(step: dict[str, Any], shape: Shape, size: tuple[int, int],
                  full: FullDepth) -> dict[str, float]:
    """Vision split by MACs into windowed blocks, full-attention blocks and the rest."""
    w, h = size
    patches = (w // shape.patch) * (h // shape.patch)
    encoded = step["images_encoded"]
    v = shape.vision_macs(patches, encoded)
    windowed = shape.v_blocks - shape.v_full_blocks
    total = windowed * v["window"] + shape.v_full_blocks * v["full"] + v["other"]
    per = step["vision_s"] / total if encoded else 0.0
    return {"vision_block_window_s": per * v["window"], "vision_block_full_s": per * v["full"],
            "vision_full_s": per * ((full.vision - full.vision_full) * v["window"]
                                    + full.vision_full * v["full"] + v["other"])}


def _prefill_costs(step: dict[str, Any], shape: Shape, full: FullDepth) -> dict[str, float]:
    """Decoder layers over the computed tokens, full-attention ones attending to the cached
    tokens too, linear-attention ones not; the LM head runs for the last token only."""
    tokens = step["computed_tokens"]
    attn = shape.text_layer_macs(tokens, step["cached_tokens"])
    lin = shape.linear_layer_macs(tokens) if shape.linear_layers else 0.0
    head = shape.hidden * shape.vocab
    per = step["prefill_s"] / (shape.full_layers * attn + shape.linear_layers * lin + head)
    full_attn = full.text - full.linear
    return {"prefill_layer_s": per * attn, "prefill_linear_layer_s": per * lin,
            "prefill_full_s": per * (full_attn * attn + full.linear * lin + head)}


def _decode_costs(step: dict[str, Any], shape: Shape, weights: dict[str, int],
                  full: FullDepth) -> dict[str, float]:
    """Per token, split by bytes read: each kind of layer's weights, a linear layer's state
    (read and written back), and the LM head. Keys and values are left out on both sides (a
    short context at reduced depth; the bound table counts them)."""
    linear = weights.get("linear", 0)
    state = 2 * shape.state_bytes()
    per_lin = linear / shape.linear_layers + state if shape.linear_layers else 0.0
    per_attn = (weights["layers"] - linear) / max(shape.full_layers, 1)
    read = shape.full_layers * per_attn + shape.linear_layers * per_lin + weights["lm_head"]
    full_read = (full.text - full.linear) * per_attn + full.linear * per_lin + weights["lm_head"]
    t = step["decode_per_token_s"]
    return {"decode_layer_ms": 1000 * t * per_attn / read,
            "decode_linear_layer_ms": 1000 * t * per_lin / read,
            "decode_full_ms": 1000 * t * full_read / read, "full_weight_bytes": full_read}
