"""A small fake application for replay tests: pages of labelled widgets drawn with PIL.

Clicks and typing change the page like a real app would; `offset`, `renamed` and `duplicate`
change the layout between recording and replay. Used with the real loop, gate and recorder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from agent.actions import Action, LeftClick, Terminate, TypeText, format_call
from agent.geometry import Monitor, ScreenMapping
from agent.screen import Screenshot
from agent.screen_label import TargetLabel

W, H = 1280, 800
FONT = ImageFont.load_default(size=22)


@dataclass(frozen=True)
class Widget:
    name: str
    label: str
    x: int
    y: int
    w: int = 260
    h: int = 48
    colour: tuple[int, int, int] = (210, 225, 250)


PAGES: dict[str, list[Widget]] = {
    "home": [Widget("title", "Hotel finder", 80, 40, 400, 60, (250, 250, 250)),
             Widget("search", "Search hotels...", 80, 160, 420, 48, (255, 255, 255)),
             Widget("help", "Help and support", 900, 40, 260, 48)],
    "results": [Widget("title", "Results", 80, 40, 400, 60, (250, 250, 250)),
                Widget("oslo", "Oslo Grand Hotel", 80, 200, 320, 56),
                Widget("bergen", "Bergen Harbour Inn", 80, 300, 320, 56),
                Widget("help", "Help and support", 900, 40, 260, 48)],
    "hotel": [Widget("title", "Oslo Grand Hotel", 80, 40, 400, 60, (250, 250, 250)),
              Widget("order", "Place order", 80, 400, 220, 56, (250, 200, 120)),
              Widget("back", "Back to results", 400, 400, 240, 56),
              Widget("save", "Save for later", 700, 400, 240, 56)],  # clicking it stays here
    "done": [Widget("title", "Order placed", 80, 40, 400, 60, (250, 250, 250))],
}
NEXT = {("home", "search"): "results", ("results", "oslo"): "hotel",
        ("results", "bergen"): "hotel", ("hotel", "order"): "done", ("hotel", "back"): "results"}


@dataclass
class FakeApp:
    page: str = "home"
    offset: tuple[int, int] = (0, 0)
    renamed: dict[str, str] = field(default_factory=dict)  # widget name -> new label
    duplicate: str | None = None  # a widget drawn a second time, lower down
    clicks: list[str] = field(default_factory=list)
    typed: list[str] = field(default_factory=list)

    def widgets(self) -> list[Widget]:
        dx, dy = self.offset
        out = [Widget(w.name, self.renamed.get(w.name, w.label), w.x + dx, w.y + dy, w.w, w.h,
                      w.colour) for w in PAGES[self.page]]
        if self.duplicate:
            out += [Widget(w.name, w.label, w.x, w.y + 250, w.w, w.h, w.colour)
                    for w in out if w.name == self.duplicate]
        return out

    def image(self) -> Image.Image:
        img = Image.new("RGB", (W, H), (236, 238, 242))
        draw = ImageDraw.Draw(img)
        if self.offset[1] > 0:
            draw.rectangle((0, 0, W, self.offset[1] - 1), fill=(255, 240, 190))
            draw.text((20, 8), "Notice: maintenance tonight", fill=(80, 60, 0), font=FONT)
        for w in self.widgets():
            draw.rectangle((w.x, w.y, w.x + w.w, w.y + w.h), fill=w.colour, outline=(90, 90, 110),
                           width=2)
            draw.text((w.x + 12, w.y + w.h // 2 - 12), w.label, fill=(20, 20, 30), font=FONT)
        return img

    def at(self, x: float, y: float) -> Widget | None:
        return next((w for w in self.widgets() if w.x <= x <= w.x + w.w and w.y <= y <= w.y + w.h),
                    None)

    def centre(self, name: str) -> tuple[int, int]:
        w = next(w for w in self.widgets() if w.name == name)
        return w.x + w.w // 2, w.y + w.h // 2

    def click(self, x: float, y: float) -> None:
        w = self.at(x, y)
        self.clicks.append(w.name if w else "nothing")
        if w is not None and (self.page, w.name) in NEXT and w.name != "search":
            self.page = NEXT[(self.page, w.name)]


class AppScreen:
    def __init__(self, app: FakeApp) -> None:
        self.app = app

    def capture(self, index: int = 1) -> Screenshot:
        return Screenshot(self.app.image(), self.monitor_)

    def wait_settled(self, index: int = 1, **_kw) -> Screenshot:
        return self.capture(index)

    def monitor(self, index: int = 1) -> Monitor:
        return self.monitor_

    @property
    def monitor_(self) -> Monitor:
        return Monitor(1, 0, 0, W, H)


class AppExecutor:
    def __init__(self, app: FakeApp) -> None:
        self.app = app
        self.performed: list[Action] = []

    def perform(self, action: Action, mapping: ScreenMapping) -> str | None:
        self.performed.append(action)
        if action.target is not None:
            self.app.click(*mapping.model_to_input(*action.target, logical=False))
        if isinstance(action, TypeText):
            self.app.typed.append(action.text)
            if action.press_enter and self.app.page == "home":
                self.app.page = "results"
        return None


class AppReader:
    """The gate's screen-label reader: what the app shows at a point (like accessibility)."""

    def __init__(self, app: FakeApp) -> None:
        self.app = app

    def read(self, image: Image.Image, x: int, y: int) -> TargetLabel:
        w = self.app.at(x, y)
        return TargetLabel(w.label if w else "", "push button" if w else "", "atspi")


TASK = "Search hotels for Oslo and place an order for the Oslo Grand Hotel"


def model_point(app: FakeApp, name: str, images) -> tuple[int, int]:
    x, y = app.centre(name)
    mw, mh = images[-1].size
    return round(x * mw / W), round(y * mh / H)


def solver_replies(app: FakeApp) -> list[Callable]:
    """The replies of a "model" that does the task on `app` (computed from the live app)."""
    return [
        lambda m, i: format_call("Type the city into the search box.",
                                 TypeText("Oslo", model_point(app, "search", i), True)),
        lambda m, i: format_call("Open the Oslo Grand Hotel.", LeftClick(model_point(app, "oslo", i))),
        lambda m, i: format_call("Place the order.", LeftClick(model_point(app, "order", i))),
        lambda m, i: format_call("The order for Oslo Grand Hotel is placed.", Terminate("success")),
    ]
