"""Graph pieces shared by the hand-written vision towers (Qwen2.5-VL, Qwen3.5).

Both towers take packed patches plus `image_grid_thw` and must be correct for any grid and any
image count, so every index is computed in the graph from the grid: where each patch sits
(`locate_patches`), its 2-D rotary angles, and a padded per-frame layout in which attention
runs as one batched op with padded keys masked, so no image attends to another.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.export.graph import GraphBuilder
from models.export.weights import Weights

NEG = -1e9  # additive mask for padded keys; softmax weight exp(-1e9) is exactly 0 in fp32
# Full-attention blocks run over query chunks of this size in a Scan, so the score tensor is
# [frames, heads, CHUNK, S] rather than [frames, heads, S, S]: for Fara (16 heads) and one
# 1428x896 screenshot that is 55 MB (scores and their softmax, twice that) instead of 2.8 GB.
CHUNK = 128


@dataclass(frozen=True)
class Patches:
    """Per-patch int64 index tensors [N] (and per-image ones [I]) computed from the grid."""

    pix: str      # pixel rows in the packed order [N, C*T*P*P]
    n: str        # patch count (scalar)
    img: str      # image of each patch
    local: str    # index of the patch within its image
    t: str        # frames per image [I]
    h: str        # patch rows per image [I]
    w: str        # patch columns per image [I]
    hw: str       # patches per frame per image [I]
    frame: str    # frame of each patch within its image
    bh: str       # merged-token row of each patch
    bw: str       # merged-token column of each patch
    row: str      # patch row within its frame
    col: str      # patch column within its frame


def locate_patches(g: GraphBuilder, pix: str, grid: str, merge: int) -> Patches:
    """Where every patch sits, from `image_grid_thw` with tensor ops (processor order kept).

    The processor emits patches frame by frame in 2×2 merge blocks in reading order; `row`/`col`
    undo that order. transformers packs the images' patches back to back; onnxruntime-genai
    pads every image to the largest one when sizes differ: both are gathered to the packed layout.
    """
    from onnx import TensorProto

    i64 = g.const

    def col_of(j: int) -> str:
        return g.op("Gather", grid, i64(j), axis=1)

    t, h, w = col_of(0), col_of(1), col_of(2)
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
    rows = g.op("Gather", g.op("Shape", pix), i64(0), axis=0)
    n_images = g.op("Gather", g.op("Shape", grid), i64(0), axis=0)
    stride = g.op("Div", rows, n_images)
    padded_starts = g.op("Mul", g.op("Range", i64(0), n_images, i64(1)), stride)
    source_starts = g.op("Where", g.op("Equal", rows, n), starts, padded_starts)
    pix = g.op("Gather", pix, g.op("Add", g.op("Gather", source_starts, img), local), axis=0)
    mu = merge * merge
    h2 = g.op("Gather", g.op("Div", h, i64(merge)), img)
    w2 = g.op("Gather", g.op("Div", w, i64(merge)), img)
    token = g.op("Div", local, i64(mu))
    within = g.op("Mod", local, i64(mu))
    per_frame = g.op("Mul", h2, w2)
    frame = g.op("Div", token, per_frame)
    rem = g.op("Mod", token, per_frame)
    bh, bw = g.op("Div", rem, w2), g.op("Mod", rem, w2)
    row = g.op("Add", g.op("Mul", bh, i64(merge)), g.op("Div", within, i64(merge)))
    col = g.op("Add", g.op("Mul", bw, i64(merge)), g.op("Mod", within, i64(merge)))
    return Patches(pix=pix, n=n, img=img, local=local, t=t, h=h, w=w, hw=hw, frame=frame,
                   bh=bh, bw=bw, row=row, col=col)


def ceil_div(g: GraphBuilder, x: str, k: int) -> str:
    return g.op("Div", g.op("Add", x, g.const(k - 1)), g.const(k))


def rotary_tables(g: GraphBuilder, p: Patches, hd: int, theta: float) -> tuple[str, str]:
    """cos, sin [N, hd] of the 2-D rotary embedding: half the frequencies on rows, half on columns."""
    from onnx import TensorProto

    spatial = hd // 2
    inv = (1.0 / (theta ** (np.arange(0, spatial, 2, dtype=np.float32) / spatial))).astype(np.float32)
    inv_c = g.const(inv, np.float32)

    def angles(x: str) -> str:
        return g.op("Mul", g.op("Unsqueeze", g.op("Cast", x, to=TensorProto.FLOAT),
                                g.const([1])), inv_c)

    fr = g.op("Concat", angles(p.row), angles(p.col), axis=1)
    emb = g.op("Concat", fr, fr, axis=1)  # [N, hd]
    return g.op("Cos", emb), g.op("Sin", emb)


def padded_layout(g: GraphBuilder, p: Patches, slot: str, groups: str, size: str,
                  rope: tuple[str, str], heads: int, hd: int, chunked: bool) -> dict:
    """Patch rows scattered to `groups` padded sets of `size` slots, with the key mask and rotary."""
    i64 = g.const
    total = g.op("Mul", groups, size)
    index = g.op("Unsqueeze", slot, i64([1]))

    def pad(x: str, width: int) -> str:
        zeros = g.op("ConstantOfShape", g.op("Concat", total, i64([width]), axis=0))
        return g.op("ScatterND", zeros, index, x)

    ones = g.op("Expand", g.const([[1.0]], np.float32), g.op("Concat", g.op(
        "Unsqueeze", p.n, i64([0])), i64([1]), axis=0))  # [N, 1]
    valid = pad(ones, 1)  # [G*S, 1]
    bias = g.op("Mul", g.op("Sub", g.const(1.0, np.float32), valid), g.const(NEG, np.float32))
    bias = g.op("Reshape", bias, g.op("Concat", groups, i64([1]), size, i64([1]), axis=0))
    rope_shape = g.op("Concat", groups, i64([1]), size, i64([hd]), axis=0)
    cos, sin = rope
    return {
        "pad": pad, "index": slot, "bias": bias,
        "cos": g.op("Reshape", pad(cos, hd), rope_shape),
        "sin": g.op("Reshape", pad(sin, hd), rope_shape),
        "qkv_shape": g.op("Concat", groups, size, i64([3, heads, hd]), axis=0),
        "chunks": g.op("Concat", groups, i64([heads, -1, CHUNK, hd + 1]), axis=0)
        if chunked else None,
    }


def frame_layout(g: GraphBuilder, p: Patches, rope: tuple[str, str], heads: int, hd: int) -> dict:
    """Full attention within each frame: one padded slot set per frame (each image has t frames)."""
    i64 = g.const
    frame_start = g.op("CumSum", p.t, i64(0), exclusive=1)
    n_frames = g.op("ReduceSum", p.t, i64([0]), keepdims=1)
    full_size = g.op("Mul", ceil_div(g, g.op("ReduceMax", p.hw, axes=[0], keepdims=1), CHUNK),
                     i64([CHUNK]))
    fid = g.op("Add", g.op("Gather", frame_start, p.img), p.frame)
    full_slot = g.op("Add", g.op("Mul", fid, full_size),
                     g.op("Mod", p.local, g.op("Gather", p.hw, p.img)))
    return padded_layout(g, p, full_slot, n_frames, full_size, rope, heads, hd, chunked=True)


def linear(g: GraphBuilder, weights: Weights, pre: str) -> Callable[..., str]:
    """`lin(x, name, bias=True)`: x @ W.T (+ b) with the checkpoint's `pre + name` tensors."""
    def lin(x: str, name: str, bias: bool = True) -> str:
        wt = weights.get(pre + name + ".weight")
        y = g.op("MatMul", x, g.weight(name + ".weight_t", wt.reshape(wt.shape[0], -1).T))
        if bias:
            y = g.op("Add", y, g.weight(name + ".bias", weights.get(pre + name + ".bias")))
        return y
    return lin


