"""A second look before acting on a point: the model is shown the part of the screen around its
first point, nearer its real size, and answers again; its point there replaces the first.

Why: a small model sees a whole screen shrunk (Deskhand Nano: 1280x800 at 512x320, where a
22-pixel button is 9 model pixels tall, under one 32-pixel image token), so its first point is
usually near the target and often a few pixels off it. Cut from the full-resolution screenshot,
a 640x400 region is shown at 0.8 of its size, the scale Nano's training shows most windows at
(app.nano.desktop's near rungs), where the same weights are precise. Measured in the README
("Deskhand Nano"). A model folder declares the region (agent.prompts.declared_second_look);
a model whose folder declares none is asked once, as before. Each region looked at is one more
model call, without history (a first step's prompt: what the model was trained to answer).

A folder may declare several looks: the region centred on the first point and regions shifted
around it by a quarter of their size (left, right, up, down, then the diagonals). A small
model's answer depends on where the target sits in what it is shown, and its misses scatter
while its hits agree, so the point clicked is the answer nearest all the others (the medoid;
ties go to the earlier region, so with two answers the centred region's wins). Regions that
the screen's edges make identical are looked at once.

The second reply only moves the point: the action, its text and options stay the first reply's,
so the second look cannot turn a click into something else. A reply that is not the same kind of
action with a point has no vote; a failing model ends the looks (it would fail again); when no
look answers a point, the first point stays in place; a stop ends the looks and the step.
"""

from __future__ import annotations

import math
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
from agent.geometry import Point, ScreenMapping, Size, Space, box_around
from agent.inference.base import Backend, BackendError, Cancel
from agent.prompts import PromptFamily, SecondLook

# Actions whose point picks their target. Scrolls and drags are left alone: a scroll's point
# only says which pane, and a drag's two points would need two looks.
LOOKED = (LeftClick, DoubleClick, TripleClick, RightClick, MouseMove, TypeText)
# Where the looks' regions are centred, in fractions of the region from the first point: the
# centred one first, so one look is the centred region. SPREAD measured in the README.
SPREAD = 0.25
PATTERN = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1))


@dataclass(frozen=True)
class Look:
    """The action to perform and what the step record says about the second look."""

    action: Action
    note: str | None = None  # None: no second look was taken


def region_around(mapping: ScreenMapping, point: tuple[int, int], size: Size,
                  shift: tuple[int, int] = (0, 0)) -> tuple[int, int, Size]:
    """The screenshot region of `size` (shrunk to fit the screenshot) centred on the MODEL
    `point` moved by `shift` screenshot pixels, as far as the screenshot's edges allow:
    (left, top, size) in screenshot pixels."""
    x, y = mapping.screenshot_pixel(*point)
    return box_around((x + shift[0], y + shift[1]), size, mapping.screenshot)


def shifts(looks: int, size: Size) -> list[tuple[int, int]]:
    """Where the first `looks` regions of `size` are centred, in screenshot pixels from the
    first point."""
    dx, dy = round(size.width * SPREAD), round(size.height * SPREAD)
    return [(sx * dx, sy * dy) for sx, sy in PATTERN[:looks]]


def regions_around(mapping: ScreenMapping, point: tuple[int, int],
                   look: SecondLook) -> list[tuple[int, int, Size]]:
    """The distinct regions the declared look shows around the MODEL `point`, centred first
    (near the screen's edges several shifted regions are the same one, looked at once)."""
    shot = mapping.screenshot
    size = Size(min(look.region.width, shot.width), min(look.region.height, shot.height))
    regions: list[tuple[int, int, Size]] = []
    for shift in shifts(look.looks, size):
        region = region_around(mapping, point, size, shift)
        if region not in regions:
            regions.append(region)
    return regions


def wants_look(action: Action) -> bool:
    """Whether a second look could move `action`: one of LOOKED, with a point."""
    return isinstance(action, LOOKED) and getattr(action, "coordinate", None) is not None


