"""fp32 ONNX (Deskhand's runtime) against transformers: same greedy tokens, same logits."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

from tests.support.model_inputs import SIZES, agent_messages, case_id, noise_images

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
def test_fp32_greedy_tokens_identical(count, size, onnx_fp32_backend,
                                      reference_backend) -> None:
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


def test_processor_matches_transformers(onnx_fp32_backend, reference_backend) -> None:
    """Deskhand's numpy image processor and tokenization give transformers' patches and ids."""
    images = noise_images(1, SIZES[1], seed=4) + noise_images(2, SIZES[0], seed=3)
    messages = agent_messages(3)
    from agent.inference.vl_inputs import patchify

    prompt = onnx_fp32_backend._prepare(messages, images)
    patches = [patchify(im, onnx_fp32_backend.vlm.spec)[0] for im in images]
    expected = reference_backend.prepare_inputs(messages, images)
    assert [list(g) for g in prompt.grids] == [[1, 42, 74], [1, 64, 102], [1, 64, 102]]
    assert np.array_equal(prompt.ids, expected["input_ids"].numpy()[0])
    packed = expected["pixel_values"].numpy()
    assert float(np.abs(np.concatenate(patches) - packed).max()) <= 1e-5
    positions, _ = reference_backend.model.model.get_rope_index(
        expected["input_ids"], expected["mm_token_type_ids"], expected["image_grid_thw"])
    assert np.array_equal(prompt.positions, positions[:, 0].numpy())
