"""Live-view markers for Fara1.5's actions: the overlay each gets, and that each is painted."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage

from agent.actions import (
    AskUser,
    DoubleClick,
    Drag,
    HScroll,
    ReadPage,
    RightClick,
    TripleClick,
)
from agent.geometry import Monitor, ScreenMapping, Size
from app.liveview import LiveView
from app.overlay import KINDS, Overlay, overlay_for

# Model image = half the screenshot: model (100, 50) is screenshot (200, 100).
MAPPING = ScreenMapping(Monitor(1, 0, 0, 800, 600), Size(800, 600), Size(400, 300))


@pytest.mark.parametrize("action, kind, point", [
    (DoubleClick((100, 50)), "double_click", (200.0, 100.0)),
    (TripleClick((100, 50)), "triple_click", (200.0, 100.0)),
    (RightClick((100, 50)), "right_click", (200.0, 100.0)),
    (Drag((100, 50)), "drag", (200.0, 100.0)),
    (HScroll(10.0, (100, 50)), "scroll_right", (200.0, 100.0)),
    (HScroll(-10.0), "scroll_left", (400.0, 300.0)),  # no point: the screen's centre
    (AskUser("Which size?"), "question", None),
    (ReadPage("What is the total?"), "read", None),
])
def test_each_new_action_has_its_own_marker(action, kind, point) -> None:
    overlay = overlay_for(action, MAPPING)
    assert overlay.kind == kind and overlay.kind in KINDS
    assert overlay.point == point


def test_a_drag_marker_knows_where_it_starts() -> None:
    overlay = overlay_for(Drag((100, 50), (10, 20)), MAPPING)
    assert overlay.start == (20.0, 40.0) and overlay.point == (200.0, 100.0)
    assert overlay_for(AskUser("Which size?"), MAPPING).label == "Which size?"


def _painted(qtbot, overlay: Overlay | None) -> QImage:
    view = LiveView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    image = QImage(800, 600, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    view.show_image(image, overlay, 1.0)
    return view.grab().toImage()


@pytest.mark.parametrize("kind", KINDS)
def test_every_marker_kind_paints_something(qtbot, kind) -> None:
    plain = _painted(qtbot, None)
    marked = _painted(qtbot, Overlay(kind, (300.0, 200.0), "label", start=(50.0, 50.0)))
    assert marked != plain, kind


def test_more_clicks_draw_more_rings(qtbot) -> None:
    def accent_pixels(kind: str) -> int:
        image = _painted(qtbot, Overlay(kind, (300.0, 200.0), ""))
        return sum(1 for x in range(250, 350) for y in range(150, 250)
                   if image.pixelColor(x, y).red() > 200 and image.pixelColor(x, y).green() < 120)

    single, double, triple = (accent_pixels(k) for k in ("click", "double_click", "triple_click"))
    assert single < double < triple
    assert accent_pixels("right_click") > single  # the right half is filled
