"""Qwen3.5 inputs against transformers: processor pixels and grids, get_rope_index positions
(prompt and decode), and the interleaved partial M-RoPE tables of Qwen3_5TextRotaryEmbedding.

Cases: two resolutions with 1-3 screenshots, and three screenshots that change resolution.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from agent.geometry import Size
from agent.inference.qwen35_inputs import (
    QWEN35_RESIZE,
    QWEN35_SPEC,
    decode_positions,
    pad_tokens,
    patches,
    prompt_positions,
    text_rope,
    to_model_image,
)

IMAGE_PAD, VISION_START, VISION_END = 900, 901, 902
SIZES = [(1440, 900), (300, 200)]  # (width, height); neither is a multiple of 32 in both sides
MIXED = [(1440, 900), (300, 200), (640, 400)]
CASES = [(n, size) for size in SIZES for n in (1, 2, 3)] + [(3, "mixed")]
IDS = [f"{n}x{s}" for n, s in CASES]
TEXT = {"hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 1,
        "layer_types": ["full_attention"], "num_attention_heads": 2, "num_key_value_heads": 1,
        "head_dim": 64, "vocab_size": 1000, "linear_num_key_heads": 1,
        "linear_num_value_heads": 1, "linear_key_head_dim": 8, "linear_value_head_dim": 8,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0,
                            "partial_rotary_factor": 0.25, "mrope_section": [3, 3, 2],
                            "mrope_interleaved": True}}
VISION = {"depth": 1, "hidden_size": 32, "intermediate_size": 32, "num_heads": 2,
          "out_hidden_size": 64, "num_position_embeddings": 16}


def _images(count: int, size, seed: int) -> list:
    from PIL import Image

    rng = np.random.default_rng(seed)
    sizes = MIXED if size == "mixed" else [size] * count
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def _prompt(grids, seed: int) -> np.ndarray:
    """System text, then per screenshot: text, <|vision_start|>, its pads, <|vision_end|>."""
    rng = np.random.default_rng(seed)
    ids = list(rng.integers(0, 800, 7))
    for grid in grids:
        ids += [*rng.integers(0, 800, 5), VISION_START]
        ids += [IMAGE_PAD] * pad_tokens(grid) + [VISION_END]
    return np.asarray(ids + list(rng.integers(0, 800, 4)), np.int64)


@pytest.fixture(scope="module")
def model():
    import torch
    from transformers import Qwen3_5Config, Qwen3_5Model

    torch.manual_seed(0)
    return Qwen3_5Model(Qwen3_5Config(text_config=TEXT, vision_config=VISION)).eval()


def _grids(count, size) -> list[tuple[int, int, int]]:
    return [patches(to_model_image(im))[1] for im in _images(count, size, seed=count)]


def test_resize_rule_is_the_families() -> None:
    """Factor 32 = patch 16 x merge 2, and the Fara1.5 prompt data resizes by the same rule."""
    assert QWEN35_RESIZE.factor == QWEN35_SPEC.unit == 32
    assert QWEN35_RESIZE.model_size(Size(1440, 900), QWEN35_RESIZE.max_pixels) == Size(1440, 896)
    data = json.loads((Path(__file__).parents[3] / "assets/prompts/fara15.json").read_text())
    assert data["resize"] == {"factor": 32, "min_pixels": QWEN35_RESIZE.min_pixels,
                              "max_pixels": QWEN35_RESIZE.max_pixels}


@pytest.mark.parametrize(("count", "size"), CASES, ids=IDS)
def test_patches_match_the_processor(count, size) -> None:
    from transformers import Qwen2VLImageProcessorPil

    images = _images(count, size, seed=count)
    processor = Qwen2VLImageProcessorPil(
        patch_size=16, temporal_patch_size=2, merge_size=2, image_mean=[0.5] * 3,
        image_std=[0.5] * 3, size={"shortest_edge": QWEN35_RESIZE.min_pixels,
                                   "longest_edge": QWEN35_RESIZE.max_pixels})
    expected = processor(images=images, return_tensors="np")
    ours = [patches(to_model_image(im)) for im in images]
    assert [list(g) for _, g in ours] == expected["image_grid_thw"].tolist()
    pixels = np.concatenate([p for p, _ in ours])
    assert pixels.shape == expected["pixel_values"].shape
    assert float(np.abs(pixels - expected["pixel_values"]).max()) <= 1e-5


@pytest.mark.parametrize(("count", "size"), CASES, ids=IDS)
def test_positions_match_get_rope_index(count, size, model) -> None:
    import torch

    grids = _grids(count, size)
    ids = _prompt(grids, seed=count)
    ours, next_position = prompt_positions(ids, IMAGE_PAD, grids)
    tensor = torch.from_numpy(ids)[None]
    types = (tensor == IMAGE_PAD).int()
    expected, deltas = model.get_rope_index(tensor, mm_token_type_ids=types,
                                            image_grid_thw=torch.tensor(grids))
    assert np.array_equal(ours, expected[:, 0].numpy())
    assert next_position == len(ids) + int(deltas[0, 0])
    assert (ours[1:] != ours[0]).any()  # the images' h/w rows really differ from text positions


@pytest.mark.parametrize(("count", "size"), CASES[:3] + CASES[-1:], ids=IDS[:3] + IDS[-1:])
def test_decode_positions_match_transformers(count, size, model) -> None:
    """Generated tokens continue from rope_deltas, as compute_3d_position_ids does with a cache."""
    import torch

    grids = _grids(count, size)
    ids = _prompt(grids, seed=count)
    _, next_position = prompt_positions(ids, IMAGE_PAD, grids)
    tensor = torch.from_numpy(ids)[None]
    model.rope_deltas = None
    model.compute_3d_position_ids(tensor, None, image_grid_thw=torch.tensor(grids),
                                  mm_token_type_ids=(tensor == IMAGE_PAD).int())

    class Seen:  # a cache holding the prompt, as far as position ids are concerned
        def get_seq_length(self) -> int:
            return len(ids)

    expected = model.compute_3d_position_ids(None, torch.zeros(1, 3, 64), cache=Seen())
    assert np.array_equal(decode_positions(next_position, 3), expected[:, 0].numpy())


@pytest.mark.parametrize(("count", "size"), [(3, SIZES[0]), (3, "mixed")], ids=["3x1440", "mixed"])
def test_text_rope_matches_transformers(count, size, model) -> None:
    import torch

    grids = _grids(count, size)
    ids = _prompt(grids, seed=count)
    positions, _ = prompt_positions(ids, IMAGE_PAD, grids)
    rope = model.language_model.rotary_emb
    with torch.no_grad():
        cos, sin = rope(torch.zeros(1), torch.from_numpy(positions)[:, None, :])
    params = TEXT["rope_parameters"]
    ours = text_rope(positions, head_dim=TEXT["head_dim"], rope_theta=params["rope_theta"],
                     partial_rotary_factor=params["partial_rotary_factor"],
                     mrope_section=params["mrope_section"])
    for got, want in zip(ours, (cos[0].numpy(), sin[0].numpy()), strict=True):
        assert got.shape == want.shape == (len(ids), 16)
        assert float(np.abs(got - want).max()) <= 1e-6
