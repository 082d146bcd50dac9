"""Named coordinate spaces and the only functions that convert between them.

Spaces:
- MODEL: pixels of the resized image the model was shown (what the model's coordinates mean).
- SCREENSHOT: pixels of the captured image of one monitor.
- PHYSICAL: physical pixels of the whole virtual desktop (monitor origin added; may be negative).
- LOGICAL: the points the OS input API wants (physical divided by the monitor's scale).
- DISPLAY: a square space of `DisplaySpace.size` units stretched over the model image, whatever
  its shape (Fara1.5 answers in it; Fara-7B answers in MODEL pixels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

PATCH_SIZE = 14
MERGE_SIZE = 2
FACTOR = PATCH_SIZE * MERGE_SIZE  # 28: both image sides are multiples of this
MIN_PIXELS = 3136
MAX_PIXELS = 12845056
# Fara was trained on a 1440x900 viewport, i.e. a 1428x896 model image; keep other screens
# near that pixel budget so visual token counts (and accuracy) stay where the model expects.
DEFAULT_MODEL_PIXELS = 1428 * 896


class Space(Enum):
    MODEL = "model"
    SCREENSHOT = "screenshot"
    PHYSICAL = "physical"
    LOGICAL = "logical"
    DISPLAY = "display"


@dataclass(frozen=True)
class Size:
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    space: Space

    def rounded(self) -> tuple[int, int]:
        return (math.floor(self.x + 0.5), math.floor(self.y + 0.5))


@dataclass(frozen=True)
class Monitor:
    """One monitor: its rectangle in physical desktop pixels and its OS scale factor."""

    index: int
    left: int
    top: int
    width: int
    height: int
    scale: float = 1.0
    name: str = ""

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)

    def contains_physical(self, x: float, y: float) -> bool:
        return self.left <= x < self.left + self.width and self.top <= y < self.top + self.height


def _round_by_factor(value: float, factor: int) -> int:
    # Python's round() is banker's rounding, like the reference implementation.
    return round(value / factor) * factor


def smart_resize(
    height: int,
    width: int,
    factor: int = FACTOR,
    min_pixels: int = MIN_PIXELS,
    max_pixels: int = MAX_PIXELS,
) -> tuple[int, int]:
    """Qwen2.5-VL's resize rule: sides multiple of `factor`, pixels in range, aspect kept.

    Returns (height, width) like the reference implementation.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be below 200, got {width}x{height}")
    h_bar = max(factor, _round_by_factor(height, factor))
    w_bar = max(factor, _round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class ResizeRule:
    """A model family's image grid: sides multiples of `factor`, pixels within [min, max]."""

    factor: int = FACTOR
    min_pixels: int = MIN_PIXELS
    max_pixels: int = MAX_PIXELS

    def model_size(self, screenshot: Size, budget: int) -> Size:
        """The model image size for `screenshot` within `budget` pixels (and the rule's range)."""
        top = max(min(budget, self.max_pixels), self.min_pixels)
        h, w = smart_resize(screenshot.height, screenshot.width, factor=self.factor,
                            min_pixels=self.min_pixels, max_pixels=top)
        return Size(w, h)


# Qwen2.5-VL (Fara-7B): patch 14 x merge 2.
QWEN25_RESIZE = ResizeRule()


def box_around(centre: tuple[float, float], size: Size, within: Size) -> tuple[int, int, Size]:
    """The box of `size` (shrunk to fit `within`) centred on `centre` as far as `within`'s edges
    allow: (left, top, size), in the pixels of `within`. The second look's regions
    (agent.second_look) and the training crops that imitate them (app.nano.desktop) are cut
    with it, so both are placed alike."""
    width, height = min(size.width, within.width), min(size.height, within.height)
    left = min(max(0, math.floor(centre[0] - width / 2 + 0.5)), within.width - width)
    top = min(max(0, math.floor(centre[1] - height / 2 + 0.5)), within.height - height)
    return left, top, Size(width, height)


def model_size_for(screenshot: Size, max_pixels: int = DEFAULT_MODEL_PIXELS) -> Size:
    """The Fara-7B model image size for a screenshot, within the given pixel budget."""
    return QWEN25_RESIZE.model_size(screenshot, max_pixels)


@dataclass(frozen=True)
class DisplaySpace:
    """DISPLAY space: `size` x `size` units stretched over the model image (both axes).

    The one conversion between DISPLAY and MODEL; scroll amounts given in display units scale
    by the same factor as the axis they move along.
    """

    size: int

    def to_model(self, x: float, y: float, model: Size) -> tuple[float, float]:
        return x * model.width / self.size, y * model.height / self.size

    def from_model(self, x: float, y: float, model: Size) -> tuple[float, float]:
        return x * self.size / model.width, y * self.size / model.height

    def scroll_to_model(self, pixels: float, model: Size, *, horizontal: bool = False) -> float:
        """Scroll `pixels` in display units as model pixels (height for vertical, width for hscroll)."""
        return pixels * (model.width if horizontal else model.height) / self.size

    def scroll_from_model(self, pixels: float, model: Size, *, horizontal: bool = False) -> float:
        """The inverse of `scroll_to_model`: model pixels as display units."""
        return pixels * self.size / (model.width if horizontal else model.height)

    def bounds(self) -> Size:
        """The space as a size, for range checks on coordinates."""
        return Size(self.size, self.size)


@dataclass(frozen=True)
class ScreenMapping:
    """How one step's model image relates to its screenshot and monitor."""

    monitor: Monitor
    screenshot: Size
    model: Size
    display: DisplaySpace | None = None  # needed only to convert DISPLAY points

    def convert(self, point: Point, to: Space) -> Point:
        """Convert a point between any two named spaces (through PHYSICAL)."""
        if point.space == to:
            return point
        px, py = self._to_physical(point)
        return self._from_physical(px, py, to)

    def _to_physical(self, p: Point) -> tuple[float, float]:
        m = self.monitor
        if p.space is Space.PHYSICAL:
            return p.x, p.y
        if p.space is Space.LOGICAL:
            return m.left + (p.x - m.left / m.scale) * m.scale, m.top + (p.y - m.top / m.scale) * m.scale
        if p.space is Space.DISPLAY:
            p = Point(*self._display().to_model(p.x, p.y, self.model), Space.MODEL)
        if p.space is Space.MODEL:
            sx = p.x * self.screenshot.width / self.model.width
            sy = p.y * self.screenshot.height / self.model.height
        else:
            sx, sy = p.x, p.y
        return (
            m.left + sx * m.width / self.screenshot.width,
            m.top + sy * m.height / self.screenshot.height,
        )

    def _from_physical(self, px: float, py: float, to: Space) -> Point:
        m = self.monitor
        if to is Space.PHYSICAL:
            return Point(px, py, to)
        if to is Space.LOGICAL:
            # Per-monitor scale: the monitor's logical origin is its physical origin / scale.
            return Point(m.left / m.scale + (px - m.left) / m.scale,
                         m.top / m.scale + (py - m.top) / m.scale, to)
        sx = (px - m.left) * self.screenshot.width / m.width
        sy = (py - m.top) * self.screenshot.height / m.height
        if to is Space.SCREENSHOT:
            return Point(sx, sy, to)
        mx = sx * self.model.width / self.screenshot.width
        my = sy * self.model.height / self.screenshot.height
        if to is Space.DISPLAY:
            return Point(*self._display().from_model(mx, my, self.model), to)
        return Point(mx, my, to)

    def _display(self) -> DisplaySpace:
        if self.display is None:
            raise ValueError("this mapping has no DISPLAY space (the family answers in MODEL pixels)")
        return self.display

    def screenshot_pixel(self, x: float, y: float) -> tuple[int, int]:
        """The screenshot pixel under a MODEL point, clamped onto the screenshot."""
        sx, sy = self.convert(Point(x, y, Space.MODEL), Space.SCREENSHOT).rounded()
        return min(max(sx, 0), self.screenshot.width - 1), min(max(sy, 0), self.screenshot.height - 1)

    def region(self, left: int, top: int, size: Size, model: Size) -> ScreenMapping:
        """The mapping of a part of this screenshot (`size` pixels at `left`, `top`) shown to the
        model on its own at `model` size: its MODEL points convert to this monitor's PHYSICAL
        and LOGICAL points like any step's (agent.second_look).

        The part is a monitor of its own, covering the same physical pixels; where the
        screenshot is not 1:1 with the monitor its edges are rounded to whole pixels."""
        m = self.monitor
        kx, ky = m.width / self.screenshot.width, m.height / self.screenshot.height
        x0, y0 = round(m.left + left * kx), round(m.top + top * ky)
        part = Monitor(m.index, x0, y0, round(m.left + (left + size.width) * kx) - x0,
                       round(m.top + (top + size.height) * ky) - y0, m.scale)
        return ScreenMapping(part, size, model, self.display)

    def model_to_input(self, x: float, y: float, *, logical: bool) -> tuple[int, int]:
        """The integer point an input API should receive for a model coordinate.

        Clamped onto the monitor so that a click at the model image's edge never lands on
        a neighbouring monitor.
        """
        phys = self.convert(Point(x, y, Space.MODEL), Space.PHYSICAL)
        m = self.monitor
        px = min(max(phys.x, m.left), m.left + m.width - 1)
        py = min(max(phys.y, m.top), m.top + m.height - 1)
        if not logical:
            return math.floor(px), math.floor(py)
        lp = self._from_physical(px, py, Space.LOGICAL)
        return math.floor(lp.x), math.floor(lp.y)
