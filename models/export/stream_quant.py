"""Weight-only int4/int8 quantization of the builder's graph, one weight at a time.

onnxruntime-genai's builder quantizes by serializing the *whole* fp32 graph into one in-memory
ModelProto and handing it to onnxruntime's MatMulNBitsQuantizer: for Fara-7B that is ~30 GB of
fp32 weights at once (measured on the 2-layer Fara-7B-shaped checkpoint: 8.5 GB private memory
for 1.0 B parameters). Here every constant-weight MatMul becomes a MatMulNBits whose packed
weight and scales are *lazy* tensors: each is computed from its fp32 weight only when the
builder's `ir.save` writes it to the external data file, and dropped after, so memory holds one
weight matrix at a time.

The result is the same graph and the same bytes as the quantizer's (the same C++ kernels, node
and tensor names, shapes and attributes; tests/models/test_stream_quant.py compares the two
exports tensor by tensor). Only the configuration Deskhand's exporter uses is handled — default
(MLAS) method, MatMulNBits (not QDQ), symmetric, 4 or 8 bits, no per-node overrides, no CUDA
prepacking, fp32 weights (the CPU export) — for anything else `supported` is False and the
builder's own path runs.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

BITS = (4, 8)
COLUMN_CHUNK = 4096  # output columns quantized per kernel call (a 3584-row fp32 chunk: 59 MB)


def supported(builder) -> bool:
    """Whether `builder` (an onnxruntime-genai builder Model) asks for what this module does."""
    q = builder.quant_attrs
    return (q.get("bits") in BITS and not q.get("use_qdq") and q.get("is_symmetric")
            and builder.io_dtype == ir.DataType.FLOAT  # fp32 weights (CPU); fp16 differs in bytes
            and set(q.get("op_types_to_quantize") or ("MatMul",)) <= {"MatMul", "Gather"}
            and getattr(builder, "quantization_algo", "default") == "default"
            and not getattr(builder, "int4_customized_weight_config", None)
            and not getattr(builder, "exact_quant_override_names", None)
            and not (builder.ep == "cuda" and builder.matmul_attrs.get("weights_prepacked", 0) > 0)
            and not _quantizable_gathers(builder) and not _unusual_matmuls(builder))


def _unusual_matmuls(builder) -> list:
    """MatMuls whose weight this module would treat differently from onnxruntime's quantizer:
    a constant weight shared by several nodes, or an N-D one (the quantizer squeezes leading
    ones). The builder's graphs have neither today; if one appears, its own path runs."""
    odd = []
    for node in builder.model.graph:
        if node.op_type != "MatMul" or len(node.inputs) < 2 or node.inputs[1] is None:
            continue
        weight = node.inputs[1]
        if weight.const_value is None:
            continue
        if len(weight.uses()) > 1 or weight.shape is None or len(weight.shape) != 2:
            odd.append(node.name)
    return odd


def _quantizable_gathers(builder) -> list:
    """Embedding Gathers the builder would quantize (Deskhand exports exclude the embedding)."""
    q = builder.quant_attrs
    if "Gather" not in (q.get("op_types_to_quantize") or ()):
        return []
    excluded = set(q.get("nodes_to_exclude") or ())
    return [n for n in builder.model.graph if n.op_type == "Gather" and n.name not in excluded
            and n.inputs[0] is not None and n.inputs[0].const_value is not None]


def quantize_lazily(builder) -> ir.Model:
    """Replace every eligible MatMul in `builder.model` with a lazily quantized MatMulNBits."""
    q = builder.quant_attrs
    bits, block = int(q["bits"]), int(q["matmul_block_size"])
    accuracy = int(q.get("accuracy_level") or 0)
    excluded = set(q.get("nodes_to_exclude") or ())
    graph = builder.model.graph
    for node in list(graph):
        if node.op_type != "MatMul" or node.domain not in ("", "ai.onnx") or node.name in excluded:
            continue
        weight = node.inputs[1]
        if weight is None or weight.const_value is None or weight.shape is None \
                or len(weight.shape) != 2 or not all(isinstance(d, int) for d in weight.shape):
            continue  # not a constant weight (N-D or shared ones make `supported` False)
        _replace(graph, node, weight, bits, block, accuracy)
    return builder.model


