"""One line of steps.jsonl: `StepRecord`, the on-disk view of a loop `Step`, and its one reader.

The recorder writes `StepRecord.from_step(step).to_json()`; every viewer (`deskhand runs`, the
HTML export, the app's History, the eval report, replay, the MCP server) reads `read_steps`, so
all of them see the same typed records. `from_json(to_json(r)) == r` (tests/agent/test_formats_steps.py).

A bad line follows the one rule of `agent.jsonl`: a line that is no step record (not JSON, not
an object, no step number) costs that line, a mistyped field that field, each with a note; a
torn last line is dropped silently.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.actions import Action, action_from_dict
from agent.geometry import Monitor, Point, Size, Space
from agent.jsonl import read_records
from agent.records import (
    MAX_NOTES,
    Check,
    checked,
    inside,
    is_count,
    is_monitor,
    is_number,
    is_pair,
    is_size,
    is_text,
    is_timings,
    shown,
)
from agent.step import Step

STEPS = "steps.jsonl"

# field: (check, what it should be, value used instead); absent fields keep their defaults.
_FIELDS: dict[str, Check] = {
    "thoughts": (is_text, "text", None),
    "model_text": (is_text, "text", None),
    "description": (is_text, "text", None),
    "error": (is_text, "text", None),
    "note": (is_text, "text", None),
    "url": (is_text, "text", None),
    "action": (lambda v: v is None or isinstance(v, dict), "an object", None),
    "timings": (is_timings, "seconds by phase", {}),
    "screenshot": (is_text, "a file name", None),
    "screenshot_point": (lambda v: v is None or is_pair(v), "a point", None),
    "screenshot_size": (lambda v: v is None or is_size(v), "a size", None),
    "model_size": (lambda v: v is None or is_size(v), "a size", None),
    "monitor": (lambda v: v is None or is_monitor(v), "a monitor", None),
    "replay": (lambda v: v is None or isinstance(v, dict), "an object", None),
    "time": (is_number, "a time in seconds", 0.0),
    "retry": (lambda v: isinstance(v, bool), "true or false", False),
    "prompt_tokens": (is_count, "a token count", 0),
    "generated_tokens": (is_count, "a token count", 0),
    "gate": (lambda v: v is None or isinstance(v, dict), "an object", None),
    "offline_attempts": (lambda v: isinstance(v, list) and all(isinstance(a, dict) for a in v),
                         "a list of objects", []),
}


@dataclass(frozen=True)
class GateRecord:
    """What the confirmation gate said about the step's action."""

    allowed: bool
    asked: bool = False
    reasons: tuple[str, ...] = ()
    decision: str | None = None


