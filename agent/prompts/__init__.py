"""Model families: how a family's model is prompted, and which family a model folder holds.

A family is one class implementing `PromptFamily` (wording as data in `assets/prompts/`); the
loop asks `get_family(backend.family, mode=..., system=backend.system_prompt)` for it, and
`agent.inference.factory` names the backend's family from its model folder (`family_of_folder`)
and reads what a folder may declare for itself: its system prompt (`declared_system_prompt`: a
small model trained with a shorter one, Deskhand Nano) and its image budget
(`declared_max_pixels`: the smart_resize limit of the folder's processor config) and a second
look before acting on a point (`declared_second_look`, agent.second_look).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from agent.actions import Parsed, ParseError
from agent.geometry import ResizeRule, Size, Space
from agent.inference.base import Message
from agent.inference.chat import neutralize_markers
from agent.options import Mode
from agent.prompts.fara import FaraFamily, Turn
from agent.prompts.fara15 import Fara15Family
from agent.records import is_count

__all__ = [
    "DEFAULT_FAMILY",
    "FAMILIES",
    "PROMPT_FILE",
    "Fara15Family",
    "FaraFamily",
    "FolderDeclared",
    "PromptFamily",
    "SecondLook",
    "Turn",
    "declared_max_pixels",
    "declared_second_look",
    "declared_system_prompt",
    "family_for",
    "family_of_folder",
    "get_family",
]

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


def get_family(name: str = DEFAULT_FAMILY, *, mode: Mode | str = Mode.BROWSER,
               system: str | None = None, max_pixels: int | None = None) -> PromptFamily:
    """The prompt family by name, with its prompt variant for `mode`; `system` replaces its
    system prompt (a model folder's declared one, `declared_system_prompt`) and `max_pixels`
    caps its model image (`declared_max_pixels`)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    family = FAMILIES[name](Mode(mode))
    if system is None and max_pixels is None:
        return family
    return FolderDeclared(family, system, max_pixels)


def family_for(backend: object, mode: Mode | str = Mode.BROWSER) -> PromptFamily:
    """The family `backend` is prompted with: its family, with what its folder declares."""
    return get_family(getattr(backend, "family", DEFAULT_FAMILY), mode=mode,
                      system=getattr(backend, "system_prompt", None),
                      max_pixels=getattr(backend, "max_pixels", None))


# A model folder's own prompt settings: {"system": "..."}; the exporter copies it along.
PROMPT_FILE = "deskhand_prompt.json"
MAX_SYSTEM_CHARS = 8000


class FolderDeclared:
    """A family as a model folder declares it: its own system message (when `system` is given)
    and at most `max_pixels` per model image (when given); all else is the family's.

    Everything the model reads after the system message (task, screenshots, history, URL lines)
    and everything read back (parse, coordinates, feedback) stays the family's, so a model
    trained this way is driven and checked by the same code as the full-size one."""

    def __init__(self, family: PromptFamily, system: str | None = None,
                 max_pixels: int | None = None) -> None:
        self._family, self.system, self.max_pixels = family, system, max_pixels

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found here; before __init__ ran (a copy being unpickled in
        # a worker process, app.nano.prefetch) there is no _family to ask yet.
        if name == "_family":
            raise AttributeError(name)
        return getattr(self._family, name)

    def model_size(self, screenshot: Size, budget: int | None = None) -> Size:
        """The family's size within `budget`, and never above the folder's limit: a small model
        trained on small images sees screens as it was trained to, whatever the user's budget."""
        size = self._family.model_size(screenshot, budget)
        if self.max_pixels is not None and size.pixels > self.max_pixels:
            size = self._family.model_size(screenshot, self.max_pixels)
        return size

    def build(self, task: str, history: Sequence[Turn], current: Image.Image, model_size: Size,
              url: str | None = None, *, history_scale: float = 1.0,
              ) -> tuple[list[Message], list[Image.Image]]:
        messages, images = self._family.build(task, history, current, model_size, url,
                                              history_scale=history_scale)
        if self.system is None:
            return messages, images
        if not messages or messages[0].get("role") != "system":
            raise ValueError(f"the {self._family.name} family's prompt has no system message")
        return [{"role": "system", "content": [{"type": "text", "text": self.system}]},
                *messages[1:]], images


def _prompt_file(folder: Path) -> tuple[Path, Any]:
    """PROMPT_FILE's path and parsed content (None when the folder has none); unreadable JSON
    is a ValueError naming the file."""
    path = folder / PROMPT_FILE
    if not path.is_file():
        return path, None
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path} is not readable JSON: {exc}") from exc


def declared_system_prompt(folder: Path) -> str | None:
    """The system prompt `folder` declares in PROMPT_FILE; None when it declares none.

    Raises ValueError naming the file when it is there but unusable: a model trained with a
    short prompt answers badly with the family's long one, so a broken file must not be skipped.
    """
    path, data = _prompt_file(folder)
    if data is None:
        return None
    system = data.get("system") if isinstance(data, dict) else None
    if not isinstance(system, str) or not system.strip() or len(system) > MAX_SYSTEM_CHARS:
        raise ValueError(f"{path}: \"system\" must be a non-empty text of at most "
                         f"{MAX_SYSTEM_CHARS} characters")
    # The system message is trusted text (its special tokens are read as tokens): a folder's
    # file must not spell chat structure (<|im_end|>, <|im_start|>, <|image_pad|>, ...), which
    # would end the system turn early, forge other turns or misalign the screenshots.
    if neutralize_markers(system, role="system") != system:
        raise ValueError(f"{path}: \"system\" spells a chat control token (<|...|>); "
                         "a declared prompt is plain text")
    return system


# A second look's region (agent.second_look): screenshot pixels per side, within these bounds;
# and how many regions it may look at (the centred one and up to eight shifted around it).
SECOND_LOOK_MIN, SECOND_LOOK_MAX = 64, 8192
SECOND_LOOK_REGIONS = 9


@dataclass(frozen=True)
class SecondLook:
    """What a model folder declares for its model's second look before acting on a point
    (agent.second_look): the region's size in screenshot pixels, and how many regions around
    the first point it looks at (1: the centred one; more: shifted ones too, whose answers
    vote)."""

    region: Size
    looks: int = 1

    def declared(self) -> list[int] | dict[str, Any]:
        """The PROMPT_FILE entry that declares this (what `declared_second_look` reads)."""
        size = [self.region.width, self.region.height]
        return size if self.looks == 1 else {"region": size, "looks": self.looks}


def declared_second_look(folder: Path) -> SecondLook | None:
    """The second look the folder's model takes before acting on a point (PROMPT_FILE's
    "second_look": [width, height] in screenshot pixels, or {"region": [width, height],
    "looks": n}); None when it declares none.

    Raises ValueError naming the file when the entry is there but unusable (like the system
    prompt: a declaration silently dropped would change what the model was measured doing)."""
    path, data = _prompt_file(folder)
    value = data.get("second_look") if isinstance(data, dict) else None
    if value is None:
        return None
    looks: Any = 1
    if isinstance(value, dict):
        if set(value) - {"region", "looks"}:
            raise ValueError(f"{path}: \"second_look\" has keys other than \"region\" and \"looks\"")
        value, looks = value.get("region"), value.get("looks", 1)
    if (not isinstance(value, list) or len(value) != 2
            or not all(is_count(v) and SECOND_LOOK_MIN <= v <= SECOND_LOOK_MAX for v in value)):
        raise ValueError(f"{path}: \"second_look\" must be [width, height] (or {{\"region\": "
                         f"[width, height], \"looks\": n}}), whole pixels from {SECOND_LOOK_MIN} "
                         f"to {SECOND_LOOK_MAX}")
    if not is_count(looks) or not 1 <= looks <= SECOND_LOOK_REGIONS:
        raise ValueError(f"{path}: \"second_look\" \"looks\" must be a whole number from 1 to "
                         f"{SECOND_LOOK_REGIONS}")
    return SecondLook(Size(value[0], value[1]), looks)


def declared_max_pixels(folder: Path) -> int | None:
    """The image pixel limit the folder's processor config declares (smart_resize's max_pixels:
    processor_config.json of an export, else preprocessor_config.json of a checkpoint); None
    when neither says. Unreadable files are skipped here: the backend reports them."""
    processor = _json(folder / "processor_config.json").get("processor")
    transforms = processor.get("transforms") if isinstance(processor, dict) else None
    values: list[Any] = []
    for t in transforms if isinstance(transforms, list) else []:
        op = t.get("operation") if isinstance(t, dict) else None
        if isinstance(op, dict) and op.get("type") == "Resize" and isinstance(op.get("attrs"), dict):
            values.append(op["attrs"].get("max_pixels"))
    pre = _json(folder / "preprocessor_config.json")
    size = pre.get("size")
    values += [pre.get("max_pixels"), size.get("longest_edge") if isinstance(size, dict) else None]
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


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