def rms_norm(g: GraphBuilder, x: str, scale: str, eps: float = 1e-6) -> str:
    ms = g.op("ReduceMean", g.op("Mul", x, x), axes=[-1], keepdims=1)
    y = g.op("Div", x, g.op("Sqrt", g.op("Add", ms, g.const(eps, np.float32))))
    return g.op("Mul", y, scale)


def layer_norm(g: GraphBuilder, x: str, scale: str, bias: str, eps: float = 1e-6) -> str:
    return g.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=eps)


def activation(g: GraphBuilder, x: str, kind: str) -> str:
    """transformers' ACT2FN[kind] from standard ops (opset 17 has no Gelu)."""
    if kind == "silu":
        return g.op("Mul", x, g.op("Sigmoid", x))
    if kind in ("gelu", "gelu_exact"):
        erf = g.op("Erf", g.op("Mul", x, g.const(1 / math.sqrt(2), np.float32)))
        return g.op("Mul", g.op("Mul", x, g.const(0.5, np.float32)),
                    g.op("Add", erf, g.const(1.0, np.float32)))
    if kind in ("gelu_pytorch_tanh", "gelu_new"):
        cube = g.op("Mul", g.op("Mul", x, x), x)
        inner = g.op("Add", x, g.op("Mul", cube, g.const(0.044715, np.float32)))
        tanh = g.op("Tanh", g.op("Mul", inner, g.const(math.sqrt(2 / math.pi), np.float32)))
        return g.op("Mul", g.op("Mul", x, g.const(0.5, np.float32)),
                    g.op("Add", tanh, g.const(1.0, np.float32)))
    if kind == "quick_gelu":
        return g.op("Mul", x, g.op("Sigmoid", g.op("Mul", x, g.const(1.702, np.float32))))
    raise ValueError(f"unsupported vision activation {kind!r}")


