"""Write vision.onnx for a Qwen3.5 vision tower, correct for any grid and 1–3 (or more) images.

Qwen3.5's tower differs from Qwen2.5-VL's: patch 16 with a biased patch embedding, a learned
position table (a square `side × side` grid) resampled bilinearly to each image's grid and added
to the patch embeddings, LayerNorm instead of RMSNorm, a plain two-layer MLP, full attention in
every block (within each frame: images never attend to each other) and a LayerNorm merger.
Patch placement, 2-D rotary, the per-frame padded attention layout and the blocks' ops are
shared with the Qwen2.5-VL tower (`models.export.vision_blocks`).

The position-table resampling is computed in the graph from `image_grid_thw` (not fed as extra
inputs): the graph keeps the same two inputs as the Qwen2.5-VL one, so the runtime and
onnxruntime-genai call both families alike, and the runtime needs neither the table's side nor
a copy of the rule. The ops are transformers' own (`get_vision_interpolation_indices_and_weights`,
bilinear, align_corners=True) in the same float32 order, so the weights are bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.export.graph import GraphBuilder
from models.export.vision_blocks import (
    Patches,
    activation,
    attention,
    close_tower,
    frame_layout,
    layer_norm,
    linear,
    open_tower,
    rotary_tables,
)
from models.export.weights import Weights


def build_vision(weights: Weights, vision_cfg: dict, out_path: Path,
                        tick: Callable[[], None] = lambda: None) -> Path:
    """Write vision.onnx: pixel_values [N, C*T*P*P] + image_grid_thw [I, 3] -> image_features."""
    t = open_tower("deskhand_qwen35_vision", vision_cfg)
    g, p, heads, hd = t.g, t.p, t.heads, t.head_dim
    act = vision_cfg.get("hidden_act", "gelu_pytorch_tanh")
    pre = weights.prefix_of("patch_embed.proj.weight")
    lay = frame_layout(g, p, rotary_tables(g, p, hd, t.theta), heads, hd)
    lin = linear(g, weights, pre)

    def norm(x: str, name: str) -> str:
        return layer_norm(g, x, g.weight(name + ".weight", weights.get(pre + name + ".weight")),
                          g.weight(name + ".bias", weights.get(pre + name + ".bias")))

    table = weights.get(pre + "pos_embed.weight")
    x = g.op("Add", lin(p.pix, "patch_embed.proj"), position_embeddings(g, p, table))
    tick()
    for i in range(t.depth):
        blk = f"blocks.{i}"
        mixed = attention(g, lin(norm(x, f"{blk}.norm1"), f"{blk}.attn.qkv"), lay, heads, hd)
        x = g.op("Add", x, lin(mixed, f"{blk}.attn.proj"))
        hidden = activation(g, lin(norm(x, f"{blk}.norm2"), f"{blk}.mlp.linear_fc1"), act)
        x = g.op("Add", x, lin(hidden, f"{blk}.mlp.linear_fc2"))
        tick()
    return close_tower(t, norm(x, "merger.norm"), lin, "merger.linear_fc1", "merger.linear_fc2",
                       out_path)


def position_embeddings(g: GraphBuilder, p: Patches, table: np.ndarray) -> str:
    """[N, D]: the learned square position table resampled to each patch's image grid.

    Bilinear with align_corners=True, as transformers does it: per axis the source coordinate
    is `index * (side - 1) / max(size - 1, 1)`, taps floor and floor + 1 (clamped to the table),
    weights `max(1 - |src - floor - k|, 0)`; the 2-D taps are the outer product of the axes'.
    """
    side = round(table.shape[0] ** 0.5)
    if side * side != table.shape[0]:
        raise ValueError(f"position table of {table.shape[0]} rows is not a square grid")
    emb = g.weight("pos_embed.weight", table)
    heights = g.op("Gather", p.h, p.img)
    widths = g.op("Gather", p.w, p.img)
    h_taps, h_weights = _axis_taps(g, p.row, heights, side)
    w_taps, w_weights = _axis_taps(g, p.col, widths, side)
    out = None
    for hi in range(2):
        for wi in range(2):
            index = g.op("Add", g.op("Mul", h_taps[hi], g.const(side)), w_taps[wi])
            weight = g.op("Unsqueeze", g.op("Mul", h_weights[hi], w_weights[wi]), g.const([1]))
            term = g.op("Mul", g.op("Gather", emb, index, axis=0), weight)
            out = term if out is None else g.op("Add", out, term)
    return out


def _axis_taps(g: GraphBuilder, index: str, size: str, side: int) -> tuple[list[str], list[str]]:
    """The two taps (int64) and weights (float32) along one axis, for int64 `index` of `size`."""
    from onnx import TensorProto

    f32 = g.const
    span = g.op("Cast", g.op("Max", g.op("Sub", size, g.const(1)), g.const(1)),
                to=TensorProto.FLOAT)
    src = g.op("Div", g.op("Mul", g.op("Cast", index, to=TensorProto.FLOAT),
                           f32(float(side - 1), np.float32)), span)
    floor = g.op("Floor", src)
    frac = g.op("Sub", src, floor)
    base = g.op("Cast", floor, to=TensorProto.INT64)
    taps, weights = [], []
    for k in range(2):
        tap = g.op("Min", g.op("Max", g.op("Add", base, g.const(k)), g.const(0)),
                   g.const(side - 1))
        distance = g.op("Abs", g.op("Sub", frac, f32(float(k), np.float32)))
        weight = g.op("Max", g.op("Sub", f32(1.0, np.float32), distance), f32(0.0, np.float32))
        taps.append(tap)
        weights.append(weight)
    return taps, weights
