"""Qwen3.5 (Fara1.5) model inputs in numpy: model-size images, patches, token layout, M-RoPE.

Qwen3.5 keeps Qwen2.5-VL's input rules with other numbers, so the rules live once, in
`vl_inputs`, and this module fixes the numbers and checks they agree: patch 16 × merge 2
(images at multiples of 32), temporal patch 2, mean/std 0.5; an image takes (h/2)·(w/2)
`<|image_pad|>` tokens between `<|vision_start|>` and `<|vision_end|>`; the position rule is
Qwen2.5-VL's (transformers' Qwen3.5 `get_rope_index` gives the same ids; tests compare).

What is new is how the decoder turns the three position rows into rotary angles: *interleaved
partial* M-RoPE. Only `partial_rotary_factor` of each head is rotated, and its frequencies are
assigned to the axes round-robin (t, h, w, t, h, w, …) rather than in three blocks.
`text_rope` computes those cos/sin tables as transformers does, for a runtime or test that
needs them outside the decoder graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from agent.geometry import ResizeRule, Size
from agent.inference.vl_inputs import VisionSpec, image_tokens, mrope_positions, patchify

# Qwen3_5VisionConfig defaults (patch 16, merge 2, temporal 2), verified in transformers 5.24;
# mean/std 0.5 are Qwen3-VL's preprocessor values (the checkpoint's preprocessor_config.json
# is what an export reads; these are the defaults when it is silent).
QWEN35_SPEC = VisionSpec(patch=16, merge=2, temporal=2, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
# The Fara1.5 agent's smart_resize bounds (issue 13): factor 32, 3136 .. 12,845,056 pixels.
QWEN35_RESIZE = ResizeRule(factor=QWEN35_SPEC.unit, min_pixels=3136, max_pixels=12845056)


def to_model_image(image: Image.Image, rule: ResizeRule = QWEN35_RESIZE,
                   budget: int | None = None, spec: VisionSpec = QWEN35_SPEC) -> Image.Image:
    """`image` resized as the Qwen2-VL image processor resizes it (smart_resize, bicubic).

    `budget` (pixels) lowers the rule's max_pixels, as the agent does to bound the step cost.
    """
    if rule.factor != spec.unit:
        raise ValueError(f"resize factor {rule.factor} is not patch x merge ({spec.unit})")
    size = rule.model_size(Size(*image.size), budget or rule.max_pixels)
    rgb = image.convert("RGB")
    if (size.width, size.height) == rgb.size:
        return rgb
    return rgb.resize((size.width, size.height), Image.Resampling.BICUBIC)


def patches(image: Image.Image, spec: VisionSpec = QWEN35_SPEC
            ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Pixels of one model-size image for vision.onnx: [h·w, 3·2·16·16] and its grid (1, h, w)."""
    return patchify(image, spec)


def pad_tokens(grid: tuple[int, int, int], spec: VisionSpec = QWEN35_SPEC) -> int:
    """How many `<|image_pad|>` tokens (rows of vision.onnx's output) one image takes."""
    return image_tokens(grid, spec)


def prompt_positions(ids: np.ndarray, image_token_id: int,
                     grids: Sequence[tuple[int, int, int]], spec: VisionSpec = QWEN35_SPEC
                     ) -> tuple[np.ndarray, int]:
    """M-RoPE position ids [3, n] (t, h, w rows) of a prompt, and the next text position."""
    return mrope_positions(np.asarray(ids, np.int64), image_token_id, grids, spec)


def decode_positions(next_position: int, count: int = 1) -> np.ndarray:
    """[3, count] position ids of generated tokens: text, so all three rows advance together.

    Equals transformers' `cache_position + rope_deltas` (rope_deltas = max position + 1 − n).
    """
    return np.broadcast_to(np.arange(next_position, next_position + count, dtype=np.int64),
                           (3, count)).copy()


def text_rope(positions: np.ndarray, *, head_dim: int, rope_theta: float,
              partial_rotary_factor: float = 0.25,
              mrope_section: Sequence[int] = (11, 11, 10)) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin [n, rotary_dim] for position ids [3, n] (Qwen3_5TextRotaryEmbedding).

    Frequency j of the `rotary_dim / 2` belongs to the height axis when j % 3 == 1 and
    j < 3·section[1], to the width axis when j % 3 == 2 and j < 3·section[2], else to time;
    the table repeats once (rotate-half layout). The head's remaining dims are not rotated.
    """
    rotary_dim = int(head_dim * partial_rotary_factor)
    half = rotary_dim // 2
    if sum(mrope_section) != half:
        raise ValueError(f"mrope_section {list(mrope_section)} does not cover {half} frequencies")
    inv = (1.0 / (rope_theta ** (np.arange(0, rotary_dim, 2, dtype=np.float32) / rotary_dim)))
    inv = inv.astype(np.float32)
    axis = np.zeros(half, dtype=np.int64)
    for dim in (1, 2):
        axis[dim:mrope_section[dim] * 3:3] = dim
    chosen = np.asarray(positions, np.int64)[axis, :].T.astype(np.float32)  # [n, half]
    freqs = chosen * inv[None, :]
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb), np.sin(emb)
