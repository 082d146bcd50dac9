"""The decoder state of a hybrid model (Qwen3.5): keys/values for full-attention layers, a
convolution window and a recurrent matrix for linear-attention layers.

Keys and values can be cut back to any prefix (`KVCache.truncate`), but a recurrent state
mixes every token it has seen: it cannot be truncated. So the state is copied (a snapshot) at
the boundaries the next step's prompt is likely to share — the end of the system prompt and
the start of each screenshot — and a new prompt resumes from the longest snapshot it matches,
or from the live state when it extends everything held. A snapshot needs only the linear
layers' state (about 50 MB for Fara1.5-4B): the key/value buffers still hold the prefix, since
later tokens are written only after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agent.inference.kv_cache import Held, KVCache, common_prefix

FULL = "full_attention"
LINEAR = "linear_attention"
# The system prompt plus the three screenshots a Fara step keeps: about 200 MB for Fara1.5-4B.
MAX_SNAPSHOTS = 4


class HybridState:
    """Per-layer decoder state of one sequence, with snapshots of the linear layers' state.

    `conv_shape` / `recurrent_shape` are one layer's state without the batch axis. The state
    of linear layer j lives in `conv[j]` / `recurrent[j]` (OrtValues, read by the next call);
    the decoder writes the new state into `spare_conv[j]` / `spare_recurrent[j]`, and `swap`
    makes those current (the kernels are not documented to work in place).
    """

    def __init__(self, ort, layer_types: Sequence[str], kv_heads: int, head_dim: int,
                 kv_dtype: np.dtype, conv_shape: Sequence[int], recurrent_shape: Sequence[int],
                 state_dtype: np.dtype = np.float32, device: str = "cpu",
                 max_snapshots: int = MAX_SNAPSHOTS) -> None:
        self._ort = ort
        self.device = device
        self.full = [i for i, kind in enumerate(layer_types) if kind == FULL]
        self.linear = [i for i, kind in enumerate(layer_types) if kind == LINEAR]
        self.kv = KVCache(ort, len(self.full), kv_heads, head_dim, kv_dtype, device)
        self._shapes = ((1, *conv_shape), (1, *recurrent_shape))
        self._dtype = np.dtype(state_dtype)
        self.max_snapshots = max_snapshots
        self._snapshots: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._reset_linear()

    # --- what is held ---
    @property
    def held(self) -> Held:
        """The tokens the state holds (ids and image runs)."""
        return self.kv.held

    @property
    def length(self) -> int:
        return self.kv.length

    @property
    def snapshot_lengths(self) -> list[int]:
        """Prefix lengths a prompt can resume from besides the live state, shortest first."""
        return sorted(self._snapshots)

    @property
    def nbytes(self) -> int:
        """Bytes of the live state (both buffers of the linear layers) and of the snapshots."""
        per_layer = sum(int(np.prod(s)) for s in self._shapes) * self._dtype.itemsize
        return self.kv.nbytes + per_layer * len(self.linear) * (2 + len(self._snapshots))

    # --- resuming ---
    def resume(self, ids: np.ndarray, images: tuple[tuple[int, int, str], ...], tokens: int,
               *, reuse: bool = True) -> int:
        """Prepare for a prompt `ids` of which `tokens` in all will be held (prompt + decode).

        Returns how many leading prompt tokens the state now holds: the longest snapshot (or
        the live state) the prompt starts with, leaving at least one token to compute.
        """
        limit = min(common_prefix(self.held, ids, images), len(ids) - 1) if reuse else 0
        live = self.length
        points = [n for n in self._snapshots if n <= limit]
        start = live if live <= limit else max(points, default=0)
        kept = self.kv.reserve(tokens, start)  # truncates the keys/values to `start`
        if kept < start:  # a device cache starts over when it grows
            start = 0
            self.kv.truncate(0)
        if start != live:
            self._restore(start)
        for n in [n for n in self._snapshots if n > start]:
            del self._snapshots[n]  # their keys/values are about to be overwritten
        return start

    def snapshot(self) -> None:
        """Keep a copy of the linear layers' state at the current length."""
        if self.length == 0 or self.length in self._snapshots:
            return
        self._snapshots[self.length] = ([v.numpy().copy() for v in self.conv],
                                        [v.numpy().copy() for v in self.recurrent])
        if len(self._snapshots) > self.max_snapshots:
            # The shortest (the system prompt) is the fallback of every new task: keep it and
            # drop the next shortest, which later prompts are least likely to extend.
            del self._snapshots[self.snapshot_lengths[1]]

    def _restore(self, length: int) -> None:
        if length == 0:
            self._reset_linear()
            return
        conv, recurrent = self._snapshots[length]
        self.conv = [self._value(a.copy()) for a in conv]
        self.recurrent = [self._value(a.copy()) for a in recurrent]

    # --- bookkeeping used by the decoder ---
    def extend(self, ids: np.ndarray, images: tuple[tuple[int, int, str], ...] = (),
               positions: np.ndarray | None = None) -> None:
        """Record that `ids` (and image runs; positions as KVCache.extend) follow the held
        tokens."""
        self.kv.extend(ids, images, positions)

    def swap(self) -> None:
        """Make the state the decoder just wrote the current one."""
        self.conv, self.spare_conv = self.spare_conv, self.conv
        self.recurrent, self.spare_recurrent = self.spare_recurrent, self.recurrent

    def clear(self) -> None:
        """Drop every buffer, snapshot and what they held."""
        self.kv.clear()
        self._snapshots.clear()
        self._reset_linear()

    def _reset_linear(self) -> None:
        conv, recurrent = self._shapes
        zeros = [np.zeros(conv, self._dtype) for _ in self.linear]
        self.conv = [self._value(a) for a in zeros]
        self.spare_conv = [self._value(np.zeros_like(a)) for a in zeros]
        zeros = [np.zeros(recurrent, self._dtype) for _ in self.linear]
        self.recurrent = [self._value(a) for a in zeros]
        self.spare_recurrent = [self._value(np.zeros_like(a)) for a in zeros]

    def _value(self, array: np.ndarray):
        if self.device == "cpu":
            return self._ort.OrtValue.ortvalue_from_numpy(array)
        return self._ort.OrtValue.ortvalue_from_numpy(array, self.device, 0)
