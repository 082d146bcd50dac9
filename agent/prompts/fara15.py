"""The Fara1.5 prompt family (Qwen3.5): browser and desktop variants, DISPLAY-space coordinates.

All wording comes from assets/prompts/fara15.json; its "unverified" list names the strings that
are guesses (Microsoft's Fara1.5 prompt module is not public). What the public agent shows
(src/fara/agents/fara/fara15_agent.py in microsoft/fara) is followed here: the first user
message is the screenshot and the task; each later one is "Current URL: …" (when there is one)
and a fixed line; a user's answer replaces that line and keeps its text when its screenshot is
pruned; only the newest three screenshots are sent; coordinates are on a square display grid.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

from agent.actions import FARA15_ACTIONS, TOOL_NAME, Action, HScroll, Parsed, ParseError, parse
from agent.geometry import DisplaySpace, ResizeRule, Size, Space
from agent.inference.base import Message
from agent.options import Mode
from agent.paths import asset
from agent.prompts.fara import PARAM_TYPES, Turn

# JSON schema types of the parameters the Fara1.5 prompt declares: Fara-7B's, plus the
# question of the two no-input actions and terminate's answer.
_PARAM_TYPES: dict[str, dict[str, Any]] = {
    **PARAM_TYPES, "question": {"type": "string"}, "answer": {"type": "string"}}


class Fara15Family:
    """Builds Fara1.5 prompts; parses replies into MODEL-space actions."""

    name = "fara15"
    tools: tuple[str, ...] = (TOOL_NAME,)
    coordinates = Space.DISPLAY

    def __init__(self, data: dict[str, Any], mode: Mode = Mode.BROWSER) -> None:
        self.data = data
        self.mode = Mode(mode)
        self.variant: dict[str, Any] = data["modes"][self.mode.value]
        self.max_images: int = int(data["max_images"])
        self.resize = ResizeRule(**data["resize"])
        self.display = DisplaySpace(int(data["display_size"]))
        viewport = Size(data["viewport"]["width"], data["viewport"]["height"])
        # The image the model was trained on (1440x900 -> 1440x896): the default pixel budget.
        self.model_pixels = self.resize.model_size(viewport, self.resize.max_pixels).pixels
        # The actions this mode's prompt declares; the parser refuses the others.
        self.actions: dict[str, type[Action]] = {
            n: FARA15_ACTIONS[n] for n in self.variant["actions"] if n in FARA15_ACTIONS}

    @classmethod
    def load(cls, path: Path | None = None, *, mode: Mode | str = Mode.BROWSER) -> Fara15Family:
        return cls(_load(str(path or asset("prompts", "fara15.json"))), Mode(mode))

    def model_size(self, screenshot: Size, budget: int | None = None) -> Size:
        """The model image size (factor 32); default budget: the trained viewport's pixels."""
        return self.resize.model_size(screenshot, budget or self.model_pixels)

    def tool_schema(self) -> dict[str, Any]:
        """The computer_use function schema (it names the display grid, not the image size)."""
        tool, grid = self.data["tool"], self.display.size
        text = {k: v.replace("{display}", str(grid)) for k, v in tool["parameter_descriptions"].items()}
        help_lines = "\n".join(f"* `{n}`: {t}" for n, t in self.variant["actions"].items())
        properties: dict[str, Any] = {
            "action": {"type": "string", "enum": list(self.variant["actions"]),
                       "description": text["action"] + "\n" + help_lines}}
        for param, schema in _PARAM_TYPES.items():
            properties[param] = {**schema, "description": text[param]}
        return {"type": "function", "function": {
            "name": self.tools[0],
            "description": "\n".join(tool["description_lines"]).replace("{display}", str(grid)),
            "parameters": {"type": "object", "properties": properties, "required": ["action"]}}}

    def system_prompt(self) -> str:
        d = self.data
        schema = json.dumps(self.tool_schema(), ensure_ascii=False)
        tools = d["tools_open"] + "\n" + schema + "\n" + d["tools_close"]
        return "\n\n".join([d["preamble"], "\n".join(self.variant["instructions"]) + "\n" + tools,
                            d["call_instructions"]])

    def build(
        self, task: str, history: Sequence[Turn], current: Image.Image, model_size: Size,
        url: str | None = None, *, history_scale: float = 1.0,
    ) -> tuple[list[Message], list[Image.Image]]:
        """Messages and images for the next step (the newest `max_images` screenshots).

        Pruned turns are dropped, except the task and the person's answers, which keep their
        text (an answer without its URL line, as the public agent does); a page observation is
        dropped with its screenshot.
        """
        screenshots = [self._reduced(t.image, history_scale) for t in history] + [current]
        keep_from = max(0, len(screenshots) - self.max_images)
        images: list[Image.Image] = []

        def user_turn(index: int, text: str, kept: str | None) -> Message | None:
            if index < keep_from:
                return None if kept is None else _text("user", kept)
            images.append(screenshots[index])
            return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}

        messages: list[Message | None] = [_text("system", self.system_prompt()),
                                          user_turn(0, task, task)]
        for i, turn in enumerate(history):
            messages.append(_text("assistant", turn.reply))
            if turn.feedback:
                messages.append(_text("user", turn.feedback))
            next_url = history[i + 1].url if i + 1 < len(history) else url
            messages.append(user_turn(i + 1, self._url_prefix(next_url) + self._line(turn),
                                      turn.user_reply or None))
        return [m for m in messages if m is not None], images

    def _line(self, turn: Turn) -> str:
        """What follows the URL line: the person's answer instead of the fixed line, or the page
        observation before it (the public agent's two formats)."""
        if turn.user_reply:
            return turn.user_reply
        if turn.observation:
            return turn.observation + "\n" + self.data["next_turn"]
        return self.data["next_turn"]

    def _url_prefix(self, url: str | None) -> str:
        if not url:
            return ""
        short = url[: self.data["url_max_chars"]]
        return self.variant["url_line"].format(url=short) + "\n"

    def _reduced(self, image: Image.Image, scale: float) -> Image.Image:
        """A history screenshot at `scale` of its sides, on this family's grid (deterministic)."""
        if scale >= 1.0:
            return image
        size = self.resize.model_size(Size(max(1, round(image.width * scale)),
                                           max(1, round(image.height * scale))), self.resize.max_pixels)
        if (size.width, size.height) == image.size:
            return image
        return image.resize((size.width, size.height), Image.Resampling.BICUBIC)

    def feedback(self, error: ParseError) -> str:
        """The line sent back to the model after a reply the parser refused."""
        return self.data["parse_error_feedback"].format(error=error.message)

    def parse(self, text: str, model_size: Size) -> Parsed | ParseError:
        """The reply's action, its display-grid coordinates and scrolls turned into MODEL pixels."""
        parsed = parse(text, self.display.bounds(), tools=self.tools, actions=self.actions)
        if isinstance(parsed, ParseError):
            return parsed
        return dataclasses.replace(parsed, action=self.to_model(parsed.action, model_size))

    def to_model(self, action: Action, model_size: Size) -> Action:
        """`action` with every coordinate and scroll amount converted from DISPLAY to MODEL."""
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(action):
            value = getattr(action, f.name)
            if f.name.endswith("coordinate") and isinstance(value, tuple):
                x, y = self.display.to_model(value[0], value[1], model_size)
                changes[f.name] = (_pixel(x, model_size.width), _pixel(y, model_size.height))
            elif f.name == "pixels":
                changes[f.name] = self.display.scroll_to_model(
                    value, model_size, horizontal=isinstance(action, HScroll))
        return dataclasses.replace(action, **changes) if changes else action

    def from_model(self, action: Action, model_size: Size) -> Action:
        """The inverse of `to_model`: `action` as this family writes it (DISPLAY units, rounded),
        for replies the project writes itself (Deskhand Nano's training data)."""
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(action):
            value = getattr(action, f.name)
            if f.name.endswith("coordinate") and isinstance(value, tuple):
                x, y = self.display.from_model(value[0], value[1], model_size)
                changes[f.name] = (round(x), round(y))  # as Nano's data always was
            elif f.name == "pixels":
                changes[f.name] = round(self.display.scroll_from_model(
                    value, model_size, horizontal=isinstance(action, HScroll)))
        return dataclasses.replace(action, **changes) if changes else action


def _pixel(value: float, side: int) -> int:
    """A model-image pixel index: rounded half up, kept on the image."""
    return min(max(math.floor(value + 0.5), 0), side - 1)


def _text(role: str, text: str) -> Message:
    return {"role": role, "content": [{"type": "text", "text": text}]}


@cache
def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
