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
        ids = self.held.ids[:keep]
        self.held = Held(ids, tuple(s for s in self.held.images if s[1] <= keep))

    def extend(self, ids: np.ndarray, images: tuple[tuple[int, int, str], ...] = ()) -> None:
        """Record that `ids` (and image runs, at absolute positions) follow the held tokens."""
        self.held = Held(np.concatenate([self.held.ids, ids.astype(np.int64)]),
                         self.held.images + tuple(images))

    def clear(self) -> None:
        """Drop the buffers and what they held."""
        self._arrays, self.values, self.capacity, self.held = [], [], 0, Held()
