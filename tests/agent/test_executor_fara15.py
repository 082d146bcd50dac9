"""Fara1.5's pointer actions: the exact pyautogui calls, and the real button events under Xvfb."""

from __future__ import annotations

import time

import pytest

from agent import executor as ex
from agent.actions import AskUser, DoubleClick, Drag, HScroll, RightClick, TripleClick
from agent.executor import DryRunExecutor, Executor, InvalidActionError
from agent.geometry import Monitor, ScreenMapping, Size, model_size_for
from tests.agent.test_executor import MAPPING, FakeBackend, FakeGui


class PointerGui(FakeGui):
    """FakeGui with the pointer calls Fara1.5's actions use."""

    def doubleClick(self, x, y):
        self._record("doubleClick", x, y)

    def tripleClick(self, x, y):
        self._record("tripleClick", x, y)

    def rightClick(self, x, y):
        self._record("rightClick", x, y)

    def mouseDown(self, button):
        self._record("mouseDown", button)

    def mouseUp(self, button):
        self._record("mouseUp", button)

    def hscroll(self, clicks, x=None, y=None):
        self._record("hscroll", clicks, x, y)

    def moveTo(self, x, y):
        super().moveTo(x, y)
        self.pointer = (x, y)


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    fake = FakeBackend()
    fake.gui = PointerGui()
    monkeypatch.setattr(ex, "_open_backend", lambda display: fake)
    return fake


def test_clicks_go_through_the_mapping(backend: FakeBackend) -> None:
    e = Executor(display=":0")
    assert e.perform(DoubleClick((714, 448)), MAPPING) == "double-clicked at (2160, 450)"
    assert e.perform(TripleClick((714, 448)), MAPPING) == "triple-clicked at (2160, 450)"
    assert e.perform(RightClick((0, 0)), MAPPING) == "right-clicked at (1440, 0)"
    assert backend.gui.calls == [("doubleClick", 2160, 450), ("tripleClick", 2160, 450),
                                 ("rightClick", 1440, 0)]


def test_drag_presses_moves_and_releases(backend: FakeBackend) -> None:
    e = Executor(display=":0")
    note = e.perform(Drag((714, 448), (0, 0)), MAPPING)
    calls = backend.gui.calls
    assert calls[0] == ("moveTo", 1440, 0) and calls[1] == ("mouseDown", "left")
    assert calls[-2] == ("moveTo", 2160, 450) and calls[-1] == ("mouseUp", "left")
    assert len(calls) == 3 + ex.DRAG_STEPS
    assert note == "dragged from (1440, 0) to (2160, 450)"


def test_drag_never_leaves_the_button_held(backend: FakeBackend) -> None:
    backend.gui.fail["moveTo"] = OSError("display gone")
    with pytest.raises(Exception, match="display"):
        Executor(display=":0").perform(Drag((714, 448)), MAPPING)
    assert backend.gui.calls[-1] == ("mouseUp", "left")


def test_hscroll_scrolls_sideways(backend: FakeBackend) -> None:
    e = Executor(display=":0", scroll_clicks=4)
    assert e.perform(HScroll(120.0, (714, 448)), MAPPING) == "scrolled right at (2160, 450)"
    backend.gui.pointer = (2000, 100)  # on this monitor: scrolls where the pointer is
    assert e.perform(HScroll(-1.0), MAPPING) == "scrolled left"
    assert backend.gui.calls == [("hscroll", 4, 2160, 450), ("hscroll", -4, None, None)]


def test_a_question_is_never_input(backend: FakeBackend) -> None:
    with pytest.raises(InvalidActionError):
        Executor(display=":0").perform(AskUser("which?"), MAPPING)
    assert backend.gui.calls == []


def test_dry_run_describes_the_new_actions() -> None:
    note = DryRunExecutor().perform(RightClick((714, 448)), MAPPING)
    assert note.startswith("dry run: would right-click at (714, 448)")


# -- real X server ---------------------------------------------------------------------------

def full_screen(width: int, height: int) -> ScreenMapping:
    return ScreenMapping(Monitor(1, 0, 0, width, height), Size(width, height),
                         model_size_for(Size(width, height)))


class PointerLog:
    """A full-screen X window recording (type, button, x, y) of every button and motion event."""

    def __init__(self, display: str) -> None:
        from Xlib import X
        from Xlib import display as xdisplay

        self.X, self.d = X, xdisplay.Display(display)
        screen = self.d.screen()
        self.window = screen.root.create_window(
            0, 0, screen.width_in_pixels, screen.height_in_pixels, 0, screen.root_depth,
            X.InputOutput, X.CopyFromParent,
            event_mask=X.ButtonPressMask | X.ButtonReleaseMask | X.PointerMotionMask)
        self.window.map()
        self.d.sync()
        time.sleep(0.2)

    def events(self) -> list[tuple[str, int, int, int]]:
        time.sleep(0.2)
        out = []
        names = {self.X.ButtonPress: "press", self.X.ButtonRelease: "release",
                 self.X.MotionNotify: "motion"}
        while self.d.pending_events():
            e = self.d.next_event()
            if e.type in names:
                out.append((names[e.type], getattr(e, "detail", 0), e.root_x, e.root_y))
        return out

    def close(self) -> None:
        self.d.close()


@pytest.mark.xvfb
def test_real_buttons_under_xvfb(xvfb_factory) -> None:
    with xvfb_factory(640, 480) as d:
        log = PointerLog(d)
        m = full_screen(640, 480)
        at = m.model_to_input(100, 100, logical=False)
        with Executor(display=d) as e:
            e.perform(DoubleClick((100, 100)), m)
            clicks = [ev for ev in log.events() if ev[0] != "motion"]
            assert clicks == [("press", 1, *at), ("release", 1, *at)] * 2
            e.perform(TripleClick((100, 100)), m)
            assert [ev for ev in log.events() if ev[0] != "motion"] == [("press", 1, *at),
                                                                         ("release", 1, *at)] * 3
            e.perform(RightClick((100, 100)), m)
            assert [ev[:2] for ev in log.events() if ev[0] != "motion"] == [("press", 3), ("release", 3)]
            e.perform(HScroll(50.0, (100, 100)), m)
            wheel = {ev[1] for ev in log.events() if ev[0] == "press"}
            assert wheel == {7}  # X's "scroll right" button
            start, end = m.model_to_input(20, 30, logical=False), m.model_to_input(300, 200, logical=False)
            e.perform(Drag((300, 200), (20, 30)), m)
            events = log.events()
            buttons = [ev for ev in events if ev[0] != "motion"]
            assert buttons == [("press", 1, *start), ("release", 1, *end)]
            pressed_at = events.index(buttons[0])
            moves = [ev for ev in events[pressed_at:] if ev[0] == "motion"]
            assert len(moves) >= 2  # the pointer travelled with the button held
        log.close()
