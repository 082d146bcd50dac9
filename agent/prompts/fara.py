"""The Fara prompt family: system prompt with the tool schema, and the screenshot history.

All wording comes from assets/prompts/fara.json so it can be tuned without code edits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

from agent.actions import ACTION_TYPES, TOOL_NAME, Action, Parsed, ParseError, parse
from agent.geometry import DEFAULT_MODEL_PIXELS, QWEN25_RESIZE, ResizeRule, Size, Space, smart_resize
from agent.inference.base import Message
from agent.paths import asset


@dataclass(frozen=True)
class Turn:
    """One past step as the model saw it: its screenshot (model size), URL, and its reply."""

    image: Image.Image
    reply: str
    url: str | None = None
    # A feedback line sent after a reply the parser refused (no image of its own).
    feedback: str | None = None
    # The person's answer to ask_user_question: the next user message; a family keeps its text
    # when the turn's screenshot is pruned.
    user_reply: str | None = None
    # A read_page_answer_question observation (page text): Fara1.5 puts it before the fixed
    # next-screenshot line and drops it with its screenshot (`agent.prompts.fara15`).
    observation: str | None = None


# JSON schema types per parameter; which actions use which parameters.
PARAM_TYPES: dict[str, dict[str, Any]] = {
    "coordinate": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    "text": {"type": "string"},
    "press_enter": {"type": "boolean"},
    "delete_existing_text": {"type": "boolean"},
    "keys": {"type": "array", "items": {"type": "string"}},
    "pixels": {"type": "number"},
    "url": {"type": "string"},
    "query": {"type": "string"},
    "fact": {"type": "string"},
    "time": {"type": "number"},
    "status": {"type": "string", "enum": ["success", "failure"]},
}


class FaraFamily:
    """Builds Fara-format prompts and parses Fara replies."""

    name = "fara"
    # The tools this family's prompt declares; the parser refuses calls to any other name.
    tools: tuple[str, ...] = (TOOL_NAME,)
    # The actions its parser accepts (Fara-7B's); a Fara1.5 family sets `FARA15_ACTIONS`.
    actions: dict[str, type[Action]] = ACTION_TYPES
    resize: ResizeRule = QWEN25_RESIZE
    coordinates = Space.MODEL  # Fara-7B answers in pixels of the image it was shown

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.max_images: int = int(data["max_images"])

    def model_size(self, screenshot: Size, budget: int | None = None) -> Size:
        """The model image size for a screenshot (default budget: a 1440x900 screen's)."""
        return self.resize.model_size(screenshot, budget or DEFAULT_MODEL_PIXELS)

    @classmethod
    def load(cls, path: Path | None = None) -> FaraFamily:
        return cls(_load(str(path or asset("prompts", "fara.json"))))

    def tool_schema(self, model_size: Size) -> dict[str, Any]:
        """The computer_use function schema, with the model image's resolution."""
        tool = self.data["tool"]
        description = "\n".join(tool["description_lines"]).format(
            width=model_size.width, height=model_size.height)
        action_help = "\n".join(f"* `{name}`: {text}" for name, text in tool["actions"].items())
        properties: dict[str, Any] = {
            "action": {"type": "string", "enum": list(ACTION_TYPES),
                       "description": tool["parameter_descriptions"]["action"] + "\n" + action_help},
        }
        for param, schema in PARAM_TYPES.items():
            properties[param] = {**schema, "description": tool["parameter_descriptions"][param]}
        return {
            "type": "function",
            "function": {
                "name": self.tools[0],
                "description": description,
                "parameters": {"type": "object", "properties": properties, "required": ["action"]},
            },
        }

    def system_prompt(self, model_size: Size) -> str:
        d = self.data
        schema = json.dumps(self.tool_schema(model_size), ensure_ascii=False)
        return "\n\n".join([
            d["preamble"],
            "\n".join(d["instructions"]) + "\n" + d["tools_open"] + "\n" + schema + "\n" + d["tools_close"],
            d["call_instructions"],
        ])

    def build(
        self, task: str, history: Sequence[Turn], current: Image.Image, model_size: Size,
        url: str | None = None, *, history_scale: float = 1.0,
    ) -> tuple[list[Message], list[Image.Image]]:
        """Messages and images for the next step.

        The first user turn's task text is always kept; only the newest `max_images`
        screenshots are sent (older turns lose their image, not their reply). With
        `history_scale` below 1 the earlier screenshots are sent at that fraction of their
        sides (fewer image tokens; Fara was trained on full-size history, so it is opt-in).
        """
        d = self.data
        screenshots = [reduced(t.image, history_scale) for t in history] + [current]
        keep_from = max(0, len(screenshots) - self.max_images)
        messages: list[Message] = [_text("system", self.system_prompt(model_size))]
        images: list[Image.Image] = []

        def user_turn(index: int, text: str) -> Message:
            content: list[dict[str, Any]] = []
            if index >= keep_from:
                content.append({"type": "image"})
                images.append(screenshots[index])
            content.append({"type": "text", "text": text})
            return {"role": "user", "content": content}

        messages.append(user_turn(0, d["first_turn"].format(task=task)))
        for i, turn in enumerate(history):
            messages.append(_text("assistant", turn.reply))
            if turn.feedback:
                messages.append(_text("user", turn.feedback))
            for said in (turn.user_reply, turn.observation):  # Fara-7B asks nothing: never both
                if said:
                    messages.append(_text("user", said))
            if i + 1 < len(screenshots):
                next_url = history[i + 1].url if i + 1 < len(history) else url
                messages.append(user_turn(i + 1, self._next_turn_text(next_url)))
        # Drop user turns emptied by pruning (they would only say "here is the screen").
        messages = [m for m in messages if not _is_stale_turn(m, d)]
        return messages, images

    def _next_turn_text(self, url: str | None) -> str:
        d = self.data
        if url:
            short = url if len(url) <= d["url_max_chars"] else url[: d["url_max_chars"]]
            return d["next_turn"].format(url=short)
        return d["next_turn_no_url"]

    def feedback(self, error: ParseError) -> str:
        """The line sent back to the model after a reply the parser refused."""
        return self.data["parse_error_feedback"].format(error=error.message)

    def parse(self, text: str, model_size: Size) -> Parsed | ParseError:
        return parse(text, model_size, tools=self.tools, actions=self.actions)


def reduced(image: Image.Image, scale: float) -> Image.Image:
    """`image` with both sides scaled by `scale` and rounded to model sizes (multiples of 28).

    Deterministic, so the same history screenshot gives the same pixels every step and the
    runtime's vision cache still recognises it.
    """
    if scale >= 1.0:
        return image
    h, w = smart_resize(max(1, round(image.height * scale)), max(1, round(image.width * scale)))
    if (w, h) == image.size:
        return image
    return image.resize((w, h), Image.Resampling.BICUBIC)


def _text(role: str, text: str) -> Message:
    return {"role": role, "content": [{"type": "text", "text": text}]}


def _is_stale_turn(message: Message, data: dict[str, Any]) -> bool:
    if message["role"] != "user":
        return False
    parts = message["content"]
    if any(p["type"] == "image" for p in parts):
        return False
    text = "".join(p.get("text", "") for p in parts)
    prefix_with_url = data["next_turn"].split("{url}")[0]
    return text == data["next_turn_no_url"] or (
        text.startswith(prefix_with_url) and text.endswith(data["next_turn"].split("{url}")[1]))


@cache
def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