@dataclass(frozen=True)
class StepRecord:
    """One recorded step; `screenshot` is a file name as written, an absolute path once read."""

    index: int
    time: float = 0.0
    thoughts: str | None = None
    model_text: str | None = None
    action: Action | None = None
    description: str | None = None
    error: str | None = None
    retry: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    generated_tokens: int = 0
    screenshot: str | None = None
    url: str | None = None
    note: str | None = None
    gate: GateRecord | None = None
    model_size: Size | None = None
    screenshot_size: Size | None = None
    monitor: Monitor | None = None
    screenshot_point: tuple[float, float] | None = None
    replay: dict[str, Any] | None = None  # `ReplayCheck.to_dict()` of a replayed step
    offline_attempts: tuple[dict[str, Any], ...] = ()
    screenshot_note: str | None = None    # the reader's: why the screenshot is not shown

    @classmethod
    def from_step(cls, step: Step, *, now: float | None = None,
                  offline_attempts: tuple[dict[str, Any], ...] = ()) -> StepRecord:
        """The record of a loop `Step` (images are stored as files, not inline)."""
        m = step.mapping
        point = None
        if step.action is not None and step.action.target is not None:
            x, y = step.action.target
            p = m.convert(Point(x, y, Space.MODEL), Space.SCREENSHOT)
            point = (round(p.x, 1), round(p.y, 1))
        v = step.verdict
        return cls(
            index=step.index, time=time.time() if now is None else now, thoughts=step.thoughts,
            model_text=step.model_text, action=step.action, description=step.summary,
            error=step.error, retry=step.retry,
            timings={k: round(t, 4) for k, t in step.timings.items()},
            prompt_tokens=step.prompt_tokens, generated_tokens=step.generated_tokens,
            screenshot=step.screenshot_file, url=step.url, note=step.note,
            gate=None if v is None else GateRecord(
                v.allowed, v.asked, tuple(v.reasons), v.decision.value if v.decision else None),
            model_size=m.model, screenshot_size=m.screenshot,
            monitor=replace(m.monitor, name=""), screenshot_point=point,
            replay=step.replay.to_dict() if step.replay is not None else None,
            offline_attempts=tuple(offline_attempts))

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this step's line (what `from_json` reads back)."""
        mon = self.monitor
        out: dict[str, Any] = {
            "index": self.index, "time": self.time, "thoughts": self.thoughts,
            "model_text": self.model_text,
            "action": self.action.arguments() if self.action is not None else None,
            "description": self.description, "error": self.error, "retry": self.retry,
            "timings": dict(self.timings), "prompt_tokens": self.prompt_tokens,
            "generated_tokens": self.generated_tokens, "screenshot": self.screenshot,
            "url": self.url, "note": self.note,
            "gate": None if self.gate is None else {
                "allowed": self.gate.allowed, "asked": self.gate.asked,
                "reasons": list(self.gate.reasons), "decision": self.gate.decision},
            "model_size": _pair(self.model_size),
            "screenshot_size": _pair(self.screenshot_size),
            "monitor": None if mon is None else {
                "index": mon.index, "left": mon.left, "top": mon.top, "width": mon.width,
                "height": mon.height, "scale": mon.scale},
            "screenshot_point": list(self.screenshot_point) if self.screenshot_point else None,
        }
        if self.replay is not None:
            out["replay"] = self.replay
        out["offline_attempts"] = [dict(a) for a in self.offline_attempts]
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str = "step") -> tuple[StepRecord | None, list[str]]:
        """The record of one parsed line and a note per field ignored; None if it is no step."""
        if not isinstance(obj, dict):
            return None, [f"{where}: not a JSON object; skipped"]
        if not is_count(obj.get("index")):
            return None, [f"{where}: no step number (\"index\"); skipped"]
        obj = dict(obj)
        problems = checked(obj, _FIELDS, where)
        action = action_from_dict(obj["action"]) if obj["action"] is not None else None
        if obj["action"] is not None and action is None:
            problems.append(f"{where}: 'action' is not an action Deskhand knows; ignored")
        mon, point = obj["monitor"], obj["screenshot_point"]
        return cls(
            index=obj["index"], time=float(obj["time"]), thoughts=obj["thoughts"],
            model_text=obj["model_text"], action=action, description=obj["description"],
            error=obj["error"], retry=obj["retry"], timings=dict(obj["timings"]),
            prompt_tokens=obj["prompt_tokens"], generated_tokens=obj["generated_tokens"],
            screenshot=obj["screenshot"], url=obj["url"], note=obj["note"],
            gate=_gate(obj["gate"]),
            model_size=Size(*obj["model_size"]) if obj["model_size"] else None,
            screenshot_size=Size(*obj["screenshot_size"]) if obj["screenshot_size"] else None,
            monitor=None if mon is None else Monitor(
                mon["index"], mon["left"], mon["top"], mon["width"], mon["height"],
                float(mon.get("scale", 1.0))),
            screenshot_point=(float(point[0]), float(point[1])) if point else None,
            replay=obj["replay"], offline_attempts=tuple(obj["offline_attempts"])), problems


def _pair(size: Size | None) -> list[int] | None:
    return None if size is None else [size.width, size.height]


def _gate(value: dict[str, Any] | None) -> GateRecord | None:
    if value is None:
        return None
    reasons = value.get("reasons")
    decision = value.get("decision")
    return GateRecord(value.get("allowed") is True, value.get("asked") is True,
                      tuple(r for r in reasons if isinstance(r, str))
                      if isinstance(reasons, list) else (),
                      decision if isinstance(decision, str) else None)


def read_steps(folder: Path) -> tuple[list[StepRecord], list[str]]:
    """The steps of `folder`/steps.jsonl, checked, with `screenshot` made an absolute path.

    A line that is not a step is skipped with a note (the rule in this module's docstring); a
    screenshot outside the folder is dropped, with the reason in the step's `screenshot_note`.
    """
    file = folder / STEPS
    steps: list[StepRecord] = []
    problems: list[str] = []
    try:
        if file.is_symlink():
            raise OSError(0, "a symbolic link, not followed")
        records, problems = read_records(file, StepRecord.from_json, shown(file))
        steps = [_placed(folder, step) for step in records]
    except FileNotFoundError:
        pass
    except OSError as exc:
        problems.append(f"{shown(file)}: cannot be read ({exc.strerror or exc})")
    if len(problems) > MAX_NOTES:  # a file of a million bad lines gets a summary, not a flood
        more = len(problems) - MAX_NOTES
        problems[MAX_NOTES:] = [f"{shown(file)}: {more} more problems not listed"]
    return steps, problems


def _placed(folder: Path, step: StepRecord) -> StepRecord:
    """`step` with its screenshot resolved inside `folder`, or dropped with the reason."""
    name = step.screenshot
    if not name:
        return step
    path = inside(folder, name)
    if path is not None:
        return replace(step, screenshot=str(path))
    plain = not os.path.isabs(name) and ".." not in Path(name).parts  # nothing probed outside
    if plain and not os.path.lexists(folder / name):
        note = f"screenshot {shown(name)} is missing"
    else:
        note = f"screenshot {shown(name)} omitted: it is not a file inside the run folder"
    return replace(step, screenshot=None, screenshot_note=note)