def look_again(backend: Backend, family: PromptFamily, task: str, screenshot: Image.Image,
               mapping: ScreenMapping, action: Action, look: SecondLook | None, *,
               max_new_tokens: int, cancel: Cancel | None = None) -> Look:
    """`action` with its point chosen again on the regions around it (see the module's doc).

    `family` is the loop's prompt family for `backend`; `screenshot` is the captured image
    `mapping` describes; `look` the folder's declaration (None: no second look)."""
    if look is None or not wants_look(action):
        return Look(action)
    point = action.coordinate  # type: ignore[attr-defined]
    shot = mapping.screenshot
    if look.region.width >= shot.width and look.region.height >= shot.height:
        return Look(action)  # the region would be the whole screen: nothing nearer to see
    regions = regions_around(mapping, point, look)
    size = regions[0][2]
    where = (f"a second look at the {size.width}x{size.height} pixels around "
             f"{mapping.screenshot_pixel(*point)}"
             + (f" ({len(regions)} regions)" if len(regions) > 1 else ""))
    answers: list[Point] = []  # PHYSICAL pixels
    missed: list[str] = []
    for left, top, part in regions:
        try:
            answer = _look(backend, family, task, screenshot, mapping, action, left, top, part,
                           max_new_tokens, cancel)
        except BackendError as exc:
            missed.append(f"failed ({exc})")
            break  # a model that failed once fails again: no more calls for this click
        if answer is None:
            return Look(action, f"{where} was cancelled; kept the first point")
        if isinstance(answer, str):
            missed.append(answer)
        else:
            answers.append(answer)
    if not answers:
        return Look(action, f"{where} {'; '.join(dict.fromkeys(missed))}; kept the first point")
    chosen = _medoid(answers)
    mx, my = mapping.convert(chosen, Space.MODEL).rounded()  # geometry's rounding, half up
    x = min(max(mx, 0), mapping.model.width - 1)
    y = min(max(my, 0), mapping.model.height - 1)
    new = replace(action, coordinate=(x, y))  # type: ignore[call-arg]
    voted = (f" ({len(answers)} of {len(regions)} regions answered a point; the one nearest "
             "the others)" if len(regions) > 1 else "")
    return Look(new, f"{where} moved the point to {mapping.screenshot_pixel(x, y)}{voted}")


def _medoid(points: list[Point]) -> Point:
    """The point nearest all the others (summed distance); ties (to a micropixel, so float
    sums in symmetric layouts do not decide) go to the earlier one."""
    def spread(i: int) -> tuple[float, int]:
        p = points[i]
        return round(sum(math.dist((p.x, p.y), (q.x, q.y)) for q in points), 6), i

    return points[min(range(len(points)), key=spread)]


def _look(backend: Backend, family: PromptFamily, task: str, screenshot: Image.Image,
          mapping: ScreenMapping, action: Action, left: int, top: int, size: Size,
          max_new_tokens: int, cancel: Cancel | None) -> Point | str | None:
    """One region's answer: its point (PHYSICAL), why it has none (text), or None if cancelled.
    Raises BackendError when the model fails."""
    model = family.model_size(size)
    image = screenshot.crop((left, top, left + size.width, top + size.height)).resize(
        (model.width, model.height), Image.Resampling.BICUBIC)
    messages, images = family.build(task, [], image, model)
    reply = backend.generate(messages, images, max_new_tokens=max_new_tokens, cancel=cancel)
    if reply.finish_reason == "cancelled" or (cancel is not None and cancel.is_set()):
        return None
    parsed = family.parse(reply.text, model)
    second = parsed.action if isinstance(parsed, Parsed) else None
    if type(second) is not type(action) or getattr(second, "coordinate", None) is None:
        return f"answered {second.name if second is not None else 'no usable action'}"
    part = mapping.region(left, top, size, model)
    return part.convert(Point(*second.coordinate, Space.MODEL), Space.PHYSICAL)
