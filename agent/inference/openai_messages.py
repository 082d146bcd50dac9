"""Deskhand chat messages as OpenAI chat-completions messages, screenshots as PNG data URLs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from PIL import Image

from agent.inference.base import Message
from agent.inference.chat import neutralize_markers


def to_openai_messages(messages: Sequence[Message], images: Sequence[Image.Image]
                       ) -> list[dict[str, Any]]:
    """Deskhand chat messages -> OpenAI ones, each {"type": "image"} replaced by a data URL.

    The server renders its own template and tokenizer over the text, out of our reach; what we
    can guarantee is that no text we send spells a special token: markers such as
    `<|im_end|>` or `<|image_pad|>` are broken by a zero-width space (`neutralize_markers`), after
    adjacent text parts are joined, so that no marker is completed across two parts; in text
    from outside (roles outside chat.TRUSTED_ROLES) `<tool_call>` and `<think>` too.
    """
    pending = iter(images)
    out = []
    for message in messages:
        content, role = message.get("content"), str(message["role"])
        if isinstance(content, list):
            content = _content_parts(content, pending, role)
        elif isinstance(content, str):
            content = neutralize_markers(content, role=role)
        out.append({"role": message["role"], "content": content})
    return out


def _content_parts(content: list[Any], pending: Any, role: str) -> str | list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "image":
            parts.append({"type": "image_url", "image_url": {"url": png_data_url(next(pending))}})
        elif parts and parts[-1]["type"] == "text":
            parts[-1]["text"] += str(part.get("text", ""))
        else:
            parts.append({"type": "text", "text": str(part.get("text", ""))})
    for p in parts:
        if p["type"] == "text":
            p["text"] = neutralize_markers(p["text"], role=role)
    # Text-only content as a plain string: some servers accept lists only for users.
    text_only = all(p["type"] == "text" for p in parts)
    return "".join(p["text"] for p in parts) if text_only else parts


def png_data_url(image: Image.Image) -> str:
    """A base64 PNG data URL (lossless: the model must see the pixels we measured against)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # level 1: far faster, slightly larger
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
