"""Fara's action set as typed immutable classes, and the one parser from model text to actions.

The parser is the single place where model output enters the system: everything after it works
with typed actions. It never raises; anything it cannot accept becomes a `ParseError`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from agent.geometry import Size
from agent.keys import KeyNameError, resolve_chord
from agent.tool_call import (
    CLOSE,
    LEADING_FENCE,
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    after_open,
    load_object,
    split_thoughts,
)

__all__ = ["TOOL_CALL_CLOSE", "TOOL_CALL_OPEN", "split_thoughts"]  # re-exported: the call format

TOOL_NAME = "computer_use"


@dataclass(frozen=True)
class Action:
    """Base of all actions; `name` is the Fara action name."""

    name: ClassVar[str] = ""

    def arguments(self) -> dict[str, Any]:
        """The tool-call arguments that describe this action (inverse of parsing)."""
        args: dict[str, Any] = {"action": self.name}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            args[f.name] = list(value) if isinstance(value, tuple) else value
        return args

    @property
    def target(self) -> tuple[int, int] | None:
        """The model-space point this action acts on, if any."""
        return getattr(self, "coordinate", None)


@dataclass(frozen=True)
class LeftClick(Action):
    name: ClassVar[str] = "left_click"
    coordinate: tuple[int, int]


@dataclass(frozen=True)
class MouseMove(Action):
    name: ClassVar[str] = "mouse_move"
    coordinate: tuple[int, int]


@dataclass(frozen=True)
class TypeText(Action):
    name: ClassVar[str] = "type"
    text: str
    coordinate: tuple[int, int] | None = None
    press_enter: bool = True
    delete_existing_text: bool = False


@dataclass(frozen=True)
class KeyPress(Action):
    name: ClassVar[str] = "key"
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Scroll(Action):
    name: ClassVar[str] = "scroll"
    pixels: float
    coordinate: tuple[int, int] | None = None


@dataclass(frozen=True)
class VisitUrl(Action):
    name: ClassVar[str] = "visit_url"
    url: str


@dataclass(frozen=True)
class WebSearch(Action):
    name: ClassVar[str] = "web_search"
    query: str


@dataclass(frozen=True)
class HistoryBack(Action):
    name: ClassVar[str] = "history_back"


@dataclass(frozen=True)
class MemorizeFact(Action):
    name: ClassVar[str] = "pause_and_memorize_fact"
    fact: str


@dataclass(frozen=True)
class Wait(Action):
    name: ClassVar[str] = "wait"
    time: float = 1.0


@dataclass(frozen=True)
class Terminate(Action):
    name: ClassVar[str] = "terminate"
    status: Literal["success", "failure"] = "success"


ACTION_TYPES: dict[str, type[Action]] = {
    cls.name: cls
    for cls in (LeftClick, MouseMove, TypeText, KeyPress, Scroll, VisitUrl, WebSearch,
                HistoryBack, MemorizeFact, Wait, Terminate)
}
# Names other Qwen computer-use checkpoints emit for the same thing.
ACTION_ALIASES = {"click": "left_click", "type_text": "type", "keypress": "key", "goto": "visit_url",
                  "back": "history_back", "memorize": "pause_and_memorize_fact", "stop": "terminate"}


@dataclass(frozen=True)
class Parsed:
    """A model turn accepted by the parser."""

    thoughts: str
    action: Action
    raw: str


@dataclass(frozen=True)
class ParseError:
    """A model turn the parser could not accept; `message` is short and user-readable."""

    message: str
    raw: str
    thoughts: str = ""


def format_call(thoughts: str, action: Action) -> str:
    """Model-format text for an action: thoughts, then one tool call (what Fara emits)."""
    call = {"name": TOOL_NAME, "arguments": action.arguments()}
    return f"{thoughts}\n{TOOL_CALL_OPEN}\n{json.dumps(call, ensure_ascii=False)}\n{TOOL_CALL_CLOSE}"


# Where a bare (untagged) call may start: its object's first key is the tool name (linear time).
_BARE_START = re.compile(r"\{\s*[\"']name[\"']\s*:")


def parse(text: str, model_size: Size | None = None, *,
          tools: Collection[str] = (TOOL_NAME,)) -> Parsed | ParseError:
    """Parse one model turn into thoughts and an action. Never raises.

    `tools` are the tool names the prompt declared; a call to any other name (or to none) is
    a model mistake, never run as one of ours.
    """
    try:
        return _parse(text if isinstance(text, str) else "", model_size, tools)
    except Exception as exc:  # last line of defence: a model must never crash the app
        return ParseError(f"unreadable model output ({type(exc).__name__})", str(text))


def _parse(text: str, model_size: Size | None, tools: Collection[str]) -> Parsed | ParseError:
    if not text.strip():
        return ParseError("the model returned empty output", text)
    opened = after_open(text)
    if opened:
        thoughts, rest = opened
        closed = CLOSE.search(rest)
        # The object itself decides where the call ends (a typed text may contain the closing
        # tag); the tag only bounds a call whose braces don't match.
        body = rest
        fallback = rest[: closed.start()] if closed else None
        thoughts = _clean_thoughts(thoughts)
        call = load_object(body)
        if call is None and fallback is not None:
            call = load_object(fallback)
        if call is None:
            return ParseError("the tool call is not a JSON object", text, thoughts)
    else:
        # No tags (some servers strip special tokens): only an object that is a call of a
        # declared tool counts; any other JSON in the thoughts is just text.
        bare = _bare_call(text, tools)
        if bare is None:
            return ParseError("no <tool_call> in the model output", text, text.strip())
        thoughts, call = bare
    name = call.get("name")
    if not isinstance(name, str) or not name:
        return ParseError(f"the tool call names no tool; call {_tool_list(tools)}", text, thoughts)
    if name not in tools:
        return ParseError(f"unknown tool {name[:40]!r}; call {_tool_list(tools)}", text, thoughts)
    arguments = call.get("arguments", call.get("parameters"))
    if isinstance(arguments, str):
        arguments = load_object(arguments)
    if not isinstance(arguments, Mapping):
        return ParseError("the tool call has no arguments object", text, thoughts)
    result = build_action(arguments, model_size)
    if isinstance(result, str):
        return ParseError(result, text, thoughts)
    return Parsed(thoughts, result, text)


def _tool_list(tools: Collection[str]) -> str:
    return " or ".join(sorted(tools))[:60] or "no tool"


def _bare_call(text: str, tools: Collection[str]) -> tuple[str, dict[str, Any]] | None:
    """Thoughts and call of an untagged call: the first `{` or the first `{"name":`."""
    starts = {text.find("{")}
    keyed = _BARE_START.search(text)
    if keyed:
        starts.add(keyed.start())
    for start in sorted(s for s in starts if s >= 0):
        call = load_object(text[start:])
        if call is None:
            continue
        name, arguments = call.get("name"), call.get("arguments", call.get("parameters"))
        if isinstance(name, str) and name in tools and isinstance(arguments, Mapping | str):
            return _clean_thoughts(text[:start]), call
    return None


def _clean_thoughts(text: str) -> str:
    text = LEADING_FENCE.sub("", text)
    return text.strip()


def build_action(arguments: Mapping[str, Any], model_size: Size | None = None) -> Action | str:
    """Validate tool-call arguments into an Action, or return a short error message."""
    name = arguments.get("action")
    if not isinstance(name, str) or not name:
        return "the tool call names no action"
    name = ACTION_ALIASES.get(name.strip().lower(), name.strip().lower())
    cls = ACTION_TYPES.get(name)
    if cls is None:
        return f"unknown action {name[:40]!r}"
    try:
        return _BUILDERS[cls](arguments, model_size)
    except _ArgumentError as exc:
        return f"{name}: {exc}"


class _ArgumentError(Exception):
    pass


def _coordinate(args: Mapping[str, Any], model_size: Size | None, *, required: bool):
    value = args.get("coordinate")
    if value is None:
        if required:
            raise _ArgumentError("missing coordinate")
        return None
    if isinstance(value, str):
        nums = re.findall(r"-?\d+(?:\.\d+)?", value)
        value = [float(n) for n in nums]
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(_is_number(v) for v in value)):
        raise _ArgumentError("coordinate must be [x, y] numbers")
    x, y = (math.floor(float(v) + 0.5) for v in value)
    if model_size is not None and not (0 <= x < model_size.width and 0 <= y < model_size.height):
        raise _ArgumentError(f"coordinate ({x}, {y}) is outside the {model_size} image")
    return (x, y)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _text(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise _ArgumentError(f"{key} must be a string")
    return value


def _flag(args: Mapping[str, Any], key: str, default: bool) -> bool:
    value = args.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise _ArgumentError(f"{key} must be true or false")
    return value


def _number(args: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = args.get(key, default)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if not _is_number(value):
        raise _ArgumentError(f"{key} must be a number")
    return float(value)


def _keys(args: Mapping[str, Any], _size: Size | None) -> KeyPress:
    value = args.get("keys", args.get("key"))
    if isinstance(value, str):  # "ctrl + l"; str.split, as `\s*\+\s*` was quadratic on blanks
        value = [k.strip() for k in value.split("+") if k.strip()]
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(k, str) and k.strip() for k in value)):
        raise _ArgumentError("keys must be a non-empty list of key names")
    keys = tuple(k.strip() for k in value)
    try:  # keys.py is the one table of key names: one no key answers to is the model's mistake
        resolve_chord(keys)
    except KeyNameError as exc:
        raise _ArgumentError(str(exc)) from None
    return KeyPress(keys)


def _terminate(args: Mapping[str, Any], _size: Size | None) -> Terminate:
    status = args.get("status", "success")
    if not isinstance(status, str) or status.lower() not in ("success", "failure"):
        raise _ArgumentError("status must be 'success' or 'failure'")
    return Terminate(status.lower())  # type: ignore[arg-type]


def _wait(args: Mapping[str, Any], _size: Size | None) -> Wait:
    seconds = _number(args, "time", 1.0) if "time" in args else _number(args, "duration", 1.0)
    if seconds < 0:
        raise _ArgumentError("time must not be negative")
    return Wait(min(seconds, 60.0))


_BUILDERS = {
    LeftClick: lambda a, s: LeftClick(_coordinate(a, s, required=True)),
    MouseMove: lambda a, s: MouseMove(_coordinate(a, s, required=True)),
    TypeText: lambda a, s: TypeText(_text(a, "text"), _coordinate(a, s, required=False),
                                    _flag(a, "press_enter", True),
                                    _flag(a, "delete_existing_text", False)),
    KeyPress: _keys,
    Scroll: lambda a, s: Scroll(_number(a, "pixels"), _coordinate(a, s, required=False)),
    VisitUrl: lambda a, s: VisitUrl(_text(a, "url")),
    WebSearch: lambda a, s: WebSearch(_text(a, "query")),
    HistoryBack: lambda a, s: HistoryBack(),
    MemorizeFact: lambda a, s: MemorizeFact(_text(a, "fact")),
    Wait: _wait,
    Terminate: _terminate,
}


def action_from_dict(data: Mapping[str, Any]) -> Action | None:
    """Rebuild an action recorded with `Action.arguments()` (trajectories); None if invalid."""
    result = build_action(data)
    return result if isinstance(result, Action) else None


def describe(action: Action) -> str:
    """A short human-readable description of an action."""
    a = action
    if isinstance(a, LeftClick):
        return f"click at {a.coordinate}"
    if isinstance(a, MouseMove):
        return f"move mouse to {a.coordinate}"
    if isinstance(a, TypeText):
        where = f" at {a.coordinate}" if a.coordinate else ""
        enter = " + Enter" if a.press_enter else ""
        return f"type {a.text!r}{where}{enter}"
    if isinstance(a, KeyPress):
        return "press " + "+".join(a.keys)
    if isinstance(a, Scroll):
        return f"scroll {'up' if a.pixels > 0 else 'down'}"
    if isinstance(a, VisitUrl):
        return f"open {a.url}"
    if isinstance(a, WebSearch):
        return f"search for {a.query!r}"
    if isinstance(a, HistoryBack):
        return "go back"
    if isinstance(a, MemorizeFact):
        return f"remember {a.fact!r}"
    if isinstance(a, Wait):
        return f"wait {a.time:g} s"
    if isinstance(a, Terminate):
        return f"finish ({a.status})"
    return a.name
