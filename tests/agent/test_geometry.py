"""smart_resize and the named coordinate spaces, checked in both directions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.geometry import (
    FACTOR,
    MAX_PIXELS,
    MIN_PIXELS,
    DisplaySpace,
    Monitor,
    Point,
    ScreenMapping,
    Size,
    Space,
    model_size_for,
    smart_resize,
)


def test_fara_viewport_gives_the_trained_model_size() -> None:
    assert smart_resize(900, 1440) == (896, 1428)
    assert model_size_for(Size(1440, 900)) == Size(1428, 896)


def test_large_screens_are_scaled_to_the_pixel_budget() -> None:
    size = model_size_for(Size(3840, 2160))
    assert size.pixels <= 1428 * 896
    assert size.width % FACTOR == 0 and size.height % FACTOR == 0
    assert abs(size.width / size.height - 16 / 9) < 0.05


@given(st.integers(28, 8000), st.integers(28, 8000))
def test_smart_resize_invariants(h: int, w: int) -> None:
    if max(h, w) / min(h, w) > 200:
        with pytest.raises(ValueError):
            smart_resize(h, w)
        return
    rh, rw = smart_resize(h, w)
    assert rh % FACTOR == 0 and rw % FACTOR == 0
    assert MIN_PIXELS <= rh * rw <= MAX_PIXELS


monitors = st.builds(
    Monitor,
    index=st.just(2),
    left=st.integers(-4000, 4000),
    top=st.integers(-2000, 2000),
    width=st.integers(640, 5120),
    height=st.integers(480, 2880),
    scale=st.sampled_from([1.0, 1.25, 1.5, 2.0]),
)


@st.composite
def mappings(draw) -> ScreenMapping:
    monitor = draw(monitors)
    # The screenshot is the monitor in physical pixels (sometimes a downscaled capture).
    shrink = draw(st.sampled_from([1.0, 1.0, 0.5]))
    shot = Size(max(1, round(monitor.width * shrink)), max(1, round(monitor.height * shrink)))
    # A display grid too, so the round trips below cover Fara1.5's DISPLAY space.
    return ScreenMapping(monitor, shot, model_size_for(shot), DisplaySpace(1000))


@settings(max_examples=400, deadline=None)
@given(mappings(), st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True))
def test_every_model_coordinate_lands_on_the_chosen_monitor(m: ScreenMapping, fx: float, fy: float) -> None:
    x = math.floor(fx * m.model.width)
    y = math.floor(fy * m.model.height)
    px, py = m.model_to_input(x, y, logical=False)
    assert m.monitor.contains_physical(px, py)
    lx, ly = m.model_to_input(x, y, logical=True)
    back = m.convert(Point(lx, ly, Space.LOGICAL), Space.PHYSICAL)
    assert m.monitor.contains_physical(back.x + 0.5, back.y + 0.5) or m.monitor.scale != 1.0


@settings(max_examples=400, deadline=None)
@given(mappings(), st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True),
       st.sampled_from(list(Space)), st.sampled_from(list(Space)))
def test_round_trip_between_any_two_spaces_within_one_pixel(
        m: ScreenMapping, fx: float, fy: float, a: Space, b: Space) -> None:
    start_phys = Point(m.monitor.left + fx * m.monitor.width, m.monitor.top + fy * m.monitor.height,
                       Space.PHYSICAL)
    p = m.convert(start_phys, a)
    there = m.convert(p, b)
    back = m.convert(there, a)
    assert abs(back.x - p.x) <= 1 and abs(back.y - p.y) <= 1


@settings(max_examples=300, deadline=None)
@given(mappings(), st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True))
def test_model_to_physical_and_back_within_one_model_pixel(m: ScreenMapping, fx: float, fy: float) -> None:
    x, y = math.floor(fx * m.model.width), math.floor(fy * m.model.height)
    px, py = m.model_to_input(x, y, logical=False)
    back = m.convert(Point(px, py, Space.PHYSICAL), Space.MODEL)
    assert abs(back.x - x) <= 1 and abs(back.y - y) <= 1


def test_negative_origin_monitor() -> None:
    # A monitor left of the primary one: origin (-1920, 0).
    m = ScreenMapping(Monitor(2, -1920, 0, 1920, 1080), Size(1920, 1080), model_size_for(Size(1920, 1080)))
    px, py = m.model_to_input(0, 0, logical=False)
    assert (px, py) == (-1920, 0)
    cx, cy = m.model_to_input(m.model.width // 2, m.model.height // 2, logical=False)
    assert -961 <= cx <= -959 and 539 <= cy <= 541


def test_per_monitor_scale_gives_logical_points() -> None:
    # A 2x monitor at physical (2880, 0): logical origin (1440, 0).
    m = ScreenMapping(Monitor(2, 2880, 0, 2880, 1800, scale=2.0), Size(2880, 1800), Size(1428, 896))
    lx, ly = m.model_to_input(714, 448, logical=True)
    assert abs(lx - (1440 + 720)) <= 1 and abs(ly - 450) <= 1