def _replace(graph: ir.Graph, node: ir.Node, weight: ir.Value, bits: int, block: int,
             accuracy: int) -> None:
    rows, cols = (int(d) for d in weight.shape)
    k_blocks = (rows + block - 1) // block
    blob = (block * bits + 7) // 8
    source = weight.const_value
    pending: dict[str, np.ndarray] = {}

    def compute() -> None:
        packed, scales = block_quantize(source.numpy(), bits, block)
        pending["packed"], pending["scales"] = packed, scales

    def take(part: str):
        def func() -> ir.Tensor:
            if part not in pending:
                compute()
            return ir.Tensor(pending.pop(part))
        return func

    packed = ir.Value(name=f"{weight.name}_Q{bits}", type=ir.TensorType(ir.DataType.UINT8),
                      shape=ir.Shape([cols, k_blocks, blob]))
    packed.const_value = ir.LazyTensor(take("packed"), dtype=ir.DataType.UINT8,
                                       shape=ir.Shape([cols, k_blocks, blob]), name=packed.name)
    scales = ir.Value(name=f"{weight.name}_scales", type=ir.TensorType(ir.DataType.FLOAT),
                      shape=ir.Shape([cols, k_blocks]))
    scales.const_value = ir.LazyTensor(take("scales"), dtype=ir.DataType.FLOAT,
                                       shape=ir.Shape([cols, k_blocks]), name=scales.name)
    graph.register_initializer(packed)
    graph.register_initializer(scales)
    attributes = {"K": rows, "N": cols, "bits": bits, "block_size": block}
    if accuracy:  # optional; the quantizer leaves it out at 0 too
        attributes["accuracy_level"] = accuracy
    new = ir.Node("com.microsoft", "MatMulNBits", [node.inputs[0], packed, scales],
                  attributes=ir.convenience.convert_attributes(attributes),
                  name=f"{node.name}_Q{bits}" if node.name else "",
                  num_outputs=1)
    ir.convenience.replace_nodes_and_values(graph, node, [node], [new], [node.outputs[0]],
                                            [new.outputs[0]])
    if not weight.uses() and weight.name in graph.initializers:
        del graph.initializers[weight.name]


def block_quantize(weight: np.ndarray, bits: int, block: int,
                   chunk: int = COLUMN_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime's MLAS block quantization of a [K, N] weight: (packed [N, blocks, blob] uint8,
    scales [N, blocks] float32), each block one column's `block` consecutive rows.

    Columns are quantized independently, so they go through the kernel `chunk` at a time: the
    builder hands weights transposed, and one contiguous fp32 copy of the whole LM head would be
    another 2.2 GB at Fara-7B's size."""
    from onnxruntime.capi._pybind_state import quantize_matmul_4bits, quantize_matmul_8bits

    rows, cols = weight.shape
    k_blocks = (rows + block - 1) // block
    per_byte = 8 // bits
    packed = np.zeros((cols, k_blocks, (block + per_byte - 1) // per_byte), dtype=np.uint8)
    zero_point = np.zeros((cols, (k_blocks + per_byte - 1) // per_byte), dtype=np.uint8)
    scales = np.zeros((cols, k_blocks), dtype=np.float32)
    kernel = quantize_matmul_4bits if bits == 4 else quantize_matmul_8bits
    for start in range(0, cols, chunk):
        stop = min(start + chunk, cols)
        part = np.zeros((k_blocks * block, stop - start), dtype=np.float32)
        part[:rows] = weight[:, start:stop]
        kernel(packed[start:stop], part, scales[start:stop], zero_point[start:stop], block,
               stop - start, rows, True)
    return packed, scales
