"""Fara1.5's square DISPLAY space and its image grid: one conversion, tested both ways."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.geometry import DisplaySpace, Monitor, Point, ResizeRule, ScreenMapping, Size, Space

GRID = DisplaySpace(1000)
QWEN35 = ResizeRule(factor=32, min_pixels=3136, max_pixels=12845056)

sizes = st.builds(Size, st.integers(64, 4000), st.integers(64, 3000))


@settings(max_examples=300, deadline=None)
@given(sizes, st.floats(0, 999), st.floats(0, 999))
def test_display_to_model_and_back_is_exact(model: Size, x: float, y: float) -> None:
    mx, my = GRID.to_model(x, y, model)
    assert GRID.from_model(mx, my, model) == pytest.approx((x, y))
    assert 0 <= mx < model.width and 0 <= my < model.height


@settings(max_examples=300, deadline=None)
@given(sizes, st.integers(0, 999), st.integers(0, 999))
def test_model_pixel_round_trip_within_one_unit(model: Size, x: int, y: int) -> None:
    # The grid is coarser or finer than the image: rounding to a pixel loses at most one unit.
    mx, my = GRID.to_model(x, y, model)
    back = GRID.from_model(round(mx), round(my), model)
    assert abs(back[0] - x) <= max(1.0, 1000 / model.width)
    assert abs(back[1] - y) <= max(1.0, 1000 / model.height)


def test_scroll_pixels_scale_by_the_axis_they_move() -> None:
    model = Size(1440, 896)
    assert GRID.scroll_to_model(-1000, model) == -896           # viewport height / display size
    assert GRID.scroll_to_model(500, model, horizontal=True) == 720


def test_the_mapping_converts_display_points_to_every_space() -> None:
    monitor = Monitor(2, 1920, 0, 2880, 1800, scale=2.0)
    mapping = ScreenMapping(monitor, Size(2880, 1800), QWEN35.model_size(Size(2880, 1800), 1440 * 896),
                            GRID)
    shot = mapping.convert(Point(500, 500, Space.DISPLAY), Space.SCREENSHOT)
    assert (shot.x, shot.y) == pytest.approx((1440, 900))
    phys = mapping.convert(Point(1000, 0, Space.DISPLAY), Space.PHYSICAL)
    assert (phys.x, phys.y) == pytest.approx((1920 + 2880, 0))
    back = mapping.convert(Point(2880, 900, Space.SCREENSHOT), Space.DISPLAY)
    assert (back.x, back.y) == pytest.approx((1000, 500))


def test_a_mapping_without_a_display_grid_refuses_display_points() -> None:
    mapping = ScreenMapping(Monitor(1, 0, 0, 100, 100), Size(100, 100), Size(112, 112))
    with pytest.raises(ValueError, match="DISPLAY"):
        mapping.convert(Point(1, 1, Space.DISPLAY), Space.MODEL)


def test_qwen35_grid_is_a_multiple_of_32_within_the_budget() -> None:
    assert QWEN35.model_size(Size(1440, 900), QWEN35.max_pixels) == Size(1440, 896)
    small = QWEN35.model_size(Size(3840, 2160), 1440 * 896)
    assert small.width % 32 == 0 and small.height % 32 == 0 and small.pixels <= 1440 * 896
    assert QWEN35.model_size(Size(20, 20), 10) == Size(64, 64)  # min_pixels wins over a tiny budget
