"""The executor and focused_window_title against real Xvfb servers (no application needed)."""

from __future__ import annotations

import pytest

from agent.actions import LeftClick, MouseMove, TypeText
from agent.desktop import focused_window_title
from agent.executor import FAILSAFE_MESSAGE, Executor
from agent.geometry import Monitor, ScreenMapping, Size, model_size_for
from agent.loop import ExecutorError

pytestmark = pytest.mark.xvfb


def full_screen(width: int, height: int) -> ScreenMapping:
    return ScreenMapping(Monitor(1, 0, 0, width, height), Size(width, height),
                         model_size_for(Size(width, height)))


def pointer(display) -> tuple[int, int]:
    data = display.screen().root.query_pointer()
    return data.root_x, data.root_y


def test_two_displays_in_one_process(xvfb_factory) -> None:
    from Xlib.display import Display

    with xvfb_factory(800, 600) as a, xvfb_factory(1024, 768) as b:
        xa, xb = Display(a), Display(b)
        ma, mb = full_screen(800, 600), full_screen(1024, 768)
        with Executor(display=a) as ea, Executor(display=b) as eb:
            for _ in range(2):  # interleaved: each call re-binds pyautogui to its own display
                ea.perform(MouseMove((ma.model.width // 2, ma.model.height // 2)), ma)
                eb.perform(MouseMove((mb.model.width // 4, mb.model.height // 4)), mb)
                assert pointer(xa) == ma.model_to_input(ma.model.width // 2, ma.model.height // 2,
                                                        logical=False)
                assert pointer(xb) == mb.model_to_input(mb.model.width // 4, mb.model.height // 4,
                                                        logical=False)
            import pyautogui

            assert (1023, 767) in pyautogui.FAILSAFE_POINTS  # the corners of the display in use
        xa.close()
        xb.close()


def test_failsafe_corner_stops_with_a_clean_error(xvfb_factory) -> None:
    from Xlib.display import Display

    with xvfb_factory(640, 480) as d:
        mapping = full_screen(640, 480)
        with Executor(display=d) as e:
            e.perform(MouseMove((0, 0)), mapping)  # the agent itself stays off the corner
            e.perform(LeftClick((100, 100)), mapping)
            x = Display(d)
            x.screen().root.warp_pointer(0, 0)  # the user flings the mouse into a corner
            x.sync()
            with pytest.raises(ExecutorError) as info:
                e.perform(LeftClick((100, 100)), mapping)
            assert str(info.value) == FAILSAFE_MESSAGE
            with pytest.raises(ExecutorError, match="screen corner"):
                e.perform(TypeText("abc"), mapping)
            x.close()


def test_lost_display_is_a_clean_error(xvfb_factory) -> None:
    mapping = full_screen(640, 480)
    with xvfb_factory(640, 480) as d:
        e = Executor(display=d)
        e.perform(MouseMove((50, 50)), mapping)
    with pytest.raises(ExecutorError, match=f"lost the display {d}"):
        e.perform(MouseMove((60, 60)), mapping)
    e.close()


def test_missing_display_is_a_clean_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(ExecutorError, match="DISPLAY is not set"):
        Executor().perform(LeftClick((1, 1)), full_screen(640, 480))


def test_spare_keycodes_are_given_back(xvfb_factory) -> None:
    from Xlib.display import Display

    with xvfb_factory(640, 480) as d:
        x = Display(d)
        info = x.display.info
        count = info.max_keycode - info.min_keycode + 1
        before = x.get_keyboard_mapping(info.min_keycode, count)
        with Executor(display=d) as e:
            e.perform(TypeText("ü✓€", press_enter=False), full_screen(640, 480))
            during = x.get_keyboard_mapping(info.min_keycode, count)
            assert {0x01002713, 0x010020AC} <= {sym for row in during for sym in row}
        after = x.get_keyboard_mapping(info.min_keycode, count)
        assert [list(r) for r in after] == [list(r) for r in before]
        x.close()


def _titled_window(x, title: str):
    from Xlib import X

    root = x.screen().root
    window = root.create_window(0, 0, 100, 100, 0, x.screen().root_depth, X.InputOutput)
    window.change_property(x.intern_atom("_NET_WM_NAME"), x.intern_atom("UTF8_STRING"), 8,
                           title.encode("utf-8"))
    window.map()
    child = window.create_window(10, 10, 20, 20, 0, x.screen().root_depth, X.InputOutput)
    child.map()
    x.sync()
    return window, child


def test_focused_window_title(xvfb_factory) -> None:
    from Xlib import X, Xatom
    from Xlib.display import Display

    with xvfb_factory(640, 480) as d:
        x = Display(d)
        root = x.screen().root
        window, child = _titled_window(x, "Café — Bank login")
        assert focused_window_title(d) == ""  # nothing focused yet
        # An EWMH window manager names the active window on the root window.
        root.change_property(x.intern_atom("_NET_ACTIVE_WINDOW"), Xatom.WINDOW, 32, [window.id])
        x.sync()
        assert focused_window_title(d) == "Café — Bank login"
        # Without one, the X input focus is used, walking up from a child to its titled parent.
        root.delete_property(x.intern_atom("_NET_ACTIVE_WINDOW"))
        child.set_input_focus(X.RevertToParent, X.CurrentTime)
        x.sync()
        assert focused_window_title(d) == "Café — Bank login"
        x.close()
    assert focused_window_title(d) == ""  # the display is gone: no title, no exception
    assert focused_window_title(":4242") == ""