def attention(g: GraphBuilder, qkv: str, lay: dict, heads: int, hd: int) -> str:
    """Bidirectional attention of packed `qkv` [N, 3D] within the layout's groups, in patch order."""
    d = heads * hd
    i64 = g.const
    qkv = lay["pad"](qkv, 3 * d)  # [G*S, 3D], padded rows are 0
    qkv = g.op("Transpose", g.op("Reshape", qkv, lay["qkv_shape"]), perm=[2, 0, 3, 1, 4])
    q = g.op("Gather", qkv, i64(0), axis=0)  # [G, heads, S, hd]
    k = g.op("Gather", qkv, i64(1), axis=0)
    v = g.op("Gather", qkv, i64(2), axis=0)
    q = g.op("Mul", _rotate(g, q, lay, hd), g.const(hd ** -0.5, np.float32))
    k = _rotate(g, k, lay, hd)
    # The key mask rides along as one extra dimension (q gets a 1, k the 0 / -1e9 bias):
    # q'·k' = q·k + bias, which saves a pass over the large [G, heads, S, S] score tensor.
    edge = g.op("Shape", g.op("Slice", k, i64([0]), i64([1]), i64([-1])))  # [G, heads, S, 1]
    q = g.op("Concat", q, g.op("Expand", g.const(1.0, np.float32), edge), axis=-1)
    k = g.op("Concat", k, g.op("Expand", lay["bias"], edge), axis=-1)
    k_t = g.op("Transpose", k, perm=[0, 1, 3, 2])
    if lay["chunks"] is None:
        out = g.op("MatMul", g.op("Softmax", g.op("MatMul", q, k_t), axis=-1), v)
    else:
        out = _chunked_attention(g, q, k_t, v, lay["chunks"], hd)
    # out: [G, heads, S, hd]
    out = g.op("Reshape", g.op("Transpose", out, perm=[0, 2, 1, 3]), i64([-1, d]))
    return g.op("Gather", out, lay["index"], axis=0)  # back to patch order


def _rotate(g: GraphBuilder, x: str, lay: dict, hd: int) -> str:
    i64 = g.const
    x1 = g.op("Slice", x, i64([0]), i64([hd // 2]), i64([-1]))
    x2 = g.op("Slice", x, i64([hd // 2]), i64([hd]), i64([-1]))
    rot = g.op("Concat", g.op("Neg", x2), x1, axis=-1)
    return g.op("Add", g.op("Mul", x, lay["cos"]), g.op("Mul", rot, lay["sin"]))


def _chunked_attention(g: GraphBuilder, q: str, k_t: str, v: str, chunks_shape: str,
                       hd: int) -> str:
    """softmax(q k_t) v, one query chunk per Scan iteration (bounded peak memory)."""
    from onnx import TensorProto

    body = g.body("query_chunk")
    q_chunk = body.input(g._fresh("q_chunk"), TensorProto.FLOAT, None)
    probs = body.op("Softmax", body.op("MatMul", q_chunk, k_t), axis=-1)
    body.output(g._fresh("out_chunk"), body.op("MatMul", probs, v), TensorProto.FLOAT, None)
    q = g.op("Reshape", q, chunks_shape)  # [G, heads, n_chunks, CHUNK, hd + 1]
    out = g.op("Scan", q, body=body.graph(), num_scan_inputs=1, scan_input_axes=[2],
               scan_output_axes=[2])  # [G, heads, n_chunks, CHUNK, hd]
    shape = g.op("Concat", g.op("Slice", g.op("Shape", out), g.const([0]), g.const([2])),
                 g.const([-1, hd]), axis=0)
    return g.op("Reshape", out, shape)


@dataclass(frozen=True)
class Tower:
    """What both vision graphs read from a vision config, and the graph they are writing."""

    g: GraphBuilder
    p: Patches
    hidden: int
    heads: int
    head_dim: int
    merge: int
    depth: int
    theta: float
    out_dim: int


def open_tower(name: str, cfg: dict) -> Tower:
    """A vision graph with its two inputs (pixel_values [N, C*T*P*P], image_grid_thw [I, 3])
    and every patch located; the sizes both towers take from the config."""
    from onnx import TensorProto

    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_heads"])
    merge = int(cfg.get("spatial_merge_size", 2))
    g = GraphBuilder(name)
    pix = g.input("pixel_values", TensorProto.FLOAT, ["num_patches", "patch_dim"])
    grid = g.input("image_grid_thw", TensorProto.INT64, ["num_images", 3])
    theta = float((cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0))
    return Tower(g, locate_patches(g, pix, grid, merge), hidden, heads, hidden // heads, merge,
                 int(cfg["depth"]), theta, int(cfg.get("out_hidden_size", hidden)))


def close_tower(t: Tower, normed: str, lin: Callable[..., str], fc1: str, fc2: str,
                out_path: object) -> object:
    """The merger (merge×merge patches -> one token, a GELU MLP) and the image_features output."""
    from onnx import TensorProto

    g = t.g
    y = g.op("Reshape", normed, g.const([-1, t.hidden * t.merge * t.merge]))
    y = lin(activation(g, lin(y, fc1), "gelu"), fc2)
    g.output("image_features", y, TensorProto.FLOAT, ["num_tokens", t.out_dim])
    return g.save(out_path)

