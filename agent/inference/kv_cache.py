"""The decoder's key/value cache: one buffer per layer shared by past input and present output.

The decoder graph (GroupQueryAttention) writes the new keys and values in place when its past
and present are the same buffer, so a decode step costs no copy of the whole cache. The cache
also remembers which tokens it holds (ids, and which image each image-pad run came from), so
the next prompt can start where it first differs from them: across agent steps the system
prompt, and while the screenshot history is still growing everything up to the new turn,
is computed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_STEP = 1024  # capacity grows in whole steps of this many tokens


@dataclass(frozen=True)
class Held:
    """The tokens whose keys and values a cache holds."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # (start, end, digest) of every image-pad run among them.
    images: tuple[tuple[int, int, str], ...] = ()
    # M-RoPE positions [3, n] of those tokens; None once any were added without theirs.
    positions: np.ndarray | None = field(default_factory=lambda: np.zeros((3, 0), np.int64))


def common_prefix(held: Held, ids: np.ndarray, images: tuple[tuple[int, int, str], ...]) -> int:
    """How many leading tokens of a new prompt (`ids`, `images`) the cache already holds.

    Image-pad tokens are the same id whatever the picture, so a run counts as equal only when
    it holds the same image (digest) at the same place.
    """
    n = min(len(held.ids), len(ids))
    if n == 0:
        return 0
    differ = np.flatnonzero(held.ids[:n] != ids[:n])
    same = int(differ[0]) if len(differ) else n
    old = {start: (end, digest) for start, end, digest in held.images}
    for start, end, digest in images:
        if start >= same:
            break
        if old.get(start) != (end, digest):
            same = start
            break
    return same


class KVCache:
    """Per-layer key and value buffers of one sequence, with the tokens they hold."""

    def __init__(self, ort, layers: int, kv_heads: int, head_dim: int, dtype: np.dtype,
                 device: str = "cpu") -> None:
        self._ort = ort
        self.layers, self.kv_heads, self.head_dim = layers, kv_heads, head_dim
        self.dtype = np.dtype(dtype)
        self.device = device
        self.capacity = 0
        self.held = Held()
        self._arrays: list[np.ndarray] = []  # CPU: numpy arrays the OrtValues wrap
        self.values: list = []  # OrtValue per (layer, key|value), in that order

    @property
    def length(self) -> int:
        """How many tokens the buffers hold."""
        return len(self.held.ids)

    @property
    def nbytes(self) -> int:
        return 2 * self.layers * self.kv_heads * self.capacity * self.head_dim * self.dtype.itemsize

    def reserve(self, tokens: int, keep: int) -> int:
        """Make room for `tokens` tokens keeping the first `keep`; returns how many were kept.

        Growing a CPU cache copies the kept prefix; a device cache starts over (keeps 0).
        """
        keep = min(keep, self.length)
        if tokens <= self.capacity:
            self.truncate(keep)
            return keep
        capacity = -(-tokens // _STEP) * _STEP
        shape = (1, self.kv_heads, capacity, self.head_dim)
        ort = self._ort
        if self.device == "cpu":
            arrays = [np.zeros(shape, self.dtype) for _ in range(2 * self.layers)]
            for new, old in zip(arrays, self._arrays, strict=False):
                new[:, :, :keep] = old[:, :, :keep]
            self._arrays = arrays
            self.values = [ort.OrtValue.ortvalue_from_numpy(a) for a in arrays]
        else:
            self.values = [ort.OrtValue.ortvalue_from_shape_and_type(shape, self.dtype, self.device, 0)
                           for _ in range(2 * self.layers)]
            keep = 0
        self.capacity = capacity
        self.truncate(keep)
        return keep

    def truncate(self, keep: int) -> None:
        """Forget everything after the first `keep` tokens (the buffers are overwritten later)."""
        held = self.held
        self.held = Held(held.ids[:keep], tuple(s for s in held.images if s[1] <= keep),
                         None if held.positions is None else held.positions[:, :keep])

    def extend(self, ids: np.ndarray, images: tuple[tuple[int, int, str], ...] = (),
               positions: np.ndarray | None = None) -> None:
        """Record that `ids` (at M-RoPE `positions` [3, len(ids)]; and image runs, at absolute
        places) follow the held tokens."""
        held = self.held
        if held.positions is None or (positions is None and len(ids)):
            kept = None
        else:
            more = np.zeros((3, 0), np.int64) if positions is None else positions.astype(np.int64)
            kept = np.concatenate([held.positions, more], axis=1)
        self.held = Held(np.concatenate([held.ids, ids.astype(np.int64)]),
                         held.images + tuple(images), kept)

    def move(self, keep: int, src: int, length: int, delta: int, turn_keys) -> None:
        """Shifted reuse (agent/inference/kv_shift.py): the held tokens `src..src+length` move
        to `keep` and every position after `keep` drops by `delta`; `turn_keys(keys)` re-rotates
        the moved keys. CPU caches only (their buffers are numpy arrays)."""
        if self.device != "cpu" or self.held.positions is None:
            raise ValueError("only a CPU cache that knows its positions can move tokens")
        end = src + length
        for i, array in enumerate(self._arrays):
            run = array[:, :, src:end]
            array[:, :, keep:keep + length] = turn_keys(run) if i % 2 == 0 else run.copy()
        held, offset = self.held, src - keep
        images = tuple(s for s in held.images if s[1] <= keep) + tuple(
            (a - offset, b - offset, d) for a, b, d in held.images if a >= src and b <= end)
        positions = np.concatenate([held.positions[:, :keep], held.positions[:, src:end] - delta],
                                   axis=1)
        self.held = Held(np.concatenate([held.ids[:keep], held.ids[src:end]]), images, positions)

    def clear(self) -> None:
        """Drop the buffers and what they held."""
        self._arrays, self.values, self.capacity, self.held = [], [], 0, Held()
