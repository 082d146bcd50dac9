"""Write vision.onnx for a Qwen2.5-VL vision tower, correct for any grid and any image count.

A traced export bakes the window permutation of one grid into the graph. Here the graph computes,
from `image_grid_thw` with tensor ops, where every patch sits: its image, frame, row/column (for
the 2-D rotary embedding), its window and its frame. Attention then runs as one batched op per
block over a padded layout: windows of `ws×ws` merged tokens (64 patch slots each) for windowed
blocks, one padded slot set per frame for full-attention blocks, with padded keys masked. Patches
stay in the processor's order throughout, so the 2×2 merge at the end needs no reordering.
`pixel_values` may come packed (transformers) or padded per image to the largest one
(onnxruntime-genai with images of different sizes); both give the packed features.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.export.graph import GraphBuilder
from models.export.weights import Weights

NEG = -1e9  # additive mask for padded keys; softmax weight exp(-1e9) is exactly 0 in fp32
# Full-attention blocks run over query chunks of this size in a Scan, so the score tensor is
# [frames, heads, CHUNK, S] rather than [frames, heads, S, S]: for Fara (16 heads) and one
# 1428x896 screenshot that is 55 MB (scores and their softmax, twice that) instead of 2.8 GB.
CHUNK = 128


def build_vision(weights: Weights, vision_cfg: dict, out_path: Path,
                 tick: Callable[[], None] = lambda: None) -> Path:
    """Write vision.onnx: pixel_values [N, C*T*P*P] + image_grid_thw [I, 3] -> image_features."""
    from onnx import TensorProto

    d = int(vision_cfg["hidden_size"])
    heads = int(vision_cfg["num_heads"])
    hd = d // heads
    merge = int(vision_cfg.get("spatial_merge_size", 2))
    patch = int(vision_cfg.get("patch_size", 14))
    ws = int(vision_cfg.get("window_size", 112)) // merge // patch
    depth = int(vision_cfg["depth"])
    full_blocks = set(vision_cfg.get("fullatt_block_indexes", []))
    act = vision_cfg.get("hidden_act", "silu")
    theta = float((vision_cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0))
    mu = merge * merge
    pre = weights.prefix_of("patch_embed.proj.weight")

    g = GraphBuilder("deskhand_vision")
    pix = g.input("pixel_values", TensorProto.FLOAT, ["num_patches", "patch_dim"])
    grid = g.input("image_grid_thw", TensorProto.INT64, ["num_images", 3])
    i64 = g.const

    # --- where every patch sits (int64 index arithmetic) ---
    def col(j: int) -> str:
        return g.op("Gather", grid, i64(j), axis=1)

    t, h, w = col(0), col(1), col(2)
    hw = g.op("Mul", h, w)
    counts = g.op("Mul", t, hw)
    starts = g.op("CumSum", counts, i64(0), exclusive=1)
    n = g.op("ReduceSum", counts, i64([0]), keepdims=0)  # patches in all images (scalar)
    p = g.op("Range", i64(0), n, i64(1))
    after = g.op("GreaterOrEqual", g.op("Unsqueeze", p, i64([1])),
                 g.op("Unsqueeze", starts, i64([0])))
    img = g.op("Sub", g.op("ReduceSum", g.op("Cast", after, to=TensorProto.INT64), i64([1]),
                           keepdims=0), i64(1))
    local = g.op("Sub", p, g.op("Gather", starts, img))
    # transformers packs the images' patches back to back; onnxruntime-genai pads every image
    # to the largest one when sizes differ. Gather the real patches into the packed layout.
    rows = g.op("Gather", g.op("Shape", pix), i64(0), axis=0)
    n_images = g.op("Gather", g.op("Shape", grid), i64(0), axis=0)
    stride = g.op("Div", rows, n_images)
    padded_starts = g.op("Mul", g.op("Range", i64(0), n_images, i64(1)), stride)
    source_starts = g.op("Where", g.op("Equal", rows, n), starts, padded_starts)
    pix = g.op("Gather", pix, g.op("Add", g.op("Gather", source_starts, img), local), axis=0)
    h2i, w2i = g.op("Div", h, i64(merge)), g.op("Div", w, i64(merge))
    h2, w2 = g.op("Gather", h2i, img), g.op("Gather", w2i, img)
    token = g.op("Div", local, i64(mu))
    within = g.op("Mod", local, i64(mu))
    per_frame = g.op("Mul", h2, w2)
    frame = g.op("Div", token, per_frame)
    rem = g.op("Mod", token, per_frame)
    bh, bw = g.op("Div", rem, w2), g.op("Mod", rem, w2)
    row = g.op("Add", g.op("Mul", bh, i64(merge)), g.op("Div", within, i64(merge)))
    colm = g.op("Add", g.op("Mul", bw, i64(merge)), g.op("Mod", within, i64(merge)))

    # Window layout: windows of ws×ws merged tokens, numbered image by image, frame by frame.
    def ceil_div(x: str, k: int) -> str:
        return g.op("Div", g.op("Add", x, i64(k - 1)), i64(k))

    nwh_i, nww_i = ceil_div(h2i, ws), ceil_div(w2i, ws)
    win_frame_i = g.op("Mul", nwh_i, nww_i)
    wins_i = g.op("Mul", t, win_frame_i)
    win_start = g.op("CumSum", wins_i, i64(0), exclusive=1)
    n_windows = g.op("ReduceSum", wins_i, i64([0]), keepdims=1)
    wid = g.op("Add", g.op("Gather", win_start, img),
               g.op("Mul", frame, g.op("Gather", win_frame_i, img)))
    wid = g.op("Add", wid, g.op("Mul", g.op("Div", bh, i64(ws)), g.op("Gather", nww_i, img)))
    wid = g.op("Add", wid, g.op("Div", bw, i64(ws)))
    in_win = g.op("Add", g.op("Mul", g.op("Mod", bh, i64(ws)), i64(ws)), g.op("Mod", bw, i64(ws)))
    in_win = g.op("Add", g.op("Mul", in_win, i64(mu)), within)
    win_size = i64([ws * ws * mu])
    win_slot = g.op("Add", g.op("Mul", wid, win_size), in_win)

    # Full-attention layout: one padded slot set per frame (each image has t frames).
    frame_start = g.op("CumSum", t, i64(0), exclusive=1)
    n_frames = g.op("ReduceSum", t, i64([0]), keepdims=1)
    full_size = g.op("Mul", ceil_div(g.op("ReduceMax", hw, axes=[0], keepdims=1), CHUNK),
                     i64([CHUNK]))
    fid = g.op("Add", g.op("Gather", frame_start, img), frame)
    full_slot = g.op("Add", g.op("Mul", fid, full_size),
                     g.op("Mod", local, g.op("Gather", hw, img)))

    # --- rotary tables in the padded layouts ---
    spatial = hd // 2
    inv = (1.0 / (theta ** (np.arange(0, spatial, 2, dtype=np.float32) / spatial))).astype(np.float32)
    inv_c = g.const(inv, np.float32)
    fr_h = g.op("Mul", g.op("Unsqueeze", g.op("Cast", row, to=TensorProto.FLOAT), i64([1])), inv_c)
    fr_w = g.op("Mul", g.op("Unsqueeze", g.op("Cast", colm, to=TensorProto.FLOAT), i64([1])), inv_c)
    fr = g.op("Concat", fr_h, fr_w, axis=1)
    emb = g.op("Concat", fr, fr, axis=1)  # [N, hd]
    cos, sin = g.op("Cos", emb), g.op("Sin", emb)

    def layout(slot: str, groups: str, size: str, chunked: bool) -> dict:
        total = g.op("Mul", groups, size)
        index = g.op("Unsqueeze", slot, i64([1]))

        def pad(x: str, width: int) -> str:
            zeros = g.op("ConstantOfShape", g.op("Concat", total, i64([width]), axis=0))
            return g.op("ScatterND", zeros, index, x)

        ones = g.op("Expand", g.const([[1.0]], np.float32), g.op("Concat", g.op(
            "Unsqueeze", n, i64([0])), i64([1]), axis=0))  # [N, 1]
        valid = pad(ones, 1)  # [G*S, 1]
        bias = g.op("Mul", g.op("Sub", g.const(1.0, np.float32), valid), g.const(NEG, np.float32))
        bias = g.op("Reshape", bias, g.op("Concat", groups, i64([1]), size, i64([1]), axis=0))
        rope_shape = g.op("Concat", groups, i64([1]), size, i64([hd]), axis=0)
        return {
            "pad": pad, "index": slot, "bias": bias,
            "cos": g.op("Reshape", pad(cos, hd), rope_shape),
            "sin": g.op("Reshape", pad(sin, hd), rope_shape),
            "qkv_shape": g.op("Concat", groups, size, i64([3, heads, hd]), axis=0),
            "chunks": g.op("Concat", groups, i64([heads, -1, CHUNK, hd + 1]), axis=0)
            if chunked else None,
        }

    win_layout = layout(win_slot, n_windows, win_size, chunked=False)
    full_layout = layout(full_slot, n_frames, full_size, chunked=True)

    # --- the network ---
    def lin(x: str, name: str, bias: bool = True) -> str:
        wt = weights.get(pre + name + ".weight")
        y = g.op("MatMul", x, g.weight(name + ".weight_t", wt.reshape(wt.shape[0], -1).T))
        if bias:
            y = g.op("Add", y, g.weight(name + ".bias", weights.get(pre + name + ".bias")))
        return y

    def rms(x: str, name: str) -> str:
        ms = g.op("ReduceMean", g.op("Mul", x, x), axes=[-1], keepdims=1)
        y = g.op("Div", x, g.op("Sqrt", g.op("Add", ms, g.const(1e-6, np.float32))))
        return g.op("Mul", y, g.weight(name, weights.get(pre + name)))

    def activation(x: str, kind: str) -> str:
        if kind == "silu":
            return g.op("Mul", x, g.op("Sigmoid", x))
        if kind in ("gelu", "gelu_exact"):
            erf = g.op("Erf", g.op("Mul", x, g.const(1 / math.sqrt(2), np.float32)))
            return g.op("Mul", g.op("Mul", x, g.const(0.5, np.float32)),
                        g.op("Add", erf, g.const(1.0, np.float32)))
        if kind == "quick_gelu":
            return g.op("Mul", x, g.op("Sigmoid", g.op("Mul", x, g.const(1.702, np.float32))))
        raise ValueError(f"unsupported vision activation {kind!r}")

    def rotate(x: str, lay: dict) -> str:
        x1, x2 = g.op("Slice", x, i64([0]), i64([hd // 2]), i64([-1])), \
            g.op("Slice", x, i64([hd // 2]), i64([hd]), i64([-1]))
        rot = g.op("Concat", g.op("Neg", x2), x1, axis=-1)
        return g.op("Add", g.op("Mul", x, lay["cos"]), g.op("Mul", rot, lay["sin"]))

    def attention(x: str, blk: str, lay: dict) -> str:
        qkv = lay["pad"](lin(x, f"{blk}.attn.qkv"), 3 * d)  # [G*S, 3D], padded rows are 0
        qkv = g.op("Transpose", g.op("Reshape", qkv, lay["qkv_shape"]), perm=[2, 0, 3, 1, 4])
        q = g.op("Gather", qkv, i64(0), axis=0)  # [G, heads, S, hd]
        k = g.op("Gather", qkv, i64(1), axis=0)
        v = g.op("Gather", qkv, i64(2), axis=0)
        q = g.op("Mul", rotate(q, lay), g.const(hd ** -0.5, np.float32))
        k = rotate(k, lay)
        # The key mask rides along as one extra dimension (q gets a 1, k the 0 / -1e9 bias):
        # q'·k' = q·k + bias, which saves a pass over the large [G, heads, S, S] score tensor.
        edge = g.op("Shape", g.op("Slice", k, i64([0]), i64([1]), i64([-1])))  # [G, heads, S, 1]
        q = g.op("Concat", q, g.op("Expand", g.const(1.0, np.float32), edge), axis=-1)
        k = g.op("Concat", k, g.op("Expand", lay["bias"], edge), axis=-1)
        k_t = g.op("Transpose", k, perm=[0, 1, 3, 2])
        if lay["chunks"] is None:
            out = g.op("MatMul", g.op("Softmax", g.op("MatMul", q, k_t), axis=-1), v)
        else:
            out = chunked_attention(q, k_t, v, lay["chunks"])
        # out: [G, heads, S, hd]
        out = g.op("Reshape", g.op("Transpose", out, perm=[0, 2, 1, 3]), i64([-1, d]))
        out = g.op("Gather", out, lay["index"], axis=0)  # back to patch order
        return lin(out, f"{blk}.attn.proj")

    def chunked_attention(q: str, k_t: str, v: str, chunks_shape: str) -> str:
        """softmax(q k_t) v, one query chunk per Scan iteration (bounded peak memory)."""
        body = g.body("query_chunk")
        q_chunk = body.input(g._fresh("q_chunk"), TensorProto.FLOAT, None)
        probs = body.op("Softmax", body.op("MatMul", q_chunk, k_t), axis=-1)
        body.output(g._fresh("out_chunk"), body.op("MatMul", probs, v), TensorProto.FLOAT, None)
        q = g.op("Reshape", q, chunks_shape)  # [G, heads, n_chunks, CHUNK, hd + 1]
        out = g.op("Scan", q, body=body.graph(), num_scan_inputs=1, scan_input_axes=[2],
                   scan_output_axes=[2])  # [G, heads, n_chunks, CHUNK, hd]
        shape = g.op("Concat", g.op("Slice", g.op("Shape", out), i64([0]), i64([2])),
                     i64([-1, hd]), axis=0)
        return g.op("Reshape", out, shape)

    x = lin(pix, "patch_embed.proj", bias=False)
    tick()
    for i in range(depth):
        blk = f"blocks.{i}"
        lay = full_layout if i in full_blocks else win_layout
        x = g.op("Add", x, attention(rms(x, f"{blk}.norm1.weight"), blk, lay))
        hmid = rms(x, f"{blk}.norm2.weight")
        gate = activation(lin(hmid, f"{blk}.mlp.gate_proj"), act)
        x = g.op("Add", x, lin(g.op("Mul", gate, lin(hmid, f"{blk}.mlp.up_proj")),
                                   f"{blk}.mlp.down_proj"))
        tick()
    y = g.op("Reshape", rms(x, "merger.ln_q.weight"), i64([-1, d * mu]))
    y = lin(activation(lin(y, "merger.mlp.0"), "gelu"), "merger.mlp.2")
    out_dim = int(vision_cfg.get("out_hidden_size", d))
    g.output("image_features", y, TensorProto.FLOAT, ["num_tokens", out_dim])
    return g.save(out_path)
