"""Write embedding.onnx: token embeddings with image features placed at the image-pad tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.export.graph import GraphBuilder
from models.export.weights import Weights


def build_embedding(weights: Weights, image_token_id: int, out_path: Path) -> Path:
    """input_ids [B, S] + image_features [M, H] -> inputs_embeds [B, S, H]."""
    from onnx import TensorProto

    table = weights.get(weights.find("embed_tokens.weight"))
    hidden = table.shape[1]
    g = GraphBuilder("deskhand_embedding")
    ids = g.input("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])
    feats = g.input("image_features", TensorProto.FLOAT, ["num_image_tokens", hidden])
    i64 = g.const

    embeds = g.op("Gather", g.weight("embed_tokens.weight", table), ids, axis=0)
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
