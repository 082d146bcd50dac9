"""Write embedding.onnx: token embeddings with image features placed at the image-pad tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.export.graph import GraphBuilder
from models.export.weights import Weights

BLOCK = 32


def build_embedding(weights: Weights, image_token_id: int, out_path: Path,
                    quant: str | None = None) -> Path:
    """input_ids [B, S] + image_features [M, H] -> inputs_embeds [B, S, H].

    `quant` "int8" / "int4" stores the table block-wise quantized (blocks of 32 along the
    hidden axis, one scale each) and looks rows up with GatherBlockQuantized; Fara's fp32 table
    is 2.2 GB, int8 about 0.6 GB.
    """
    from onnx import TensorProto

    table = weights.get(weights.find("embed_tokens.weight"))
    hidden = table.shape[1]
    g = GraphBuilder("deskhand_embedding")
    ids = g.input("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])
    feats = g.input("image_features", TensorProto.FLOAT, ["num_image_tokens", hidden])
    i64 = g.const

    if quant is None or hidden % BLOCK:
        embeds = g.op("Gather", g.weight("embed_tokens.weight", table), ids, axis=0)
    else:
        bits = 8 if quant == "int8" else 4
        data, scales, zeros = _quantize_rows(table, bits)
        embeds = g.op("GatherBlockQuantized", g.weight("embed_tokens.qweight", data), ids,
                      g.weight("embed_tokens.scales", scales),
                      g.weight("embed_tokens.zero_points", zeros),
                      domain="com.microsoft", gather_axis=0, quantize_axis=1, block_size=BLOCK,
                      bits=bits)
    is_image = g.op("Equal", ids, i64(image_token_id))
    # The k-th image-pad token (in reading order) takes feature row k. Text-only calls (decode
    # steps) pass no features: a zero row appended at the end keeps the Gather in bounds.
    flat = g.op("Reshape", g.op("Cast", is_image, to=TensorProto.INT64), i64([-1]))
    order = g.op("Sub", g.op("CumSum", flat, i64(0)), i64(1))
    n_feats = g.op("Gather", g.op("Shape", feats), i64([0]), axis=0)
    padded = g.op("Concat", feats, g.const(np.zeros((1, hidden), np.float32), np.float32), axis=0)
    index = g.op("Where", g.op("Reshape", is_image, i64([-1])), order,
                 g.op("Squeeze", n_feats, i64([0])))
    index = g.op("Min", index, g.op("Squeeze", n_feats, i64([0])))  # extra pads never overflow
    picked = g.op("Reshape", g.op("Gather", padded, index, axis=0), g.op("Shape", embeds))
    out = g.op("Where", g.op("Unsqueeze", is_image, i64([-1])), picked, embeds)
    g.output("inputs_embeds", out, TensorProto.FLOAT, ["batch_size", "sequence_length", hidden])
    return g.save(out_path)


def _quantize_rows(table: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric block-wise quantization stored unsigned with a constant zero point."""
    rows, hidden = table.shape
    levels = 2 ** (bits - 1) - 1  # 127 or 7
    blocks = table.reshape(rows, hidden // BLOCK, BLOCK)
    scales = np.abs(blocks).max(axis=-1) / levels
    scales[scales == 0] = 1.0
    q = np.clip(np.round(blocks / scales[..., None]), -levels - 1, levels).astype(np.int16)
    unsigned = (q + levels + 1).astype(np.uint8).reshape(rows, hidden)
    zero = np.full((rows, hidden // BLOCK), levels + 1, np.uint8)
    if bits == 4:  # two values per byte, low nibble first
        unsigned = unsigned[:, 0::2] | (unsigned[:, 1::2] << 4)
        zero = zero[:, 0::2] | (zero[:, 1::2] << 4)
    return unsigned, scales.astype(np.float32), zero
