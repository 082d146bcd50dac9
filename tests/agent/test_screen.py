"""Capture and settle detection on a real (virtual) X display."""

from __future__ import annotations

import threading
import time

import pytest

from agent.screen import Screen, ScreenError

pytestmark = pytest.mark.xvfb


def test_capture_reports_geometry_and_pixels(xvfb_display: str) -> None:
    screen = Screen(xvfb_display)
    shot = screen.capture(1)
    assert shot.size.width == 1440 and shot.size.height == 900
    assert (shot.monitor.left, shot.monitor.top, shot.monitor.scale) == (0, 0, 1.0)
    assert shot.image.mode == "RGB"
    assert [m.index for m in screen.monitors()][-1] == 0


def test_unknown_monitor_is_a_clear_error(xvfb_display: str) -> None:
    with pytest.raises(ScreenError, match="monitor 5 is not connected"):
        Screen(xvfb_display).capture(5)


def test_missing_display_is_a_clear_error() -> None:
    with pytest.raises(ScreenError, match="cannot open the display"):
        Screen(":4077").capture(1)


def test_wait_settled_returns_fast_on_a_static_screen(xvfb_display: str) -> None:
    screen = Screen(xvfb_display)
    start = time.monotonic()
    screen.wait_settled(1, timeout=3.0)
    assert time.monotonic() - start < 1.0


def test_wait_settled_is_bounded_while_the_screen_keeps_changing(xvfb_display: str,
                                                                  monkeypatch) -> None:
    screen = Screen(xvfb_display)
    real_capture = screen.capture
    frames = iter(range(10**6))

    def changing(index: int = 1):
        # A real capture with a different mark every frame, like a page that never stops loading.
        shot = real_capture(index)
        shade = next(frames) % 2 * 255
        shot.image.paste((shade, 0, 255 - shade), (0, 0, 400, 300))
        return shot

    monkeypatch.setattr(screen, "capture", changing)
    start = time.monotonic()
    screen.wait_settled(1, timeout=0.8, interval=0.05)
    elapsed = time.monotonic() - start
    assert 0.8 <= elapsed < 2.0


def test_wait_settled_wakes_on_stop(xvfb_display: str) -> None:
    flag = threading.Event()
    threading.Timer(0.2, flag.set).start()
    screen = Screen(xvfb_display)
    start = time.monotonic()
    # A changing screen would keep it waiting; the stop flag ends the wait early.
    screen.wait_settled(1, timeout=5.0, stable_frames=10_000, should_stop=flag.is_set)
    assert time.monotonic() - start < 1.5
