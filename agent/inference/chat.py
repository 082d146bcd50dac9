"""Render chat messages to a prompt string with a model folder's own chat template.

Both local backends (transformers reference, ONNX Runtime) render through here, so they see the
very same prompt text; image parts become `<|vision_start|><|image_pad|><|vision_end|>`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from agent.inference.base import Message

IMAGE_PAD = "<|image_pad|>"
STOP_TEXT = "</tool_call>"


def find_chat_template(model_dir: str | Path) -> str:
    """The chat template stored in a model folder (tokenizer_config, chat_template.json or .jinja)."""
    folder = Path(model_dir)
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for name in ("chat_template.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            template = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
            if isinstance(template, str) and template:
                return template
    raise FileNotFoundError(f"no chat template in {folder}")


@lru_cache(maxsize=8)
def _compile(template: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    return env.from_string(template)


def _raise(message: str) -> None:
    raise ValueError(message)


def render_prompt(template: str, messages: Sequence[Message]) -> str:
    """The prompt text for `messages`, ending with the assistant generation prompt."""
    return _compile(template).render(messages=list(messages), add_generation_prompt=True)


def expand_image_pads(prompt: str, tokens_per_image: Sequence[int]) -> str:
    """Repeat each image's single pad token to its merged-patch count, as Qwen processors do."""
    parts = prompt.split(IMAGE_PAD)
    if len(parts) - 1 != len(tokens_per_image):
        raise ValueError(f"prompt has {len(parts) - 1} image slots for {len(tokens_per_image)} images")
    out = [parts[0]]
    for count, rest in zip(tokens_per_image, parts[1:], strict=True):
        out.append(IMAGE_PAD * count)
        out.append(rest)
    return "".join(out)
