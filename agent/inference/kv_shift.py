"""Shifted reuse: keep the cached keys/values of screenshots still in the window after an older
one leaves it (an option, off by default; `--kv-shift`).

When the oldest screenshot leaves the three-image window, the new prompt equals the cached one
except that a span is gone (the image, or its whole turn) and a new tail follows. Plain prefix
reuse then stops at the removed span and computes the rest again: at steady state most of the
prompt. Here the cached tokens after the removed span move up to their new place and their keys
are rotated by the position change, so only the new tail is computed.

Why a plain rotation is enough: every kept token's M-RoPE position moves by the same amount on
all three axes (text advances all three together and an image's tokens are offsets from the
position where it starts), so each rotary frequency turns by `-delta * inv_freq` whichever
section (frame, row, column) it belongs to.

It is an approximation — the kept tokens' keys and values (beyond the first layer) were
computed while the removed screenshot was visible; llama.cpp's context shift makes the same
trade — so it is exact only where it must be: the first layer's keys equal recomputed ones.
Only the key/value family (Qwen2.5-VL) can do this: a linear-attention layer's recurrent state
(Qwen3.5) has the removed tokens folded in and cannot be edited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_KEPT = 32  # a shorter kept run is not worth the moves (and the approximation)


@dataclass(frozen=True)
class Shift:
    """Reuse `length` cached tokens from `src` at `dest` in the new prompt, the first `keep`
    unchanged; tokens `keep..dest` and everything after `dest + length` are computed."""

    keep: int
    src: int
    dest: int
    length: int
    delta: int  # old position minus new position of every kept token (all three axes)

    @property
    def reused(self) -> int:
        return self.keep + self.length


def _run_length(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


def _images_agree(old_spans, new_spans, src: int, dest: int, length: int) -> int:
    """Cut `length` at the first image run inside the kept range whose picture (digest) or
    extent differs between the two prompts (pad tokens are the same id for any picture)."""
    new = {start: (end, digest) for start, end, digest in new_spans}
    for start, end, digest in old_spans:
        if start < src or start >= src + length:
            continue
        if new.get(start - src + dest) != (end - src + dest, digest) or end > src + length:
            return start - src
    return length


def plan_shift(held_ids: np.ndarray, held_positions: np.ndarray, held_spans,
               ids: np.ndarray, positions: np.ndarray, spans, keep: int,
               *, min_kept: int = MIN_KEPT) -> Shift | None:
    """The best shifted reuse of a cache holding `held_*` for the new prompt (`ids`,
    `positions` [3, n], `spans`) whose first `keep` tokens already match; None when it would
    reuse fewer than `min_kept` more tokens than plain prefix reuse.

    The new prompt goes on at `keep` with tokens the cache holds further on (a span was removed:
    a screenshot, or its whole turn); the longest such run wins, the earliest on ties. Image
    runs are kept whole, and only with the same picture at the same place.
    """
    n_old, n_new = len(held_ids), len(ids)
    want = n_new - 1 - keep  # the prompt's last token always runs (it gives the logits)
    if want < min_kept or keep >= n_old:
        return None
    probe = min(16, want)
    after = held_ids[keep + 1:]
    if len(after) < probe:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(after, probe)
    starts = np.flatnonzero((windows == ids[keep:keep + probe]).all(axis=1)) + keep + 1
    best: Shift | None = None
    for src in (int(s) for s in starts):
        length = _run_length(held_ids[src:], ids[keep:n_new - 1])
        if length < min_kept or (best is not None and length <= best.length):
            continue
        length = _images_agree(held_spans, spans, src, keep, length)
        length = _cut_split_image(spans, keep, length)
        if length < min_kept or (best is not None and length <= best.length):
            continue
        moved = held_positions[:, src:src + length] - positions[:, keep:keep + length]
        delta = int(moved[0, 0])
        if (moved == delta).all():  # always, for prompts built by one family
            best = Shift(keep, src, keep, length, delta)
    return best


def _cut_split_image(spans, dest: int, length: int) -> int:
    """Never end the kept range inside an image run of the new prompt (its features are
    computed per image, whole)."""
    for start, end, _ in spans:
        if start < dest + length < end:
            return max(0, start - dest)
    return length


def rotation(delta: int, head_dim: int, theta: float, rotary_dim: int | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin [head_dim] that turn a rotated key at position p into the same key at p - delta
    (rotate-half layout; dimensions past `rotary_dim` are left as they are)."""
    rd = rotary_dim or head_dim
    inv_freq = 1.0 / (theta ** (np.arange(0, rd, 2, dtype=np.float64) / rd))
    angle = -float(delta) * inv_freq
    cos = np.ones(head_dim, np.float64)
    sin = np.zeros(head_dim, np.float64)
    cos[:rd] = np.concatenate([np.cos(angle), np.cos(angle)])
    sin[:rd] = np.concatenate([np.sin(angle), np.sin(angle)])
    return cos, sin


def rotate_keys(keys: np.ndarray, cos: np.ndarray, sin: np.ndarray, rotary_dim: int) -> np.ndarray:
    """keys [..., head_dim] turned by (cos, sin): k * cos + rotate_half(k) * sin."""
    half = rotary_dim // 2
    k = keys.astype(np.float64)  # in double: the turn adds no rounding of its own
    turned = np.concatenate([-k[..., half:rotary_dim], k[..., :half], k[..., rotary_dim:]], axis=-1)
    # rotate_half leaves the non-rotary tail as it is (cos 1, sin 0 there).
    turned[..., rotary_dim:] = 0
    return (k * cos + turned * sin).astype(keys.dtype)


def rope_of(folder: Path) -> tuple[float, int] | None:
    """(theta, rotary dims) of the text decoder's rotary embedding, as the export recorded them
    in deskhand.json ("rope"; from the checkpoint's config.json); None when the folder does not
    say (an imported folder): shifted reuse is then off, never guessed."""
    try:
        manifest = json.loads((folder / "deskhand.json").read_text(encoding="utf-8"))
        rope = manifest["rope"]
        theta, dims = float(rope["theta"]), int(rope["rotary_dim"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (theta, dims) if theta > 0 and dims > 0 and dims % 2 == 0 else None
