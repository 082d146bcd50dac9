"""A second look before acting on a point: the model is shown the part of the screen around its
first point, nearer its real size, and answers again; its point there replaces the first.

Why: a small model sees a whole screen shrunk (Deskhand Nano: 1280x800 at 512x320, where a
22-pixel button is 9 model pixels tall, under one 32-pixel image token), so its first point is
usually near the target and often a few pixels off it. Cut from the full-resolution screenshot,
a 640x400 region is shown at 0.8 of its size, the scale Nano's training shows most windows at
(app.nano.desktop's near rungs), where the same weights are precise. Measured in the README
("Deskhand Nano"). A model folder declares the region (agent.prompts.declared_second_look);
a model whose folder declares none is asked once, as before. It costs one more model call per
click, without history (a first step's prompt: what the model was trained to answer).

The second reply only moves the point: the action, its text and options stay the first reply's,
so the second look cannot turn a click into something else. A second reply that is not the same
kind of action with a point, that fails, or that is cancelled leaves the first point in place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from agent.action_types import (
    Action,
    DoubleClick,
    LeftClick,
    MouseMove,
    RightClick,
    TripleClick,
    TypeText,
)
from agent.actions import Parsed
from agent.geometry import Point, ScreenMapping, Size, Space
from agent.inference.base import Backend, BackendError, Cancel
from agent.prompts import PromptFamily

# Actions whose point picks their target. Scrolls and drags are left alone: a scroll's point
# only says which pane, and a drag's two points would need two looks.
LOOKED = (LeftClick, DoubleClick, TripleClick, RightClick, MouseMove, TypeText)


@dataclass(frozen=True)
class Look:
    """The action to perform and what the step record says about the second look."""

    action: Action
    note: str | None = None  # None: no second look was taken


def region_around(mapping: ScreenMapping, point: tuple[int, int], size: Size) -> tuple[int, int, Size]:
    """The screenshot region of `size` (shrunk to fit the screenshot) centred on the MODEL
    `point` as far as the screenshot's edges allow: (left, top, size) in screenshot pixels."""
    shot = mapping.screenshot
    width, height = min(size.width, shot.width), min(size.height, shot.height)
    x, y = mapping.screenshot_pixel(*point)
    left = min(max(0, x - width // 2), shot.width - width)
    top = min(max(0, y - height // 2), shot.height - height)
    return left, top, Size(width, height)


def look_again(backend: Backend, family: PromptFamily, task: str, screenshot: Image.Image,
               mapping: ScreenMapping, action: Action, region: Size | None, *,
               max_new_tokens: int, cancel: Cancel | None = None) -> Look:
    """`action` with its point chosen again on the region around it (see the module's doc).

    `family` is the loop's prompt family for `backend`; `screenshot` is the captured image
    `mapping` describes; `region` the folder's declared size (None: no second look)."""
    point = getattr(action, "coordinate", None)
    if region is None or not isinstance(action, LOOKED) or point is None:
        return Look(action)
    shot = mapping.screenshot
    if region.width >= shot.width and region.height >= shot.height:
        return Look(action)  # the region would be the whole screen: nothing nearer to see
    left, top, size = region_around(mapping, point, region)
    model = family.model_size(size)
    image = screenshot.crop((left, top, left + size.width, top + size.height)).resize(
        (model.width, model.height), Image.Resampling.BICUBIC)
    part = mapping.region(left, top, size, model)
    where = (f"a second look at the {size.width}x{size.height} pixels around "
             f"{mapping.screenshot_pixel(*point)}")
    messages, images = family.build(task, [], image, model)
    try:
        reply = backend.generate(messages, images, max_new_tokens=max_new_tokens, cancel=cancel)
    except BackendError as exc:
        return Look(action, f"{where} failed ({exc}); kept the first point")
    if reply.finish_reason == "cancelled":
        return Look(action, f"{where} was cancelled; kept the first point")
    parsed = family.parse(reply.text, model)
    second = parsed.action if isinstance(parsed, Parsed) else None
    if type(second) is not type(action) or getattr(second, "coordinate", None) is None:
        answered = second.name if second is not None else "no usable action"
        return Look(action, f"{where} answered {answered}; kept the first point")
    physical = part.convert(Point(*second.coordinate, Space.MODEL), Space.PHYSICAL)
    moved = mapping.convert(physical, Space.MODEL)
    x = min(max(round(moved.x), 0), mapping.model.width - 1)
    y = min(max(round(moved.y), 0), mapping.model.height - 1)
    new = replace(action, coordinate=(x, y))  # type: ignore[call-arg]
    return Look(new, f"{where} moved the point to {mapping.screenshot_pixel(x, y)}")
