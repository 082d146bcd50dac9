"""ONNX Runtime backend: an exported model folder run in-process by onnxruntime-genai."""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from agent.inference.base import (
    BackendError,
    Cancel,
    Generation,
    Message,
    TokenCallback,
    count_images,
)
from agent.inference.chat import STOP_TEXT, find_chat_template, render_prompt

PROVIDERS = ("auto", "cpu", "cuda", "dml")
_OG_NAMES = {"cuda": "cuda", "dml": "dml"}
_EXTRA = {"cpu": "deskhand[onnx]", "cuda": "deskhand[cuda]", "dml": "deskhand[directml]"}


def _import_og():
    try:
        import onnxruntime_genai as og
    except ImportError as exc:
        raise BackendError(
            "the ONNX backend needs onnxruntime-genai: pip install 'deskhand[onnx]' "
            "(or deskhand[cuda] / deskhand[directml] for a GPU)"
        ) from exc
    return og


def choose_provider(requested: str, og) -> str:
    """Resolve "auto" to CUDA when usable, DirectML on Windows, else CPU; check explicit ones."""
    if requested not in PROVIDERS:
        raise BackendError(f"unknown provider {requested!r}; choose one of {', '.join(PROVIDERS)}")
    cuda = _available(og, "is_cuda_available")
    dml = sys.platform == "win32" and _available(og, "is_dml_available")
    if requested == "auto":
        return "cuda" if cuda else "dml" if dml else "cpu"
    if requested == "cuda" and not cuda:
        raise BackendError("CUDA is not usable here: install deskhand[cuda] and an NVIDIA driver, "
                           "or choose the cpu provider")
    if requested == "dml" and not dml:
        raise BackendError("DirectML is not usable here (Windows only, deskhand[directml]); "
                           "choose the cpu provider")
    return requested


def _available(og, probe: str) -> bool:
    try:
        return bool(getattr(og, probe)())
    except Exception:  # a build without that provider can raise instead of returning False
        return False


class OnnxBackend:
    """Greedy generation with an exported Fara / Qwen2.5-VL folder; the model loads once."""

    name = "onnx"

    def __init__(self, model_dir: str | Path, provider: str = "auto") -> None:
        og = _import_og()
        self._og = og
        folder = Path(model_dir)
        config_path = folder / "genai_config.json"
        if not config_path.is_file():
            raise BackendError(f"{folder} is not an exported model folder (no genai_config.json); "
                               "export one with the model manager first")
        self.provider = choose_provider(provider, og)
        if hasattr(og, "disable_telemetry_events"):
            og.disable_telemetry_events()  # no pixel or metric leaves the machine
        try:
            genai = json.loads(config_path.read_text(encoding="utf-8"))
            config = og.Config(str(folder))
            config.clear_providers()
            if self.provider != "cpu":
                config.append_provider(_OG_NAMES[self.provider])
            self.model = og.Model(config)
            self.processor = self.model.create_multimodal_processor()
            self.tokenizer = og.Tokenizer(self.model)
            self.template = find_chat_template(folder)
        except (FileNotFoundError, ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"cannot load the model in {folder} on {self.provider}: {exc} "
                               f"(is {_EXTRA[self.provider]} installed?)") from exc
        model_cfg = genai["model"]
        eos = model_cfg.get("eos_token_id", [])
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.context_length = int(model_cfg.get("context_length", 32768))
        self.patch = 14
        self.folder = folder

    def generate(
        self,
        messages: Sequence[Message],
        images: Sequence[Image.Image],
        *,
        max_new_tokens: int = 512,
        on_token: TokenCallback | None = None,
        cancel: Cancel | None = None,
    ) -> Generation:
        """Greedy generation until `</tool_call>`, EOS, the token limit or cancellation."""
        og = self._og
        start = time.perf_counter()
        inputs = self._prepare(messages, images)
        prompt_tokens = int(inputs["input_ids"].as_numpy().shape[-1])
        if prompt_tokens + 1 > self.context_length:
            raise BackendError(f"the prompt ({prompt_tokens} tokens) exceeds the model's context "
                               f"({self.context_length}); keep fewer screenshots")
        params = og.GeneratorParams(self.model)
        params.set_search_options(
            do_sample=False, num_beams=1,
            max_length=min(prompt_tokens + max_new_tokens, self.context_length))
        generator = og.Generator(self.model, params)
        timings = {"preprocess": time.perf_counter() - start}
        if cancel is not None and cancel.is_set():
            return Generation("", prompt_tokens, 0, timings, "cancelled")
        # onnxruntime-genai runs vision encoder, embedding and decoder prefill inside set_inputs
        # and the first step, with no hook in between: "prefill" covers all three (vision
        # included), "decode" the remaining tokens.
        mark = time.perf_counter()
        generator.set_inputs(inputs)
        stream = self.tokenizer.create_stream()
        text, count, reason = "", 0, "length"
        decode_start = None
        while count < max_new_tokens and not generator.is_done():
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
                break
            generator.generate_next_token()
            if decode_start is None:
                decode_start = time.perf_counter()
                timings["prefill"] = decode_start - mark
            token = int(generator.get_next_tokens()[0])
            count += 1
            if token in self.eos_ids:
                reason = "stop"
                break
            piece = stream.decode(token)
            text += piece
            if piece and on_token is not None:
                on_token(piece)
            if STOP_TEXT in text:
                reason = "stop"
                break
        else:
            if generator.is_done() and count < max_new_tokens:
                reason = "stop"
        end = time.perf_counter()
        timings.setdefault("prefill", end - mark)
        timings["decode"] = end - (decode_start or end)
        timings["total"] = end - start
        return Generation(text, prompt_tokens, count, timings, reason)

    def first_logits(self, messages: Sequence[Message], images: Sequence[Image.Image]):
        """The next-token logits after the prompt (numpy, [vocab]); for parity checks."""
        og = self._og
        inputs = self._prepare(messages, images)
        params = og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False,
                                  max_length=int(inputs["input_ids"].as_numpy().shape[-1]) + 1)
        generator = og.Generator(self.model, params)
        generator.set_inputs(inputs)
        return generator.get_logits().reshape(-1)

    def _prepare(self, messages: Sequence[Message], images: Sequence[Image.Image]):
        """Prompt text and images through the runtime's own processor (pad expansion, patches)."""
        if count_images(messages) != len(images):
            raise ValueError("messages and images disagree on the number of images")
        prompt = render_prompt(self.template, messages)
        og_images = self._og.Images.open_bytes(*[_png(im) for im in images]) if images else None
        inputs = self.processor(prompt, images=og_images)
        self._check_grids(inputs, images)
        return inputs

    def _check_grids(self, inputs, images: Sequence[Image.Image]) -> None:
        """Fail loudly if the runtime's processor resized an image the agent already sized."""
        if not images:
            return
        grids = inputs["image_grid_thw"].as_numpy().tolist()
        for im, (_, gh, gw) in zip(images, grids, strict=True):
            if (gw * self.patch, gh * self.patch) != im.size:
                raise BackendError(
                    f"the runtime resized a {im.size[0]}x{im.size[1]} image to "
                    f"{gw * self.patch}x{gh * self.patch}; images must be at model size "
                    "(multiples of 28 within the processor's pixel bounds)"
                )


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # Stored, not deflated: the runtime decodes PNG or JPEG only, and level 0 encodes fastest.
    image.convert("RGB").save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()
