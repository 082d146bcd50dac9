"""The one parser from model text to typed actions (the types are in `agent.action_types`).

The parser is the single place where model output enters the system: everything after it works
with typed actions. It never raises; anything it cannot accept becomes a `ParseError`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from agent.action_types import (
    ALL_ACTIONS,
    CLICKS,
    FARA7B_ACTIONS,
    FARA15_ACTIONS,
    NO_INPUT,
    Action,
    AskUser,
    DoubleClick,
    Drag,
    HistoryBack,
    HScroll,
    KeyPress,
    LeftClick,
    MemorizeFact,
    MouseMove,
    ReadPage,
    RightClick,
    Scroll,
    Terminate,
    TripleClick,
    TypeText,
    VisitUrl,
    Wait,
    WebSearch,
    describe,
)
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

# Re-exported: the call format, and the action types (defined in agent.action_types).
__all__ = ["ALL_ACTIONS", "CLICKS", "FARA7B_ACTIONS", "FARA15_ACTIONS", "NO_INPUT", "TOOL_CALL_CLOSE",
           "TOOL_CALL_OPEN", "Action", "AskUser", "DoubleClick", "Drag", "HScroll", "HistoryBack",
           "KeyPress", "LeftClick", "MemorizeFact", "MouseMove", "ReadPage", "RightClick", "Scroll",
           "Terminate", "TripleClick", "TypeText", "VisitUrl", "Wait", "WebSearch", "describe",
           "split_thoughts"]

TOOL_NAME = "computer_use"


# Fara-7B's set: its prompt's enum and what its parser accepts (unchanged by Fara1.5's).
ACTION_TYPES: dict[str, type[Action]] = FARA7B_ACTIONS
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


def parse(text: str, model_size: Size | None = None, *, tools: Collection[str] = (TOOL_NAME,),
          actions: Mapping[str, type[Action]] = ACTION_TYPES) -> Parsed | ParseError:
    """Parse one model turn into thoughts and an action. Never raises.

    `tools` are the tool names the prompt declared; a call to any other name (or to none) is
    a model mistake, never run as one of ours. `actions` is the family's action set (Fara-7B's
    by default); an action outside it is a model mistake too.
    """
    try:
        return _parse(text if isinstance(text, str) else "", model_size, tools, actions)
    except Exception as exc:  # last line of defence: a model must never crash the app
        return ParseError(f"unreadable model output ({type(exc).__name__})", str(text))


def _parse(text: str, model_size: Size | None, tools: Collection[str],
           actions: Mapping[str, type[Action]]) -> Parsed | ParseError:
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
    result = build_action(arguments, model_size, actions=actions)
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


def build_action(arguments: Mapping[str, Any], model_size: Size | None = None, *,
                 actions: Mapping[str, type[Action]] = ACTION_TYPES) -> Action | str:
    """Validate tool-call arguments into an Action of `actions`, or return a short error message."""
    name = arguments.get("action")
    if not isinstance(name, str) or not name:
        return "the tool call names no action"
    name = ACTION_ALIASES.get(name.strip().lower(), name.strip().lower())
    cls = actions.get(name)
    if cls is None:
        return f"unknown action {name[:40]!r}"
    try:
        return _BUILDERS[cls](arguments, model_size)
    except _ArgumentError as exc:
        return f"{name}: {exc}"


class _ArgumentError(Exception):
    pass


def _coordinate(args: Mapping[str, Any], model_size: Size | None, *, required: bool,
                key: str = "coordinate"):
    value = args.get(key)
    if value is None:
        if required:
            raise _ArgumentError(f"missing {key}")
        return None
    if isinstance(value, str):
        nums = re.findall(r"-?\d+(?:\.\d+)?", value)
        value = [float(n) for n in nums]
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(_is_number(v) for v in value)):
        raise _ArgumentError(f"{key} must be [x, y] numbers")
    x, y = (math.floor(float(v) + 0.5) for v in value)
    if model_size is not None and not (0 <= x < model_size.width and 0 <= y < model_size.height):
        raise _ArgumentError(f"{key} ({x}, {y}) is outside the {model_size} image")
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


def _nonempty(args: Mapping[str, Any], key: str) -> str:
    value = _text(args, key)
    if not value.strip():
        raise _ArgumentError(f"{key} must not be empty")
    return value


def _drag(args: Mapping[str, Any], size: Size | None) -> Drag:
    start_key = "start_coordinate" if "start_coordinate" in args else "coordinate2"  # UNVERIFIED alias
    return Drag(_coordinate(args, size, required=True),
                _coordinate(args, size, required=False, key=start_key))


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
    DoubleClick: lambda a, s: DoubleClick(_coordinate(a, s, required=True)),
    TripleClick: lambda a, s: TripleClick(_coordinate(a, s, required=True)),
    RightClick: lambda a, s: RightClick(_coordinate(a, s, required=True)),
    Drag: _drag,
    HScroll: lambda a, s: HScroll(_number(a, "pixels"), _coordinate(a, s, required=False)),
    AskUser: lambda a, s: AskUser(_nonempty(a, "question")),
    ReadPage: lambda a, s: ReadPage(_nonempty(a, "question")),
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
    result = build_action(data, actions=ALL_ACTIONS)
    return result if isinstance(result, Action) else None
