"""A Qwen3.5 / Fara1.5 model folder: the Qwen2.5-VL runtime with a hybrid decoder state.

model.onnx (the onnxruntime-genai builder's Qwen35TextModel) has keys and values only for its
full-attention layers; its linear-attention layers (CausalConvWithState + LinearAttention, the
gated delta rule) carry a convolution window and a recurrent state instead (`HybridState`).
Tokenizing, the embedding and the vision cache are the base class's; the prefill differs in
where it may resume (snapshots, not any prefix) and where it stops to take snapshots.
"""

from __future__ import annotations

import numpy as np

from agent.inference.hybrid_state import FULL, LINEAR, HybridState
from agent.inference.vlm import _NP_TYPES, Prompt, Stats, VisionLanguageModel

GENAI_TYPE = "fara15"


class Qwen35Model(VisionLanguageModel):
    """Sessions, tokenizer, vision cache and hybrid decoder state of one Qwen3.5 export."""

    kv: HybridState

    def _make_state(self, ort, dec: dict, provider: str) -> None:
        """Layer kinds from the decoder's inputs: past keys (full) or past conv state (linear)."""
        io = self._dec_io
        inputs = {i.name: i for i in self.decoder.get_inputs()}
        kinds = [FULL if io["past_key_names"] % i in inputs else LINEAR for i in range(self.layers)]
        full, linear = kinds.index(FULL), kinds.index(LINEAR)
        conv = inputs[io["past_conv_names"] % linear]
        recurrent = inputs[io["past_recurrent_names"] % linear]
        self.kv = HybridState(ort, kinds, int(dec["num_key_value_heads"]), int(dec["head_size"]),
                              _NP_TYPES[inputs[io["past_key_names"] % full].type],
                              conv.shape[1:], recurrent.shape[1:], _NP_TYPES[recurrent.type],
                              provider)
        self._im_start = self.tokenizer.token_to_id("<|im_start|>")
        self._vision_start = self.tokenizer.token_to_id("<|vision_start|>")

    def snapshot_points(self, prompt: Prompt) -> list[int]:
        """Prefix lengths worth a snapshot: the end of the system prompt (where the second
        message starts) and the start of every screenshot (its <|vision_start|> token)."""
        ids = prompt.ids
        starts = np.flatnonzero(ids == self._im_start)
        points = {int(starts[1])} if len(starts) > 1 else set()
        points |= {int(p) for p in np.flatnonzero(ids == self._vision_start)}
        return sorted(p for p in points if 0 < p < len(ids))

    def prefill(self, prompt: Prompt, reserve: int) -> np.ndarray:
        """Run the prompt from the longest snapshot it matches; returns the next-token logits."""
        self.stats = Stats()
        state = self.kv
        n = len(prompt.ids)
        reuse = state.resume(prompt.ids, prompt.spans, n + reserve, reuse=self.prefix_cache)
        features = self.tail_features(prompt, reuse)
        is_image = prompt.ids == self.image_token_id
        points = [p for p in self.snapshot_points(prompt) if p > reuse] if self.prefix_cache else []
        ends = sorted({*points, *range(reuse + self.prefill_chunk, n, self.prefill_chunk), n})
        begin, row = reuse, 0
        for end in ends:
            pads = int(is_image[begin:end].sum())
            logits = self._forward(prompt.ids[begin:end], prompt.positions[:, begin:end],
                                   features[row:row + pads], self._release if end == n else None)
            row += pads
            state.extend(prompt.ids[begin:end])
            if end in points:
                state.snapshot()
            begin = end
        state.extend(prompt.ids[:0], tuple(s for s in prompt.spans if s[0] >= reuse))
        self.stats.cached_tokens, self.stats.computed_tokens = reuse, n - reuse
        return logits

    def _forward(self, ids: np.ndarray, positions: np.ndarray, features: np.ndarray,
                 run_options=None) -> np.ndarray:
        embeds = self.embedding.run(None, {"input_ids": ids[None],
                                           "image_features": features.astype(self._feature_type)})[0]
        io, state = self._dec_io, self.kv
        binding = self.decoder.io_binding()
        binding.bind_output(io["outputs"]["logits"])
        binding.bind_cpu_input(io["inputs_embeds"], np.ascontiguousarray(embeds))
        binding.bind_cpu_input(io["position_ids"], np.ascontiguousarray(positions[:, None, :]))
        binding.bind_cpu_input(io["attention_mask"],
                               np.ones((1, state.length + len(ids)), np.int64))
        for j, layer in enumerate(state.full):
            for k, kind in enumerate(("key", "value")):
                value = state.kv.values[2 * j + k]
                binding.bind_ortvalue_input(io[f"past_{kind}_names"] % layer, value)
                binding.bind_ortvalue_output(io["outputs"][f"present_{kind}_names"] % layer, value)
        for j, layer in enumerate(state.linear):
            for kind, past, present in (("conv", state.conv, state.spare_conv),
                                        ("recurrent", state.recurrent, state.spare_recurrent)):
                binding.bind_ortvalue_input(io[f"past_{kind}_names"] % layer, past[j])
                binding.bind_ortvalue_output(io["outputs"][f"present_{kind}_names"] % layer,
                                             present[j])
        self.decoder.run_with_iobinding(binding, run_options)
        state.swap()
        logits = binding.get_outputs()[0].numpy()
        return logits.reshape(-1, logits.shape[-1])[-1].astype(np.float32)
