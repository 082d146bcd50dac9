"""ONNX Runtime backend: an exported model folder run in-process by Deskhand's own loop.

The folder is the onnxruntime-genai format (genai_config.json, model.onnx, embedding.onnx,
vision.onnx), so it also runs in onnxruntime-genai; Deskhand drives the three graphs itself
(`agent.inference.vlm`) to encode each screenshot once and to reuse the keys and values of the
prompt prefix that did not change since the previous step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from agent.inference.base import (
    Backend,
    BackendError,
    FinishReason,
    Generation,
    Message,
    Request,
    check_images,
)
from agent.inference.chat import STOP_TEXT, PromptTokenizer, find_chat_template
from agent.inference.model_files import ONNX, PROBE, load_error, vision_spec_problems
from agent.inference.ort_session import PROVIDERS, choose_provider, import_ort, thread_count
from agent.options import Provider

__all__ = ["PROVIDERS", "OnnxBackend", "choose_provider"]


class OnnxBackend(Backend):
    """Greedy generation with an exported Fara / Qwen2.5-VL folder; the model loads once.

    `vision_cache` is how many screenshots' features are kept (0 turns the cache off);
    `prefix_cache` keeps the keys and values of the previous call for the next one;
    `kv_shift` also keeps them past a removed screenshot (agent/inference/kv_shift.py);
    `fixed_length` decodes exactly `max_new_tokens` every call, suppressing EOS and the end of
    the tool call (the bench's setting: it times a fixed amount of decoding).
    """

    name = "onnx"

    def __init__(self, model_dir: str | Path, provider: str = Provider.AUTO, *, threads: int | None = None,
                 vision_cache: int = 4, prefix_cache: bool = True,
                 fixed_length: bool = False, kv_shift: bool = False) -> None:
        from agent.inference.factory import onnx_model_class

        ort = import_ort()
        folder = Path(model_dir)
        if not (folder / "genai_config.json").is_file():
            raise BackendError(f"{folder} is not an exported model folder (no genai_config.json); "
                               "export one with the model manager first")
        self.provider = choose_provider(provider, ort.get_available_providers())
        self.threads = threads or thread_count()
        try:  # the folder's files are input: any failure to load them is a BackendError
            model_class = onnx_model_class(folder)  # the family's runtime (Qwen2.5-VL, Qwen3.5)
            self.vlm = model_class(folder, self.provider, self.threads,
                                   vision_cache=vision_cache, prefix_cache=prefix_cache,
                                   kv_shift=kv_shift)
            self.template = find_chat_template(folder)
        except Exception as exc:  # tokenizers, jinja2, onnxruntime raise their own types
            raise BackendError(load_error(folder, ONNX, exc)) from exc
        if problems := vision_spec_problems(self.vlm.spec):
            raise BackendError(f"cannot load the model in {folder}: processor_config.json: "
                               + "; ".join(problems))
        try:
            self.prompts = PromptTokenizer(self.vlm.tokenizer, self.template)
        except ValueError as exc:
            raise BackendError(f"cannot load the model in {folder}: {exc}") from exc
        if self.prompts.image_token_id != self.vlm.image_token_id:
            raise BackendError(f"cannot load the model in {folder}: the tokenizer's image token "
                               f"({self.prompts.image_token_id}) is not the model's "
                               f"({self.vlm.image_token_id})")
        try:  # a template that cannot build a prompt fails here, not at the first step
            self.prompts.encode(PROBE, [1])
        except Exception as exc:
            raise BackendError(load_error(folder, ONNX, exc)) from exc
        self.eos_ids = self.vlm.eos_ids
        self.context_length = self.vlm.context_length
        self.folder = folder
        self.fixed_length = fixed_length

    def _generate(self, request: Request) -> Generation:
        """Greedy generation until `</tool_call>`, EOS, the token limit or cancellation."""
        vlm = self.vlm
        start = time.perf_counter()
        prompt = self._prepare(request.messages, request.images)
        n = len(prompt.ids)
        if n + 1 > self.context_length:
            raise BackendError(f"the prompt ({n} tokens) exceeds the model's context "
                               f"({self.context_length}); keep fewer screenshots")
        max_new_tokens = max(0, min(request.max_new_tokens, self.context_length - n))
        timings = {"preprocess": time.perf_counter() - start}
        if request.cancelled() or max_new_tokens == 0:
            return Generation("", n, 0, timings, FinishReason.CANCELLED if max_new_tokens
                              else FinishReason.LENGTH)
        mark = time.perf_counter()
        logits = vlm.prefill(prompt, reserve=max_new_tokens)
        decode_start = time.perf_counter()
        stats = vlm.stats
        timings["vision"] = stats.vision_s
        timings["prefill"] = decode_start - mark - stats.vision_s
        text, generated, reason = self._decode(request, logits, prompt.next_position,
                                               max_new_tokens)
        end = time.perf_counter()
        timings["decode"] = end - decode_start
        timings["total"] = end - start
        return Generation(text, n, len(generated), timings, reason,
                          cached_tokens=stats.cached_tokens, cached_images=stats.images_cached)

    def _decode(self, request: Request, logits: np.ndarray, position: int,
                max_new_tokens: int) -> tuple[str, list[int], FinishReason]:
        """Greedy tokens after the prefill: the text, the token ids and why decoding ended."""
        from tokenizers.decoders import DecodeStream

        vlm = self.vlm
        stream = DecodeStream(skip_special_tokens=False)  # holds back half characters
        generated: list[int] = []
        text, reason = "", FinishReason.LENGTH
        # The bench decodes a fixed amount whatever random weights prefer: no early stops.
        forced_until = max_new_tokens if self.fixed_length else 0
        while True:
            token = int(np.argmax(logits))
            forced = len(generated) < forced_until
            if forced and token in self.eos_ids:
                token = _best_other(logits, self.eos_ids)
            generated.append(token)
            if token in self.eos_ids:
                reason = FinishReason.STOP
                break
            piece = stream.step(vlm.tokenizer, token) or ""
            text += piece
            request.emit(piece)
            if STOP_TEXT in text and not forced:
                reason = FinishReason.STOP
                break
            if len(generated) >= max_new_tokens:
                break
            if request.cancelled():
                reason = FinishReason.CANCELLED
                break
            logits = vlm.step(token, position)
            position += 1
        # Bytes the stream still holds (a character cut by the token limit) decode as they
        # would in one piece, replacement character included, as transformers does.
        full = vlm.tokenizer.decode([t for t in generated if t not in self.eos_ids],
                                    skip_special_tokens=False)
        rest = full[len(text):] if full.startswith(text) else ""
        if rest:
            text += rest
            request.emit(rest)
        return text, generated, reason

    def first_logits(self, messages: Sequence[Message], images: Sequence[Image.Image]) -> np.ndarray:
        """The next-token logits after the prompt (numpy float32, [vocab]); for parity checks."""
        return self.vlm.prefill(self._prepare(messages, images), reserve=1)

    def warm_up(self) -> float:
        """Run every graph once on a tiny input so the first task does not pay for it; seconds."""
        start = time.perf_counter()
        unit = self.vlm.spec.unit
        image = Image.new("RGB", (2 * unit, 2 * unit), (128, 128, 128))
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]
        self.generate(messages, [image], max_new_tokens=2)
        self.vlm.forget()  # the warm-up image and prompt are never reused
        return time.perf_counter() - start

    def _prepare(self, messages: Sequence[Message], images: Sequence[Image.Image]):
        check_images(messages, images)
        unit = self.vlm.spec.unit
        for im in images:
            if im.width % unit or im.height % unit:
                raise BackendError(
                    f"the runtime would have to resize a {im.width}x{im.height} image; images must be "
                    f"at model size (both sides multiples of {unit})")
        ids = self.prompts.encode(messages, self.vlm.tokens_per_image(images))
        return self.vlm.tokenize(ids, images)



def _best_other(logits: np.ndarray, banned: set[int]) -> int:
    masked = logits.copy()
    masked[list(banned)] = -np.inf
    return int(np.argmax(masked))
