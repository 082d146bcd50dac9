"""Model families: how a family's model is prompted, and which family a model folder holds.

A family is one class implementing `PromptFamily` (wording as data in `assets/prompts/`); the
loop asks `get_family(backend.family, mode=...)` for it, and `agent.inference.factory` names the
backend's family from its model folder (`family_of_folder`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from agent.actions import Parsed, ParseError
from agent.geometry import ResizeRule, Size, Space
from agent.inference.base import Message
from agent.options import Mode
from agent.prompts.fara import FaraFamily, Turn
from agent.prompts.fara15 import Fara15Family

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "Fara15Family", "FaraFamily", "PromptFamily", "Turn",
           "family_of_folder", "get_family"]

DEFAULT_FAMILY = "fara"


class PromptFamily(Protocol):
    """What the loop needs from a model family."""

    name: str
    max_images: int          # screenshots sent per step (the newest; older turns keep their text)
    resize: ResizeRule       # the family's image grid (smart_resize factor, min and max pixels)
    coordinates: Space       # the space the model answers in (MODEL or DISPLAY)

    def model_size(self, screenshot: Size, budget: int | None = None) -> Size:
        """The model image size for a screenshot (`budget` pixels; None: the family's own)."""
        ...

    def build(self, task: str, history: Sequence[Turn], current: Image.Image, model_size: Size,
              url: str | None = None, *, history_scale: float = 1.0,
              ) -> tuple[list[Message], list[Image.Image]]:
        """Messages and images for the next step."""
        ...

    def parse(self, text: str, model_size: Size) -> Parsed | ParseError:
        """The reply as an action whose coordinates are MODEL pixels (via `agent.actions.parse`)."""
        ...

    def feedback(self, error: ParseError) -> str:
        """The line sent back to the model after a reply the parser refused."""
        ...


FAMILIES: dict[str, Callable[[Mode], PromptFamily]] = {
    "fara": lambda _mode: FaraFamily.load(),  # one prompt for both modes
    "fara15": lambda mode: Fara15Family.load(mode=mode),
}

# model_type / family names found in model folders -> the family that prompts them.
_FAMILY_OF_TYPE = {"fara": "fara", "qwen2_5_vl": "fara", "fara15": "fara15", "qwen3_5": "fara15"}


def get_family(name: str = DEFAULT_FAMILY, *, mode: Mode | str = Mode.BROWSER) -> PromptFamily:
    """The prompt family by name, with its prompt variant for `mode`."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name](Mode(mode))


def family_of_folder(folder: Path) -> str:
    """The family of the model in `folder`; `DEFAULT_FAMILY` when nothing in it says.

    Read in this order: deskhand.json "family", config.json "model_type", genai_config.json
    "model.type", deskhand.json "model_type" (exports of either family may write "fara" there,
    so it is the weakest hint). Unreadable files are skipped: the backend reports them.
    """
    manifest = _json(folder / "deskhand.json")
    genai = _json(folder / "genai_config.json").get("model")
    hints = [manifest.get("family"), _json(folder / "config.json").get("model_type"),
             genai.get("type") if isinstance(genai, dict) else None, manifest.get("model_type")]
    for hint in hints:
        if isinstance(hint, str) and hint in _FAMILY_OF_TYPE:
            return _FAMILY_OF_TYPE[hint]
    return DEFAULT_FAMILY


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}
