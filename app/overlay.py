"""What to draw over a screenshot for an action, in screenshot pixels (Qt-free, so it is testable)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.actions import (
    Action,
    AskUser,
    DoubleClick,
    Drag,
    HScroll,
    KeyPress,
    LeftClick,
    MouseMove,
    ReadPage,
    RightClick,
    Scroll,
    Terminate,
    TripleClick,
    TypeText,
    describe,
)
from agent.geometry import Point, ScreenMapping, Space
from agent.step_record import StepRecord


@dataclass(frozen=True)
class Overlay:
    """One marker: `kind` is one of `KINDS`."""

    kind: str
    point: tuple[float, float] | None  # screenshot pixels, or None for a caption only
    label: str
    start: tuple[float, float] | None = None  # a drag's start, when the model named one


KINDS = ("click", "double_click", "triple_click", "right_click", "drag", "move", "scroll_up",
         "scroll_down", "scroll_left", "scroll_right", "type", "key", "question", "read", "note")
# Point markers that are a click of some kind (the kind names the button and count).
_CLICK_KINDS = {LeftClick: "click", DoubleClick: "double_click", TripleClick: "triple_click",
                RightClick: "right_click"}


def overlay_for(action: Action | None, mapping: ScreenMapping | None) -> Overlay | None:
    """The marker for an action on the screenshot it was predicted from."""
    if action is None:
        return None
    point = _on_screenshot(action.target, mapping)
    if type(action) in _CLICK_KINDS:
        return Overlay(_CLICK_KINDS[type(action)], point, describe(action))
    if isinstance(action, Drag):
        return Overlay("drag", point, describe(action), _on_screenshot(action.start_coordinate, mapping))
    if isinstance(action, MouseMove):
        return Overlay("move", point, describe(action))
    if isinstance(action, (Scroll, HScroll)):
        if point is None and mapping is not None:
            point = (mapping.screenshot.width / 2, mapping.screenshot.height / 2)
        way = (("scroll_right", "scroll_left") if isinstance(action, HScroll)
               else ("scroll_up", "scroll_down"))[0 if action.pixels > 0 else 1]
        return Overlay(way, point, describe(action))
    if isinstance(action, AskUser):
        return Overlay("question", None, action.question)
    if isinstance(action, ReadPage):
        return Overlay("read", None, action.question)
    if isinstance(action, TypeText):
        return Overlay("type", point, action.text)
    if isinstance(action, KeyPress):
        return Overlay("key", None, "+".join(action.keys))
    if isinstance(action, Terminate):
        return Overlay("note", None, describe(action))
    return Overlay("note", None, describe(action))


def _on_screenshot(target: tuple[int, int] | None,
                   mapping: ScreenMapping | None) -> tuple[float, float] | None:
    if target is None or mapping is None:
        return None
    p = mapping.convert(Point(target[0], target[1], Space.MODEL), Space.SCREENSHOT)
    return (p.x, p.y)


def overlay_for_record(step: StepRecord) -> Overlay | None:
    """The marker for a recorded step (a trajectory's step record)."""
    mapping = None
    if step.monitor and step.screenshot_size and step.model_size:
        mapping = ScreenMapping(step.monitor, step.screenshot_size, step.model_size)
    return overlay_for(step.action, mapping)
