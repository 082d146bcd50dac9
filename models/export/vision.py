"""Write vision.onnx for a Qwen2.5-VL vision tower, correct for any grid and any image count.

A traced export bakes the window permutation of one grid into the graph. Here the graph computes,
from `image_grid_thw` with tensor ops, where every patch sits: its image, frame, row/column (for
the 2-D rotary embedding), its window and its frame. Attention then runs as one batched op per
block over a padded layout: windows of `ws×ws` merged tokens (64 patch slots each) for windowed
blocks, one padded slot set per frame for full-attention blocks, with padded keys masked. Patches
stay in the processor's order throughout, so the 2×2 merge at the end needs no reordering.
`pixel_values` may come packed (transformers) or padded per image to the largest one
(onnxruntime-genai with images of different sizes); both give the packed features.
The pieces shared with the Qwen3.5 tower are in `models.export.vision_blocks`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from models.export.graph import GraphBuilder
from models.export.vision_blocks import (
    Patches,
    activation,
    attention,
    ceil_div,
    close_tower,
    frame_layout,
    linear,
    open_tower,
    padded_layout,
    rms_norm,
    rotary_tables,
)
from models.export.weights import Weights


def build_vision(weights: Weights, vision_cfg: dict, out_path: Path,
                 tick: Callable[[], None] = lambda: None) -> Path:
    """Write vision.onnx: pixel_values [N, C*T*P*P] + image_grid_thw [I, 3] -> image_features."""
    t = open_tower("deskhand_vision", vision_cfg)
    g, p, heads, hd, merge = t.g, t.p, t.heads, t.head_dim, t.merge
    patch = int(vision_cfg.get("patch_size", 14))
    ws = int(vision_cfg.get("window_size", 112)) // merge // patch
    full_blocks = set(vision_cfg.get("fullatt_block_indexes", []))
    act = vision_cfg.get("hidden_act", "silu")
    pre = weights.prefix_of("patch_embed.proj.weight")
    rope = rotary_tables(g, p, hd, t.theta)
    win_layout = _window_layout(g, p, merge, ws, rope, heads, hd)
    full_layout = frame_layout(g, p, rope, heads, hd)

    lin = linear(g, weights, pre)

    def rms(x: str, name: str) -> str:
        return rms_norm(g, x, g.weight(name, weights.get(pre + name)))

    x = lin(p.pix, "patch_embed.proj", bias=False)
    tick()
    for i in range(t.depth):
        blk = f"blocks.{i}"
        lay = full_layout if i in full_blocks else win_layout
        mixed = attention(g, lin(rms(x, f"{blk}.norm1.weight"), f"{blk}.attn.qkv"), lay, heads, hd)
        x = g.op("Add", x, lin(mixed, f"{blk}.attn.proj"))
        hmid = rms(x, f"{blk}.norm2.weight")
        gate = activation(g, lin(hmid, f"{blk}.mlp.gate_proj"), act)
        x = g.op("Add", x, lin(g.op("Mul", gate, lin(hmid, f"{blk}.mlp.up_proj")),
                                   f"{blk}.mlp.down_proj"))
        tick()
    return close_tower(t, rms(x, "merger.ln_q.weight"), lin, "merger.mlp.0", "merger.mlp.2",
                       out_path)


def _window_layout(g: GraphBuilder, p: Patches, merge: int, ws: int, rope: tuple[str, str],
                   heads: int, hd: int) -> dict:
    """Windows of ws×ws merged tokens, numbered image by image, frame by frame."""
    i64 = g.const
    mu = merge * merge
    nwh_i = ceil_div(g, g.op("Div", p.h, i64(merge)), ws)
    nww_i = ceil_div(g, g.op("Div", p.w, i64(merge)), ws)
    win_frame_i = g.op("Mul", nwh_i, nww_i)
    wins_i = g.op("Mul", p.t, win_frame_i)
    win_start = g.op("CumSum", wins_i, i64(0), exclusive=1)
    n_windows = g.op("ReduceSum", wins_i, i64([0]), keepdims=1)
    wid = g.op("Add", g.op("Gather", win_start, p.img),
               g.op("Mul", p.frame, g.op("Gather", win_frame_i, p.img)))
    wid = g.op("Add", wid, g.op("Mul", g.op("Div", p.bh, i64(ws)), g.op("Gather", nww_i, p.img)))
    wid = g.op("Add", wid, g.op("Div", p.bw, i64(ws)))
    in_win = g.op("Add", g.op("Mul", g.op("Mod", p.bh, i64(ws)), i64(ws)), g.op("Mod", p.bw, i64(ws)))
    within = g.op("Mod", p.local, i64(mu))
    in_win = g.op("Add", g.op("Mul", in_win, i64(mu)), within)
    win_size = i64([ws * ws * mu])
    win_slot = g.op("Add", g.op("Mul", wid, win_size), in_win)
    return padded_layout(g, p, win_slot, n_windows, win_size, rope, heads, hd, chunked=False)
