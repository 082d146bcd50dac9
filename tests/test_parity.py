"""fp32 ONNX (onnxruntime-genai) against transformers: same greedy tokens, same logits."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime_genai")
pytest.importorskip("transformers")

from tests.conftest_models import (  # noqa: F401
    SIZES,
    agent_messages,
    case_id,
    export_fp32,
    noise_images,
    onnx_fp32_backend,
    reference_backend,
    tiny_checkpoint,
)

CASES = [(n, size) for size in SIZES for n in (1, 2, 3)] + [(2, "mixed")]
NEW_TOKENS = 10
# Full first-step logits are compared in two cases (they cost a second prefill on both sides);
# tokens everywhere.
LOGIT_CASES = {(3, SIZES[1]), (2, "mixed")}


def _images(count, size, seed):
    if size == "mixed":  # a resolution change between screenshots
        return noise_images(1, SIZES[1], seed) + noise_images(1, SIZES[0], seed + 1)
    return noise_images(count, size, seed)


@pytest.mark.parametrize(("count", "size"), CASES,
                         ids=[case_id(n, s) for n, s in CASES])
def test_fp32_greedy_tokens_identical(count, size, onnx_fp32_backend,  # noqa: F811
                                      reference_backend) -> None:  # noqa: F811
    images = _images(count, size, seed=7 * count + (0 if size == "mixed" else size[0]))
    messages = agent_messages(count)
    expected = reference_backend.generate(messages, images, max_new_tokens=NEW_TOKENS)
    got = onnx_fp32_backend.generate(messages, images, max_new_tokens=NEW_TOKENS)
    assert got.prompt_tokens == expected.prompt_tokens
    assert got.text == expected.text
    assert got.generated_tokens == expected.generated_tokens
    print(f"fp32 {count}x{size}: {got.generated_tokens} greedy tokens identical")
    if (count, size) not in LOGIT_CASES:
        return
    ref_logits = reference_backend.first_logits(messages, images)
    onnx_logits = onnx_fp32_backend.first_logits(messages, images)
    diff = float(np.abs(ref_logits - onnx_logits).max())
    print(f"fp32 {count}x{size}: first-step logits max-abs-diff {diff:.2e}")
    assert diff <= 1e-3


def test_processor_keeps_model_size_images(onnx_fp32_backend, reference_backend) -> None:  # noqa: F811
    """onnxruntime-genai's image processor yields the same patches as transformers'.

    With images of different sizes it pads each image's patches to the largest one; vision.onnx
    accepts that layout (see models/export/vision.py).
    """
    images = noise_images(1, SIZES[1], seed=4) + noise_images(2, SIZES[0], seed=3)
    messages = agent_messages(3)
    inputs = onnx_fp32_backend._prepare(messages, images)
    expected = reference_backend.prepare_inputs(messages, images)
    grids = inputs["image_grid_thw"].as_numpy().tolist()
    assert grids == [[1, 42, 74], [1, 64, 102], [1, 64, 102]]
    assert np.array_equal(inputs["input_ids"].as_numpy(), expected["input_ids"].numpy())
    pixels = inputs["pixel_values"].as_numpy()
    packed = expected["pixel_values"].numpy()
    stride = pixels.shape[0] // len(images)
    offset = 0
    for i, (t, h, w) in enumerate(grids):
        count = t * h * w
        ours = pixels[i * stride: i * stride + count]
        assert float(np.abs(ours - packed[offset: offset + count]).max()) <= 1e-5
        offset += count
