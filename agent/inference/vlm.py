"""A Qwen2.5-VL / Fara model folder run by our own loop over three ONNX Runtime sessions.

vision.onnx encodes each screenshot once (features are cached by image content, and a
screenshot stays in the history for three steps); embedding.onnx places the features at the
image-pad tokens; model.onnx (the builder's decoder) runs over explicit key/value buffers, so a
prompt that starts like the previous one only computes its new tail.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from agent.inference.base import BackendError
from agent.inference.kv_cache import KVCache, common_prefix
from agent.inference.kv_shift import Shift, plan_shift, rope_of, rotate_keys, rotation
from agent.inference.ort_session import EXTRA, import_ort, make_session
from agent.inference.vl_inputs import (
    CLIP_MEAN,
    CLIP_STD,
    VisionSpec,
    grid_of,
    image_digest,
    image_spans,
    image_tokens,
    mrope_positions,
    patchify,
)

_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
# Prompt tokens per decoder call. The attention kernel holds scores for every (head, new token,
# context token) and the MLP a [tokens, 18944] activation: three screenshots in one call would
# take gigabytes for a moment; in chunks the peak stays bounded at little cost in speed.
PREFILL_CHUNK = 512


@dataclass(frozen=True)
class Prompt:
    """One tokenized prompt with its images, ready for the decoder."""

    ids: np.ndarray  # int64 [n]
    positions: np.ndarray  # int64 [3, n], M-RoPE
    next_position: int  # position of the first generated token
    grids: tuple[tuple[int, int, int], ...]
    spans: tuple[tuple[int, int, str], ...]  # (start, end, digest) of each image-pad run
    images: tuple[Image.Image, ...] = ()  # patched only if their features must be computed


@dataclass
class Stats:
    """What the last prefill reused and computed."""

    cached_tokens: int = 0
    computed_tokens: int = 0
    images_encoded: int = 0
    images_cached: int = 0
    vision_s: float = 0.0
    shifted_tokens: int = 0  # of cached_tokens, moved past a removed span (kv_shift)


class VisionLanguageModel:
    """Sessions, tokenizer and caches of one exported model folder."""

    def __init__(self, folder: Path, provider: str, threads: int, *, vision_cache: int = 4,
                 prefix_cache: bool = True, prefill_chunk: int = PREFILL_CHUNK,
                 kv_shift: bool = False) -> None:
        ort = import_ort()
        self.folder = folder
        try:
            genai = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
            model = genai["model"]
            dec = model["decoder"]
            self._dec_io = dec["inputs"] | {"outputs": dec["outputs"]}
            self.layers = int(dec["num_hidden_layers"])
            self.image_token_id = int(model.get("image_token_id", -1))
            eos = model.get("eos_token_id", [])
            self.eos_ids = set(eos if isinstance(eos, list) else [eos])
            self.context_length = int(model.get("context_length", 32768))
            self.spec = _vision_spec(folder / model.get("vision", {}).get(
                "config_filename", "processor_config.json"))
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self.decoder = make_session(folder / dec["filename"], provider, threads)
            emb = model.get("embedding")
            self.embedding = make_session(folder / emb["filename"], provider, threads) if emb else None
            vis = model.get("vision")
            self.vision = make_session(folder / vis["filename"], provider, threads) if vis else None
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise BackendError(f"cannot load the model in {folder} on {provider}: {exc} "
                               f"(is {EXTRA[provider]} installed?)") from exc
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            if type(exc).__module__.startswith("onnxruntime"):
                raise BackendError(f"cannot load the model in {folder} on {provider}: {exc}") from exc
            raise
        if self.embedding is None:
            raise BackendError(f"{folder} has no embedding graph; re-export it with deskhand")
        self._make_state(ort, dec, provider)
        self.hidden = int(self.embedding.get_outputs()[0].shape[-1])
        self._feature_type = _NP_TYPES.get(self.embedding.get_inputs()[1].type, np.float32)
        self._features: OrderedDict[str, np.ndarray] = OrderedDict()
        self.vision_cache_size = vision_cache
        self.prefix_cache = prefix_cache
        # Shifted reuse (agent/inference/kv_shift.py): needs the rotary settings and numpy buffers.
        self.rope = rope_of(folder) if kv_shift and provider == "cpu" else None
        self.kv_shift = kv_shift
        self.prefill_chunk = max(1, prefill_chunk)
        self.stats = Stats()
        # After a vision or prefill call the arena hands its free chunks back: their tensors
        # are hundreds of MB and shaped differently each call, so kept chunks only fragment.
        self._release = ort.RunOptions()
        if provider == "cpu":
            self._release.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def _make_state(self, ort, dec: dict, provider: str) -> None:
        """The decoder's per-layer state: here keys and values for every layer."""
        past = {i.name: i for i in self.decoder.get_inputs()}
        key0 = past[self._dec_io["past_key_names"] % 0]
        self.kv = KVCache(ort, self.layers, int(dec["num_key_value_heads"]), int(dec["head_size"]),
                          _NP_TYPES[key0.type], provider)

    # --- inputs ---
    def tokens_per_image(self, images: Sequence[Image.Image]) -> list[int]:
        """How many image-pad tokens each model-size image takes in the prompt."""
        return [image_tokens(grid_of(image, self.spec), self.spec) for image in images]

    def tokenize(self, ids: Sequence[int], images: Sequence[Image.Image]) -> Prompt:
        """The prompt for token `ids` (image slots already expanded) with its positions."""
        grids = [grid_of(image, self.spec) for image in images]
        ids = np.asarray(ids, np.int64)
        positions, next_position = mrope_positions(ids, self.image_token_id, grids, self.spec)
        digests = tuple(image_digest(im) for im in images)
        runs = image_spans(ids, self.image_token_id)
        spans = tuple((a, b, d) for (a, b), d in zip(runs, digests, strict=True))
        return Prompt(ids, positions, next_position, tuple(grids), spans, tuple(images))

    # --- vision ---
    def image_features(self, prompt: Prompt, needed: Sequence[int]) -> dict[int, np.ndarray]:
        """Features of the images at indices `needed`, from the cache or the vision graph."""
        out: dict[int, np.ndarray] = {}
        for i in needed:
            digest = prompt.spans[i][2]
            cached = self._features.get(digest)
            if cached is not None:
                self._features.move_to_end(digest)
                self.stats.images_cached += 1
                out[i] = cached
                continue
            if self.vision is None:
                raise BackendError(f"{self.folder} has no vision graph; it cannot take screenshots")
            start = time.perf_counter()
            pixels, grid = patchify(prompt.images[i], self.spec)
            feats = self.vision.run(None, {"pixel_values": pixels,
                                           "image_grid_thw": np.asarray([grid], np.int64)},
                                    self._release)[0]
            self.stats.vision_s += time.perf_counter() - start
            self.stats.images_encoded += 1
            out[i] = feats
            if self.vision_cache_size > 0:
                self._features[digest] = feats
                while len(self._features) > self.vision_cache_size:
                    self._features.popitem(last=False)
        return out

    # --- decoder ---
    def prefill(self, prompt: Prompt, reserve: int) -> np.ndarray:
        """Run the prompt's uncached tail; returns the next-token logits [vocab]."""
        self.stats = Stats()
        n = len(prompt.ids)
        reuse = common_prefix(self.kv.held, prompt.ids, prompt.spans) if self.prefix_cache else 0
        reuse = min(reuse, n - 1)  # at least one token runs, to produce logits
        shift = self._plan_shift(prompt, reuse) if self.prefix_cache else None
        if shift is not None:
            self.kv.reserve(n + reserve, self.kv.length)  # room first, keeping every held token
            self._move(shift)
            reuse, self.stats.shifted_tokens = shift.reused, shift.length
        else:
            reuse = self.kv.reserve(n + reserve, reuse)
        features = self.tail_features(prompt, reuse)
        ids = prompt.ids[reuse:]
        spans = tuple(s for s in prompt.spans if s[0] >= reuse)
        is_image = ids == self.image_token_id
        row = 0
        for start in range(0, len(ids), self.prefill_chunk):
            part = slice(start, start + self.prefill_chunk)
            pads = int(is_image[part].sum())
            last = start + self.prefill_chunk >= len(ids)
            logits = self._forward(ids[part], prompt.positions[:, reuse:][:, part],
                                   features[row:row + pads], self._release if last else None)
            row += pads
            self.kv.extend(ids[part], positions=prompt.positions[:, reuse:][:, part])
        self.kv.extend(ids[:0], spans)  # image runs are recorded once all their tokens are in
        self.stats.cached_tokens, self.stats.computed_tokens = reuse, len(ids)
        return logits

    def tail_features(self, prompt: Prompt, reuse: int) -> np.ndarray:
        """Feature rows for the image-pad tokens after the first `reuse` tokens, in order."""
        needed = [i for i, (_, end, _) in enumerate(prompt.spans) if end > reuse]
        feats = self.image_features(prompt, needed)
        rows = [feats[i][max(0, reuse - prompt.spans[i][0]):] for i in needed]
        return np.concatenate(rows, axis=0) if rows else np.zeros((0, self.hidden), np.float32)

    def step(self, token: int, position: int) -> np.ndarray:
        """Feed one generated token; returns the next-token logits."""
        ids = np.asarray([token], np.int64)
        positions = np.full((3, 1), position, np.int64)
        logits = self._forward(ids, positions, np.zeros((0, self.hidden), np.float32))
        self.kv.extend(ids, positions=positions)
        return logits

    def _plan_shift(self, prompt: Prompt, reuse: int) -> Shift | None:
        held = self.kv.held
        if self.rope is None or held.positions is None:
            return None
        return plan_shift(held.ids, held.positions, held.images, prompt.ids, prompt.positions,
                          prompt.spans, reuse)

    def _move(self, shift: Shift) -> None:
        theta, rotary_dim = self.rope
        cos, sin = rotation(shift.delta, self.kv.head_dim, theta, rotary_dim)
        self.kv.move(shift.keep, shift.src, shift.length, shift.delta,
                     lambda keys: rotate_keys(keys, cos, sin, rotary_dim))

    def _forward(self, ids: np.ndarray, positions: np.ndarray, features: np.ndarray,
                 run_options=None) -> np.ndarray:
        embeds = self.embedding.run(None, {"input_ids": ids[None],
                                           "image_features": features.astype(self._feature_type)})[0]
        io = self._dec_io
        total = self.kv.length + len(ids)
        binding = self.decoder.io_binding()
        binding.bind_output(io["outputs"]["logits"])
        binding.bind_cpu_input(io["inputs_embeds"], np.ascontiguousarray(embeds))
        binding.bind_cpu_input(io["position_ids"], np.ascontiguousarray(positions[:, None, :]))
        binding.bind_cpu_input(io["attention_mask"], np.ones((1, total), np.int64))
        for layer in range(self.layers):
            for j, kind in enumerate(("key", "value")):
                value = self.kv.values[2 * layer + j]
                binding.bind_ortvalue_input(io[f"past_{kind}_names"] % layer, value)
                binding.bind_ortvalue_output(io["outputs"][f"present_{kind}_names"] % layer, value)
        self.decoder.run_with_iobinding(binding, run_options)
        logits = binding.get_outputs()[0].numpy()
        return logits.reshape(-1, logits.shape[-1])[-1].astype(np.float32)

    def forget(self) -> None:
        """Drop every cache (features and keys/values)."""
        self._features.clear()
        self.kv.clear()


def _vision_spec(path: Path) -> VisionSpec:
    """Patch sizes and normalization from processor_config.json (ort-extensions format)."""
    if not path.is_file():
        return VisionSpec()
    transforms = json.loads(path.read_text(encoding="utf-8"))["processor"]["transforms"]
    attrs = {t["operation"]["type"]: t["operation"].get("attrs", {}) for t in transforms}
    patch = attrs.get("PatchImage", {})
    norm = attrs.get("Normalize", {})
    return VisionSpec(patch=int(patch.get("patch_size", 14)), merge=int(patch.get("merge_size", 2)),
                      temporal=int(patch.get("temporal_patch_size", 2)),
                      mean=tuple(norm.get("mean", CLIP_MEAN)), std=tuple(norm.get("std", CLIP_STD)),
                      rescale=float(attrs.get("Rescale", {}).get("rescale_factor", 1 / 255)))
