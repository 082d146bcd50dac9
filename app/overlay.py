"""What to draw over a screenshot for an action, in screenshot pixels (Qt-free, so it is testable)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.actions import (
    Action,
    KeyPress,
    LeftClick,
    MouseMove,
    Scroll,
    Terminate,
    TypeText,
    describe,
)
from agent.geometry import Point, ScreenMapping, Space
from agent.step_record import StepRecord


@dataclass(frozen=True)
class Overlay:
    """One marker: `kind` is click | move | scroll_up | scroll_down | type | key | note."""

    kind: str
    point: tuple[float, float] | None  # screenshot pixels, or None for a caption only
    label: str


def overlay_for(action: Action | None, mapping: ScreenMapping | None) -> Overlay | None:
    """The marker for an action on the screenshot it was predicted from."""
    if action is None:
        return None
    point = None
    target = action.target
    if target is not None and mapping is not None:
        p = mapping.convert(Point(target[0], target[1], Space.MODEL), Space.SCREENSHOT)
        point = (p.x, p.y)
    if isinstance(action, LeftClick):
        return Overlay("click", point, describe(action))
    if isinstance(action, MouseMove):
        return Overlay("move", point, describe(action))
    if isinstance(action, Scroll):
        if point is None and mapping is not None:
            point = (mapping.screenshot.width / 2, mapping.screenshot.height / 2)
        return Overlay("scroll_up" if action.pixels > 0 else "scroll_down", point, describe(action))
    if isinstance(action, TypeText):
        return Overlay("type", point, action.text)
    if isinstance(action, KeyPress):
        return Overlay("key", None, "+".join(action.keys))
    if isinstance(action, Terminate):
        return Overlay("note", None, describe(action))
    return Overlay("note", None, describe(action))


def overlay_for_record(step: StepRecord) -> Overlay | None:
    """The marker for a recorded step (a trajectory's step record)."""
    mapping = None
    if step.monitor and step.screenshot_size and step.model_size:
        mapping = ScreenMapping(step.monitor, step.screenshot_size, step.model_size)
    return overlay_for(step.action, mapping)
