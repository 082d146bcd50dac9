"""Transformers backend: Qwen2.5-VL in PyTorch, greedy; the parity oracle and a fallback."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from agent.inference.base import (
    Backend,
    BackendError,
    Cancel,
    FinishReason,
    Generation,
    Message,
    Request,
    TokenCallback,
    check_images,
)
from agent.inference.chat import STOP_TEXT, PromptTokenizer, find_chat_template
from agent.inference.model_files import HF, PROBE, load_error

_EXTRA = "pip install 'deskhand[export]' (torch and transformers)"


def _model_type(folder: Path) -> str:
    return str(json.loads((folder / "config.json").read_text()).get("model_type", ""))


class ReferenceBackend(Backend):
    """Runs a Hugging Face Qwen2.5-VL checkpoint with transformers; loads once, reused per call."""

    name = "reference"

    def __init__(self, hf_dir: str | Path, dtype: str = "float32") -> None:
        try:
            import torch
            from transformers import (
                AutoImageProcessor,
                AutoTokenizer,
                Qwen2_5_VLForConditionalGeneration,
                Qwen3_5ForConditionalGeneration,
            )
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BackendError(f"the reference backend needs torch and transformers: {_EXTRA}") from exc
        if dtype not in ("float32", "bfloat16"):
            raise BackendError(f"dtype must be float32 or bfloat16, not {dtype!r}")
        folder = Path(hf_dir)
        if not (folder / "config.json").is_file():
            raise BackendError(f"{folder} is not a Hugging Face model folder (no config.json)")
        self._torch = torch
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.image_processor = AutoImageProcessor.from_pretrained(folder)
            # Qwen3.5 (Fara1.5) folders get their own class; every other folder is Qwen2.5-VL.
            model_cls = (Qwen3_5ForConditionalGeneration
                         if _model_type(folder) == "qwen3_5" else Qwen2_5_VLForConditionalGeneration)
            self.model = model_cls.from_pretrained(
                folder, dtype=getattr(torch, dtype)
            ).eval()
            self.template = find_chat_template(folder)
            self.prompts = PromptTokenizer(self.tokenizer.backend_tokenizer, self.template)
            self.prompts.encode(PROBE, [1])  # a broken template fails here, not mid-run
        except Exception as exc:  # transformers, tokenizers and jinja2 raise many types
            raise BackendError(load_error(folder, HF, exc)) from exc
        self.merge = self.model.config.vision_config.spatial_merge_size
        self.image_token_id = self.model.config.image_token_id
        gen_eos = self.model.generation_config.eos_token_id
        eos = set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
        eos.add(self.tokenizer.convert_tokens_to_ids("<|im_end|>"))
        self.eos_ids = sorted(i for i in eos if i is not None)
        self._vision_seconds = 0.0
        self.model.model.visual.register_forward_pre_hook(self._vision_start)
        self.model.model.visual.register_forward_hook(self._vision_end)

    def _vision_start(self, *_: Any) -> None:
        self._vision_t0 = time.perf_counter()

    def _vision_end(self, *_: Any) -> None:
        self._vision_seconds += time.perf_counter() - self._vision_t0

    def prepare_inputs(self, messages: Sequence[Message], images: Sequence[Image.Image]) -> dict:
        """Tokenized prompt plus pixel values and grids, as the model's forward takes them."""
        check_images(messages, images)
        inputs: dict = {}
        counts: list[int] = []
        if images:
            vision = self.image_processor(images=list(images), return_tensors="pt")
            inputs["pixel_values"] = vision["pixel_values"].to(self.model.dtype)
            inputs["image_grid_thw"] = vision["image_grid_thw"]
            counts = [int(g.prod()) // self.merge**2 for g in vision["image_grid_thw"]]
        ids = self._torch.tensor([self.prompts.encode(messages, counts)], dtype=self._torch.long)
        inputs["input_ids"] = ids
        inputs["attention_mask"] = self._torch.ones_like(ids)
        # Without token types transformers silently falls back to 1-D positions (no M-RoPE).
        inputs["mm_token_type_ids"] = (ids == self.image_token_id).int()
        return inputs

    def first_logits(self, messages: Sequence[Message], images: Sequence[Image.Image]):
        """The next-token logits after the prompt (numpy float32, [vocab]); for parity checks."""
        inputs = self.prepare_inputs(messages, images)
        with self._torch.inference_mode():
            logits = self.model(**inputs, logits_to_keep=1).logits
        return logits[0, -1].float().numpy()

    def _generate(self, request: Request) -> Generation:
        """Greedy generation until `</tool_call>`, EOS, the token limit or cancellation."""
        torch = self._torch
        max_new_tokens = request.max_new_tokens
        inputs = self.prepare_inputs(request.messages, request.images)
        prompt_len = inputs["input_ids"].shape[1]
        watcher = _Watcher(self.tokenizer, prompt_len, request.on_token, request.cancel)
        self._vision_seconds = 0.0
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=self.eos_ids,
                pad_token_id=self.tokenizer.pad_token_id,
                stopping_criteria=[watcher],
            )
        end = time.perf_counter()
        new_ids = out[0, prompt_len:].tolist()
        first = watcher.first_token_time or end
        timings = {
            "vision": self._vision_seconds,
            "prefill": max(first - start - self._vision_seconds, 0.0),
            "decode": end - first,
            "total": end - start,
        }
        if watcher.cancelled:
            reason = FinishReason.CANCELLED
        elif watcher.stopped or (new_ids and new_ids[-1] in self.eos_ids):
            reason = FinishReason.STOP
        else:
            reason = FinishReason.LENGTH if len(new_ids) >= max_new_tokens else FinishReason.STOP
        text = self.tokenizer.decode(
            [i for i in new_ids if i not in self.eos_ids], skip_special_tokens=False
        )
        return Generation(text, prompt_len, len(new_ids), timings, reason)


class _Watcher:
    """Stopping criterion that streams text, stops at `</tool_call>` and honours cancel."""

    def __init__(self, tokenizer, prompt_len: int, on_token: TokenCallback | None,
                 cancel: Cancel | None) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.on_token = on_token
        self.cancel = cancel
        self.emitted = ""
        self.first_token_time: float | None = None
        self.cancelled = False
        self.stopped = False

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self.first_token_time is None:
            self.first_token_time = time.perf_counter()
        text = self.tokenizer.decode(input_ids[0, self.prompt_len:], skip_special_tokens=True)
        if not text.endswith("\ufffd") and len(text) > len(self.emitted):
            if self.on_token is not None:
                self.on_token(text[len(self.emitted):])
            self.emitted = text
        if STOP_TEXT in text:
            self.stopped = True
        if self.cancel is not None and self.cancel.is_set():
            self.cancelled = True
        done = self.stopped or self.cancelled
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool)
