"""Qwen3.5 (Fara1.5) text export: what the builder emits, fp32 parity with transformers, int4.

fp32: greedy tokens of the ONNX decoder must equal transformers' on several prompts (the tiny
model's weights are wide, so its logits are decisive and a wiring error changes tokens).
Measured: first-step logits differ by at most 5e-5 (logits spread about 6.5).

int4 (block 32, the builder's RTN): each quantized weight carries about 8 % rounding noise;
the tiny model has 4 layers with up to 8 quantized matmuls each on the path (qkv, z, out,
gate, up, down; q/k/v/o on the full layer) — twice the Qwen2.5-VL tiny model's — so the logits
carry roughly 30 % relative noise: cosine 0.94-0.95 and top-10 overlap 0.5-0.7 measured on the
three prompts. A broken graph (lost state, wrong gate, misplaced norm offset) gives a cosine
near 0 and a chance top-10 overlap (10/640), so cosine >= 0.88 and mean top-10 >= 0.4 separate
"quantized" from "wrong".
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

from tests.support.qwen35 import PROMPTS, qwen35_export, text_messages, tiny_qwen35

NEW_TOKENS = 16
COSINE_MIN = 0.88
TOP10_MIN = 0.4


@pytest.fixture(scope="module")
def fp32_backend():
    from agent.inference.onnx import OnnxBackend

    return OnnxBackend(qwen35_export("fp32"), provider="cpu", prefix_cache=False,
                       fixed_length=True)


@pytest.fixture(scope="module")
def hf_model():
    import torch
    from transformers import AutoTokenizer, Qwen3_5ForConditionalGeneration

    model = Qwen3_5ForConditionalGeneration.from_pretrained(tiny_qwen35(), dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(tiny_qwen35())


def _hf_greedy(hf_model, text: str) -> tuple[list[int], np.ndarray]:
    import torch

    model, tok = hf_model
    ids = tok.apply_chat_template(text_messages(text), add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None)
        logits = model(ids).logits[0, -1].numpy()
    return out[0, ids.shape[1]:].tolist(), logits


def test_checkpoint_family_is_qwen35() -> None:
    from models.export.checks import inspect_checkpoint

    ckpt = inspect_checkpoint(tiny_qwen35())
    assert (ckpt.family.genai_type, ckpt.family.architecture) == (
        "fara15", "Qwen3_5ForConditionalGeneration")
    assert ckpt.vision_params > 0 and ckpt.text_params > 0


def test_builder_emits_hybrid_decoder() -> None:
    import onnx
    import onnxruntime as ort

    folder = qwen35_export("fp32")
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in session.get_inputs()}
    assert {n for n in inputs if n.startswith("past")} == {
        "past_key_values.3.key", "past_key_values.3.value",
        *(f"past.{i}.{kind}" for i in range(3) for kind in ("conv", "recurrent"))}
    assert inputs["past.0.conv"][1:] == [128, 3]          # qkv width, kernel - 1
    assert inputs["past.0.recurrent"][1:] == [4, 16, 16]  # value heads, key dim, value dim
    assert inputs["position_ids"][0] == 3                 # M-RoPE
    ops = [(n.domain, n.op_type) for n in
           onnx.load(str(folder / "model.onnx"), load_external_data=False).graph.node]
    assert ops.count(("com.microsoft", "LinearAttention")) == 3
    assert ops.count(("com.microsoft", "CausalConvWithState")) == 3
    assert ops.count(("com.microsoft", "GroupQueryAttention")) == 1
    genai = (folder / "genai_config.json").read_text()
    assert '"type": "fara15"' in genai and '"past_recurrent_names": "past.%d.recurrent"' in genai


def _onnx_greedy(backend, text: str) -> tuple[list[int], np.ndarray]:
    vlm = backend.vlm
    prompt = vlm.tokenize(backend.prompts.encode(text_messages(text), []), [])
    logits = first = vlm.prefill(prompt, reserve=NEW_TOKENS)
    tokens, position = [], prompt.next_position
    while True:
        tokens.append(int(np.argmax(logits)))
        if len(tokens) == NEW_TOKENS:
            return tokens, first
        logits = vlm.step(tokens[-1], position)
        position += 1


def test_fp32_greedy_tokens_equal_transformers(fp32_backend, hf_model) -> None:
    for text in PROMPTS:
        expected, ref_logits = _hf_greedy(hf_model, text)
        tokens, logits = _onnx_greedy(fp32_backend, text)
        print(f"{len(text)} chars: max |logits - transformers| "
              f"{np.abs(logits - ref_logits).max():.2e}")
        assert tokens == expected
        assert np.abs(logits - ref_logits).max() < 1e-3
        got = fp32_backend.generate(text_messages(text), [], max_new_tokens=NEW_TOKENS)
        assert got.text == hf_model[1].decode(expected)  # the backend's own decode loop too


@pytest.mark.slow
def test_int4_logits_agree_with_fp32(fp32_backend) -> None:
    import onnx

    from agent.inference.onnx import OnnxBackend

    folder = qwen35_export("int4")
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    assert any(n.op_type == "MatMulNBits" for n in graph.node)
    int4 = OnnxBackend(folder, provider="cpu", prefix_cache=False)
    cosines, overlaps = [], []
    for text in PROMPTS:
        a = fp32_backend.first_logits(text_messages(text), [])
        b = int4.first_logits(text_messages(text), [])
        cosines.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
        overlaps.append(len(set(np.argsort(-a)[:10]) & set(np.argsort(-b)[:10])) / 10)
        print(f"int4: cosine {cosines[-1]:.4f}, top-10 {overlaps[-1]:.0%}")
    assert min(cosines) >= COSINE_MIN
    assert np.mean(overlaps) >= TOP10_MIN
    assert max(cosines) < 0.99999  # the quantized weights are in use


def test_export_writes_qwen35_manifest_and_genai_type() -> None:
    from models.manifest import load_manifest

    folder = qwen35_export("fp32")
    assert load_manifest(folder)["model_type"] == "fara15"
    assert (folder / "vision.onnx").is_file() and (folder / "embedding.onnx").is_file()
