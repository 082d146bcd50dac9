"""Qwen2.5-VL model inputs computed in numpy: image patches, token layout and M-RoPE positions.

The ONNX runtime path needs exactly what transformers' processor and `get_rope_index` produce
(parity tests compare both); doing it here, without torch, keeps the runtime light and lets the
runtime cache per-image work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class VisionSpec:
    """What the image processor and the position rule need from the model's config."""

    patch: int = 14
    merge: int = 2
    temporal: int = 2
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    rescale: float = 1 / 255

    @property
    def unit(self) -> int:
        """Image sides must be multiples of this (patch × merge)."""
        return self.patch * self.merge


def image_digest(image: Image.Image) -> str:
    """A content key for one model-size image (pixels and size)."""
    rgb = image.convert("RGB")
    h = hashlib.blake2b(rgb.tobytes(), digest_size=16)
    h.update(f"{rgb.width}x{rgb.height}".encode())
    return h.hexdigest()


def patchify(image: Image.Image, spec: VisionSpec) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Pixels of one image as the vision tower takes them: [patches, C*T*P*P] and its grid (t, h, w).

    Same layout as transformers' Qwen2VLImageProcessor: patches grouped by 2×2 merge blocks in
    reading order, each patch flattened channel, time (the still image repeated), row, column.
    """
    grid = grid_of(image, spec)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)  # [H, W, C]
    scale = np.float32(spec.rescale)
    mean, std = np.array(spec.mean, np.float32), np.array(spec.std, np.float32)
    pixels = (pixels * scale - mean) / std
    p, m, t = spec.patch, spec.merge, spec.temporal
    _, gh, gw = grid
    x = pixels.transpose(2, 0, 1).reshape(3, gh // m, m, p, gw // m, m, p)
    x = x.transpose(1, 4, 2, 5, 0, 3, 6)  # [gh/m, gw/m, m, m, C, P, P]
    x = np.broadcast_to(x[:, :, :, :, :, None], (*x.shape[:5], t, p, p))
    return np.ascontiguousarray(x.reshape(gh * gw, 3 * t * p * p)), grid


def grid_of(image: Image.Image, spec: VisionSpec) -> tuple[int, int, int]:
    """The patch grid (t, h, w) of a model-size image."""
    w, h = image.size
    if w % spec.unit or h % spec.unit:
        raise ValueError(f"image {w}x{h} is not a model size (sides must be multiples of {spec.unit})")
    return (1, h // spec.patch, w // spec.patch)


def image_tokens(grid: tuple[int, int, int], spec: VisionSpec) -> int:
    """How many `<|image_pad|>` tokens (merged patches) one image takes."""
    t, h, w = grid
    return t * h * w // (spec.merge * spec.merge)


def mrope_positions(ids: np.ndarray, image_token_id: int, grids: Sequence[tuple[int, int, int]],
                    spec: VisionSpec) -> tuple[np.ndarray, int]:
    """M-RoPE position ids [3, len(ids)] for one sequence, and the next text position.

    Text advances all three axes by one per token; an image's tokens take (frame, row, column)
    offsets from the position where the image starts, and the text after it resumes at that
    start plus the image's larger merged side (Qwen2.5-VL's `get_rope_index` for still images).
    """
    n = len(ids)
    out = np.empty((3, n), dtype=np.int64)
    is_image = ids == image_token_id
    pos, i, g = 0, 0, 0
    while i < n:
        if not is_image[i]:
            j = i
            while j < n and not is_image[j]:
                j += 1
            out[:, i:j] = np.arange(pos, pos + j - i)[None]
            pos += j - i
            i = j
            continue
        if g >= len(grids):
            raise ValueError("more image-pad runs in the prompt than images")
        t, h, w = grids[g]
        lh, lw = h // spec.merge, w // spec.merge
        count = t * lh * lw
        if i + count > n or not is_image[i:i + count].all():
            raise ValueError("an image-pad run does not match its image's size")
        tt, hh, ww = np.meshgrid(np.arange(t), np.arange(lh), np.arange(lw), indexing="ij")
        out[0, i:i + count] = tt.reshape(-1) + pos
        out[1, i:i + count] = hh.reshape(-1) + pos
        out[2, i:i + count] = ww.reshape(-1) + pos
        pos += max(lh, lw)
        i += count
        g += 1
    if g != len(grids):
        raise ValueError(f"the prompt has {g} image-pad runs for {len(grids)} images")
    return out, pos


def image_spans(ids: np.ndarray, image_token_id: int) -> list[tuple[int, int]]:
    """(start, end) of every run of image-pad tokens, in order."""
    flags = np.concatenate([[False], ids == image_token_id, [False]])
    edges = np.flatnonzero(flags[1:] != flags[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]
