"""int4 ONNX against transformers, measured on first-step logits.

Token identity is the wrong yardstick here: a random-weight model has near-flat logits, so
quantization noise flips greedy choices. Instead the int4 decoder (and int8 vision) must keep
the fp32 model's logit direction and its set of likely next tokens (vision and embedding are
int8 here, so the text decoder's int4 dominates the error).

Thresholds: symmetric block-32 RTN int4 on Gaussian weights has a step of about 0.28 sigma, a
rounding noise of about 8 % of each weight; through the tiny model's 2 layers and LM head that
is roughly 15-25 % relative noise on the logits, i.e. an expected cosine of about 0.95-0.99
(measured 0.95-0.98). A broken graph (wrong wiring, lost M-RoPE, misplaced image features)
drops the cosine to near 0 and the top-10 overlap to chance (10/640), so cosine >= 0.9 and a
mean top-10 overlap >= 0.5 separate "quantized" from "wrong" with margin on both sides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

from tests.support.model_inputs import SIZES, agent_messages, noise_images

COSINE_MIN = 0.9
TOP10_MIN = 0.5
CASES = [(0, None), (1, SIZES[0]), (3, SIZES[1])]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return len(set(np.argsort(-a)[:k]) & set(np.argsort(-b)[:k])) / k


@pytest.fixture(scope="module")
def int4_backend(export_int4: Path):
    from agent.inference.onnx import OnnxBackend

    return OnnxBackend(export_int4, provider="cpu")  # module scope: used by this file only


def test_int4_export_is_really_quantized(export_int4: Path) -> None:
    import onnx

    for name, op in (("model.onnx", "MatMulNBits"), ("vision.onnx", "MatMulNBits"),
                     ("embedding.onnx", "GatherBlockQuantized")):
        graph = onnx.load(str(export_int4 / name), load_external_data=False).graph
        assert any(n.op_type == op for n in graph.node), name


def test_int4_first_step_logits_agree(int4_backend, reference_backend) -> None:
    cosines, overlaps = [], []
    for count, size in CASES:
        images = noise_images(count, size, seed=11 + count) if count else []
        messages = agent_messages(count) if count else [
            {"role": "user", "content": [{"type": "text", "text": "Open the settings page."}]}]
        got = int4_backend.first_logits(messages, images)
        expected = reference_backend.first_logits(messages, images)
        cosines.append(_cosine(got, expected))
        overlaps.append(_overlap(got, expected, 10))
        print(f"int4 {count} image(s) {size}: cosine {cosines[-1]:.4f}, "
              f"top-1 {_overlap(got, expected, 1):.0%}, top-5 {_overlap(got, expected, 5):.0%}, "
              f"top-10 {overlaps[-1]:.0%}")
    assert min(cosines) >= COSINE_MIN
    assert np.mean(overlaps) >= TOP10_MIN
    assert max(cosines) < 0.99999  # int4 noise is visible: the quantized weights are in use
