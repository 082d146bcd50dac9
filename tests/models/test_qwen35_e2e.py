"""The whole tiny Qwen3.5 export (vision, embedding, hybrid decoder) against transformers.

fp32 greedy tokens of the ONNX runtime must equal `Qwen3_5ForConditionalGeneration.generate`'s
with screenshots: 1, 2 and 3 of them, at two resolutions, and a resolution change inside one
conversation (the 3-screenshot case). The M-RoPE positions the runtime builds must equal
transformers' `get_rope_index`. Measured on this machine: first-step logits differ by at most
5e-5 (logits spread about 6); a wiring error (a grid, a merge order, a position) changes
the tokens.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

from tests.support.model_inputs import agent_messages, noise_images
from tests.support.qwen35 import qwen35_export, tiny_qwen35

pytestmark = pytest.mark.slow

NEW_TOKENS = 10
# (screenshots, sizes): both sides multiples of 32 (patch 16 x merge 2), two resolutions.
CASES = [(1, [(448, 288)]), (2, [(320, 224)] * 2), (3, [(448, 288), (320, 224), (448, 288)])]


@pytest.fixture(scope="module")
def onnx_backend():
    from agent.inference.onnx import OnnxBackend

    return OnnxBackend(qwen35_export("fp32"), provider="cpu", prefix_cache=False)


@pytest.fixture(scope="module")
def hf():
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, Qwen3_5ForConditionalGeneration

    folder = tiny_qwen35()
    model = Qwen3_5ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoImageProcessor.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def _onnx_greedy(backend, prompt) -> tuple[list[int], np.ndarray]:
    vlm = backend.vlm
    logits = first = vlm.prefill(prompt, reserve=NEW_TOKENS)
    tokens, position = [], prompt.next_position
    while True:
        tokens.append(int(np.argmax(logits)))
        if len(tokens) == NEW_TOKENS:
            return tokens, first
        logits = vlm.step(tokens[-1], position)
        position += 1


def _hf_greedy(hf, prompt, images) -> tuple[list[int], np.ndarray, np.ndarray]:
    import torch

    model, processor, _ = hf
    ids = torch.from_numpy(np.asarray(prompt.ids))[None]
    vision = processor(images=images, return_tensors="pt")
    kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "pixel_values": vision["pixel_values"], "image_grid_thw": vision["image_grid_thw"],
              "mm_token_type_ids": (ids == model.config.image_token_id).int()}
    with torch.no_grad():
        logits = model(**kwargs).logits[0, -1].numpy()
        out = model.generate(**kwargs, do_sample=False, max_new_tokens=NEW_TOKENS, eos_token_id=None)
        positions, _ = model.model.get_rope_index(ids, kwargs["mm_token_type_ids"],
                                                  vision["image_grid_thw"])
    return out[0, ids.shape[1]:].tolist(), logits, positions[:, 0].numpy()


@pytest.mark.parametrize(("count", "sizes"), CASES, ids=["1x448x288", "2x320x224", "3xmixed"])
def test_fp32_greedy_tokens_equal_transformers_with_screenshots(onnx_backend, hf, count, sizes) -> None:
    images = [noise_images(1, size, 10 * count + i)[0] for i, size in enumerate(sizes)]
    messages = agent_messages(count)
    prompt = onnx_backend._prepare(messages, images)
    expected, ref_logits, ref_positions = _hf_greedy(hf, prompt, images)
    tokens, logits = _onnx_greedy(onnx_backend, prompt)
    diff = float(np.abs(logits - ref_logits).max())
    print(f"{count} screenshots {sizes}: max |logits - transformers| {diff:.2e}")
    assert np.array_equal(prompt.positions, ref_positions)
    assert tokens == expected
    assert diff < 1e-3
    if hf[2].eos_token_id not in expected:  # the backend's own loop stops at an end of turn
        got = onnx_backend.generate(messages, images, max_new_tokens=NEW_TOKENS)
        assert got.text == hf[2].decode(expected, skip_special_tokens=False)


def test_export_names_its_prompt_family() -> None:
    from agent.prompts import Fara15Family, family_of_folder, get_family
    from models.manifest import load_manifest

    folder = qwen35_export("fp32")
    manifest = load_manifest(folder)
    assert (manifest["family"], manifest["model_type"]) == ("fara15", "fara15")
    assert family_of_folder(folder) == "fara15"
    assert isinstance(get_family(family_of_folder(folder)), Fara15Family)


def test_every_export_family_names_a_prompt_family() -> None:
    from agent.prompts import FAMILIES as PROMPTS
    from models.export.families import FAMILIES

    for model_type, family in FAMILIES.items():
        assert family.prompt_family in PROMPTS, model_type
    assert {f.prompt_family for f in FAMILIES.values()} == {"fara", "fara15"}
