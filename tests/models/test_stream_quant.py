"""Streaming int4 export (models/export/stream_quant.py via models/export/text_builder.py): the
same graph and bytes as onnxruntime-genai's builder with onnxruntime's quantizer, reached
without the builder's whole-model quantization pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import numpy_helper

from models.export.stream_quant import block_quantize, supported

ROOT = Path(__file__).resolve().parents[2]
BUILDER_ARGS = ["-p", "int4", "-e", "cpu", "--extra_options", "exclude_embeds=true",
                "prune_lm_head=true", "block_size=32"]


@pytest.mark.parametrize(("rows", "cols", "block", "bits"),
                         [(200, 70, 32, 4), (256, 300, 128, 4), (130, 9, 64, 8), (64, 5000, 32, 4)])
def test_block_quantization_equals_onnxruntimes(rows: int, cols: int, block: int, bits: int) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        DefaultWeightOnlyQuantizer,
    )

    weight = np.random.default_rng(rows + cols).standard_normal((rows, cols)).astype(np.float32)
    quantizer = DefaultWeightOnlyQuantizer(
        DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, bits=bits))
    packed, scales, _ = quantizer.qbits_block_quant(weight)
    # A transposed (non-contiguous) view, in chunks smaller than the matrix: as the builder hands it.
    ours = block_quantize(np.ascontiguousarray(weight.T).T, bits, block, chunk=64)
    assert np.array_equal(ours[0], packed) and np.array_equal(ours[1], scales)


def _build(module: str, checkpoint: Path, out: Path) -> str:
    result = subprocess.run([sys.executable, "-m", module, "-i", str(checkpoint), "-o", str(out),
                             "-c", str(out / ".cache"), *BUILDER_ARGS], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout + result.stderr


def _graph(folder: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    model = onnx.load(str(folder / "model.onnx"))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = sorted(str((n.op_type, n.name, list(n.input), list(n.output),
                        sorted((a.name, onnx.helper.get_attribute_value(a)) for a in n.attribute)))
                   for n in model.graph.node)
    return tensors, nodes


def _tiny_qwen35(tmp_path: Path) -> Path:
    from app.bench.checkpoints_qwen35 import make_tiny_qwen35_checkpoint

    return make_tiny_qwen35_checkpoint(tmp_path / "qwen35")


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_5"])
def test_streamed_export_equals_the_builders_own(family: str, tiny_checkpoint: Path,
                                                 tmp_path: Path) -> None:
    checkpoint = tiny_checkpoint if family == "qwen2_5_vl" else _tiny_qwen35(tmp_path)
    own_log = _build("onnxruntime_genai.models.builder", checkpoint, tmp_path / "own")
    ours_log = _build("models.export.text_builder", checkpoint, tmp_path / "ours")
    # The builder's whole-model quantizer ran in its own export and not in ours: the patch is
    # live (a builder that stopped calling Model.to_nbits would fail here, not silently).
    assert "start to quantize" in own_log and "start to quantize" not in ours_log
    own, ours = _graph(tmp_path / "own"), _graph(tmp_path / "ours")
    assert ours[1] == own[1]
    assert ours[0].keys() == own[0].keys()
    for name, value in own[0].items():
        assert ours[0][name].dtype == value.dtype and np.array_equal(ours[0][name], value), name
    assert any(n.startswith("('MatMulNBits'") for n in ours[1])


def _builder(**quant) -> SimpleNamespace:
    attrs = {"bits": 4, "use_qdq": False, "is_symmetric": True, "op_types_to_quantize": ("MatMul",),
             "nodes_to_exclude": []} | quant
    return SimpleNamespace(quant_attrs=attrs, io_dtype=ir.DataType.FLOAT, ep="cpu",
                           matmul_attrs={"weights_prepacked": 0}, model=ir.Model(
                               ir.Graph([], [], nodes=[]), ir_version=10))


@pytest.mark.parametrize("change", [{"use_qdq": True}, {"is_symmetric": False}, {"bits": 2},
                                    {"op_types_to_quantize": ("MatMul", "Conv")}])
def test_other_settings_keep_the_builders_own_quantizer(change: dict) -> None:
    assert supported(_builder())
    assert not supported(_builder(**change))
    fp16 = _builder()
    fp16.io_dtype = ir.DataType.FLOAT16  # the CUDA export: bytes would differ, so not ours
    assert not supported(fp16)
    custom = _builder()
    custom.int4_customized_weight_config = {"/lm_head/MatMul": {"bits": 8}}
    assert not supported(custom)


def test_a_shared_weight_keeps_the_builders_own_quantizer() -> None:
    weight = ir.Value(name="w", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([4, 4]),
                      const_value=ir.Tensor(np.ones((4, 4), np.float32), name="w"))
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([1, 4]))
    first = ir.Node("", "MatMul", [x, weight], name="a")
    second = ir.Node("", "MatMul", [first.outputs[0], weight], name="b")
    graph = ir.Graph([x], [second.outputs[0]], nodes=[first, second], initializers=[weight])
    builder = _builder()
    builder.model = ir.Model(graph, ir_version=10)
    assert not supported(builder)
    first.replace_input_with(1, ir.Value(name="w2", type=ir.TensorType(ir.DataType.FLOAT),
                                         shape=ir.Shape([4, 4]),
                                         const_value=ir.Tensor(np.ones((4, 4), np.float32))))
    assert supported(builder)


def test_weights_are_quantized_while_saving_not_before(tmp_path, monkeypatch) -> None:
    """The memory promise: replacing the MatMuls quantizes nothing; each matrix is quantized
    once, when `ir.save` writes it, and the saved graph runs to the same result as onnxruntime's
    quantizer's."""
    from models.export import stream_quant

    calls: list[tuple[int, int]] = []
    real = stream_quant.block_quantize
    monkeypatch.setattr(stream_quant, "block_quantize",
                        lambda w, bits, block, **kw: calls.append(w.shape) or real(w, bits, block, **kw))
    rng = np.random.default_rng(0)
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([1, 64]))
    nodes, current, inits = [], x, []
    for i, cols in enumerate((48, 32)):
        w = ir.Value(name=f"w{i}", type=ir.TensorType(ir.DataType.FLOAT),
                     shape=ir.Shape([current.shape[1], cols]),
                     const_value=ir.Tensor(rng.standard_normal((current.shape[1], cols))
                                           .astype(np.float32), name=f"w{i}"))
        node = ir.Node("", "MatMul", [current, w], name=f"m{i}")
        node.outputs[0].shape, node.outputs[0].type = ir.Shape([1, cols]), ir.TensorType(ir.DataType.FLOAT)
        nodes.append(node)
        inits.append(w)
        current = node.outputs[0]
    current.name = "y"
    graph = ir.Graph([x], [current], nodes=nodes, initializers=inits,
                     opset_imports={"": 17, "com.microsoft": 1})
    builder = _builder(matmul_block_size=32, accuracy_level=0)
    builder.model = ir.Model(graph, ir_version=10)
    assert supported(builder)
    stream_quant.quantize_lazily(builder)
    assert calls == [] and [n.op_type for n in graph] == ["MatMulNBits", "MatMulNBits"]
    ir.save(builder.model, str(tmp_path / "m.onnx"), external_data="m.onnx.data")
    assert sorted(calls) == [(48, 32), (64, 48)]  # once each, during the save

    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    inputs = rng.standard_normal((1, 64)).astype(np.float32)
    got = session.run(None, {"x": inputs})[0]
    exact = inputs @ inits[0].const_value.numpy() @ inits[1].const_value.numpy()
    assert np.abs(got - exact).max() < 0.15 * np.abs(exact).max()  # int4 rounding, not garbage
