"""The executor with pyautogui replaced at its single I/O seam: the exact calls it makes."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest

from agent import executor as ex
from agent.actions import (
    HistoryBack,
    KeyPress,
    LeftClick,
    MemorizeFact,
    MouseMove,
    Scroll,
    Terminate,
    TypeText,
    VisitUrl,
    Wait,
    WebSearch,
)
from agent.executor import (
    DEFAULT_SEARCH_URL,
    FAILSAFE_MESSAGE,
    ClipboardTyper,
    DryRunExecutor,
    Executor,
    InvalidActionError,
    keysym_for,
)
from agent.geometry import Monitor, ScreenMapping, Size
from agent.inputs import typers
from agent.loop import ExecutorError
from agent.safety import StopFlag

# A second monitor to the right of a first one: origin (1440, 0); model image 1428x896.
MAPPING = ScreenMapping(Monitor(2, 1440, 0, 1440, 900), Size(1440, 900), Size(1428, 896))
CENTRE = (714, 448)  # -> physical (2160, 450)
PRIMARY = "command" if sys.platform == "darwin" else "ctrl"


class FakeGui:
    """Records pyautogui calls; `fail` makes one method raise."""

    class FailSafeException(Exception):
        pass

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.pointer = (2000, 100)
        self.fail: dict[str, BaseException] = {}
        self.FAILSAFE_POINTS = [(0, 0), (0, 899), (2879, 0), (2879, 899)]

    def _record(self, *call) -> None:
        if call[0] in self.fail:
            raise self.fail[call[0]]
        self.calls.append(call)

    def click(self, x, y):
        self._record("click", x, y)

    def moveTo(self, x, y):
        self._record("moveTo", x, y)

    def keyDown(self, key):
        self._record("keyDown", key)

    def keyUp(self, key):
        self._record("keyUp", key)

    def press(self, key):
        self._record("press", key)

    def scroll(self, clicks, x=None, y=None):
        self._record("scroll", clicks, x, y)

    def write(self, text):
        self._record("write", text)

    def position(self):
        return self.pointer

    def failSafeCheck(self):
        if "failSafeCheck" in self.fail:
            raise self.fail["failSafeCheck"]


class FakeTyper:
    def __init__(self, gui: FakeGui) -> None:
        self.gui = gui

    def type_text(self, text, should_stop, before_chunk):
        typed = 0
        for _ in text:  # one-character chunks: the stop flag is honoured between them
            if should_stop():
                break
            before_chunk()
            typed += 1
        self.gui.calls.append(("type", text[:typed]))
        return typed

    def close(self):
        self.gui.calls.append(("typer.close",))


class FakeBackend:
    def __init__(self) -> None:
        self.gui = FakeGui()
        self.typer = FakeTyper(self.gui)
        self.closed = False

    def activate(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    fake = FakeBackend()
    monkeypatch.setattr(ex, "_open_backend", lambda display: fake)
    monkeypatch.setattr(ex, "BROWSER_SHORTCUT_DELAY", 0.0)
    return fake


def calls(backend: FakeBackend) -> list[tuple]:
    return backend.gui.calls


def test_click_and_move_go_through_the_mapping(backend: FakeBackend) -> None:
    e = Executor(display=":0")
    assert e.perform(LeftClick(CENTRE), MAPPING) == "clicked at (2160, 450)"
    e.perform(MouseMove((0, 0)), MAPPING)
    e.perform(LeftClick((1427, 895)), MAPPING)
    assert calls(backend) == [("click", 2160, 450), ("moveTo", 1440, 0), ("click", 2878, 898)]
    assert MAPPING.model_to_input(*CENTRE, logical=ex.INPUT_IS_LOGICAL) == (2160, 450)


def test_the_agent_never_parks_the_pointer_on_a_failsafe_corner(backend: FakeBackend) -> None:
    # Model image == screenshot size here, so the model can name the very corner pixels.
    left = ScreenMapping(Monitor(1, 0, 0, 1440, 900), Size(1440, 900), Size(1440, 900))
    right = ScreenMapping(Monitor(2, 1440, 0, 1440, 900), Size(1440, 900), Size(1440, 900))
    e = Executor()
    e.perform(LeftClick((0, 0)), left)
    e.perform(MouseMove((0, 899)), left)
    e.perform(LeftClick((1439, 899)), right)  # the desktop's bottom-right corner
    e.perform(Scroll(-1, (1439, 0)), right)
    e.perform(LeftClick((1439, 0)), left)  # the right edge of the left monitor is no corner
    assert calls(backend) == [("click", 1, 1), ("moveTo", 1, 898), ("click", 2878, 898),
                              ("scroll", -10, 2878, 1), ("click", 1439, 0)]


def test_type_clicks_clears_types_and_presses_enter(backend: FakeBackend) -> None:
    note = Executor().perform(TypeText("Zürich ✓", CENTRE, press_enter=True, delete_existing_text=True),
                              MAPPING)
    assert calls(backend) == [("click", 2160, 450), ("keyDown", PRIMARY), ("keyDown", "a"),
                              ("keyUp", "a"), ("keyUp", PRIMARY), ("press", "delete"),
                              ("type", "Zürich ✓"), ("press", "enter")]
    assert "8 characters" in note


def test_type_without_coordinate_or_enter(backend: FakeBackend) -> None:
    Executor().perform(TypeText("abc", press_enter=False), MAPPING)
    Executor().perform(TypeText("line 1\r\nline 2", press_enter=False), MAPPING)
    assert calls(backend) == [("type", "abc"), ("type", "line 1\nline 2")]


def test_stop_interrupts_typing_and_skips_enter(backend: FakeBackend) -> None:
    stop = StopFlag()
    seen = []

    def before_chunk():
        seen.append(1)
        if len(seen) == 3:
            stop.set("user pressed stop")

    backend.gui.failSafeCheck = before_chunk  # type: ignore[method-assign]
    note = Executor(stop=stop).perform(TypeText("a long text"), MAPPING)
    assert calls(backend) == [("type", "a l")]
    assert "interrupted" in note and "user pressed stop" in note


def test_chord_pressed_in_order_released_in_reverse(backend: FakeBackend) -> None:
    Executor().perform(KeyPress(("Control", "Shift", "K")), MAPPING)
    assert calls(backend) == [("keyDown", "ctrl"), ("keyDown", "shift"), ("keyDown", "k"),
                              ("keyUp", "k"), ("keyUp", "shift"), ("keyUp", "ctrl")]


def test_chord_releases_pressed_keys_when_a_press_fails(backend: FakeBackend) -> None:
    pressed = []

    def key_down(key):
        if len(pressed) == 1:
            raise OSError("broken pipe")
        pressed.append(key)
        backend.gui.calls.append(("keyDown", key))

    backend.gui.keyDown = key_down  # type: ignore[method-assign]
    with pytest.raises(ExecutorError, match="lost the display"):
        Executor(display=":5").perform(KeyPress(("ctrl", "c")), MAPPING)
    assert calls(backend) == [("keyDown", "ctrl"), ("keyUp", "ctrl")]


def test_unknown_key_is_an_invalid_action_and_sends_nothing(backend: FakeBackend) -> None:
    with pytest.raises(InvalidActionError, match="hyperdrive") as info:
        Executor().perform(KeyPress(("ctrl", "hyperdrive")), MAPPING)
    assert isinstance(info.value, ExecutorError)
    assert calls(backend) == []


@pytest.mark.parametrize(("pixels", "clicks"), [(-300, -10), (500, 10), (-0.5, -10)])
def test_scroll_sign_decides_direction(backend: FakeBackend, pixels: float, clicks: int) -> None:
    Executor().perform(Scroll(pixels, CENTRE), MAPPING)
    assert calls(backend) == [("scroll", clicks, 2160, 450)]


def test_scroll_amount_is_configurable_and_zero_is_a_no_op(backend: FakeBackend) -> None:
    e = Executor(scroll_clicks=3)
    e.perform(Scroll(-1, CENTRE), MAPPING)
    assert "nothing" in e.perform(Scroll(0, CENTRE), MAPPING)
    assert calls(backend) == [("scroll", -3, 2160, 450)]
    with pytest.raises(ValueError):
        Executor(scroll_clicks=0)


def test_scroll_without_coordinate_uses_the_pointer_when_on_this_monitor(backend: FakeBackend) -> None:
    backend.gui.pointer = (2000, 100)
    Executor().perform(Scroll(-1), MAPPING)
    backend.gui.pointer = (100, 100)  # on the other monitor: scroll at this one's centre
    Executor().perform(Scroll(1), MAPPING)
    assert calls(backend) == [("scroll", -10, None, None), ("scroll", 10, 2159, 449)]


def test_visit_url_focuses_the_address_bar(backend: FakeBackend) -> None:
    assert Executor().perform(VisitUrl("http://127.0.0.1:9000/a"), MAPPING) == \
        "opened http://127.0.0.1:9000/a"
    assert calls(backend) == [("keyDown", PRIMARY), ("keyDown", "l"), ("keyUp", "l"),
                              ("keyUp", PRIMARY), ("type", "http://127.0.0.1:9000/a"),
                              ("press", "enter")]


def test_stop_during_the_address_bar_delay_types_nothing(backend: FakeBackend) -> None:
    stop = StopFlag()
    stop.set("user pressed stop")
    note = Executor(stop=stop).perform(VisitUrl("http://127.0.0.1/"), MAPPING)
    assert "interrupted" in note
    assert [c[0] for c in calls(backend)] == ["keyDown", "keyDown", "keyUp", "keyUp"]


def test_web_search_uses_the_configured_template_url_encoded(backend: FakeBackend) -> None:
    assert DEFAULT_SEARCH_URL == ""  # none unless configured: see tests/agent/test_options_search.py
    Executor(search_url="http://127.0.0.1:9/search?q={query}").perform(
        WebSearch("café au lait & co"), MAPPING)
    assert ("type", "http://127.0.0.1:9/search?q=caf%C3%A9+au+lait+%26+co") in calls(backend)


def test_search_template_is_configurable_and_validated(backend: FakeBackend) -> None:
    Executor(search_url="http://localhost:1/find/{query}").perform(VisitUrl("two words"), MAPPING)
    assert ("type", "http://localhost:1/find/two+words") in calls(backend)
    with pytest.raises(ValueError, match="query"):
        Executor(search_url="http://127.0.0.1/search")


def test_history_back(backend: FakeBackend) -> None:
    Executor().perform(HistoryBack(), MAPPING)
    expected = ["command", "["] if sys.platform == "darwin" else ["alt", "left"]
    assert calls(backend) == [("keyDown", expected[0]), ("keyDown", expected[1]),
                              ("keyUp", expected[1]), ("keyUp", expected[0])]


@pytest.mark.parametrize("action", [HistoryBack(), VisitUrl("http://127.0.0.1/"), WebSearch("x")])
def test_browser_actions_refused_without_browser_chords(backend: FakeBackend, action) -> None:
    with pytest.raises(InvalidActionError, match="browser"):
        Executor(browser_chords=False).perform(action, MAPPING)
    assert calls(backend) == []


def test_actions_without_input_open_no_display(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_backend(display):
        raise AssertionError("no input expected")

    monkeypatch.setattr(ex, "_open_backend", no_backend)
    e = Executor()
    assert e.perform(Terminate("success"), MAPPING) is None
    assert e.perform(MemorizeFact("the price is 12 €"), MAPPING) == "remembered: the price is 12 €"
    assert e.perform(Wait(0.01), MAPPING) == "waited 0.01 s"


def test_wait_wakes_up_when_stopped() -> None:
    stop = StopFlag()
    threading.Timer(0.05, stop.set).start()
    start = time.monotonic()
    note = Executor(stop=stop).perform(Wait(30), MAPPING)
    assert time.monotonic() - start < 2
    assert "interrupted" in note


def test_failsafe_becomes_a_clean_executor_error(backend: FakeBackend) -> None:
    backend.gui.fail["click"] = FakeGui.FailSafeException("corner")
    with pytest.raises(ExecutorError) as info:
        Executor().perform(LeftClick(CENTRE), MAPPING)
    assert str(info.value) == FAILSAFE_MESSAGE
    assert not isinstance(info.value, InvalidActionError)


def test_failsafe_checked_while_typing(backend: FakeBackend) -> None:
    backend.gui.fail["failSafeCheck"] = FakeGui.FailSafeException("corner")
    with pytest.raises(ExecutorError, match="screen corner"):
        Executor().perform(TypeText("hello"), MAPPING)


def test_lost_display_is_an_executor_error_and_reopens_next_time(monkeypatch: pytest.MonkeyPatch) -> None:
    Xerror = pytest.importorskip("Xlib.error") if sys.platform.startswith("linux") else None
    backends = [FakeBackend(), FakeBackend()]
    opened = iter(backends)
    monkeypatch.setattr(ex, "_open_backend", lambda display: next(opened))
    exc = Xerror.ConnectionClosedError("display") if Xerror else OSError("gone")
    backends[0].gui.fail["click"] = exc
    e = Executor(display=":77")
    with pytest.raises(ExecutorError, match="lost the display :77"):
        e.perform(LeftClick(CENTRE), MAPPING)
    assert backends[0].closed
    e.perform(LeftClick(CENTRE), MAPPING)
    assert backends[1].gui.calls == [("click", 2160, 450)]


def test_display_that_cannot_be_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(display):
        raise ConnectionRefusedError("no such server")

    monkeypatch.setattr(ex, "_open_backend", refuse)
    with pytest.raises(ExecutorError, match="cannot open the display :99"):
        Executor(display=":99").perform(LeftClick(CENTRE), MAPPING)


def test_our_own_bugs_still_raise(backend: FakeBackend) -> None:
    backend.gui.fail["click"] = TypeError("a bug")
    with pytest.raises(TypeError):
        Executor().perform(LeftClick(CENTRE), MAPPING)


def test_close_closes_the_backend(backend: FakeBackend) -> None:
    with Executor() as e:
        e.perform(LeftClick(CENTRE), MAPPING)
    assert backend.closed


def test_dry_run_sends_nothing_and_describes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "_open_backend", lambda display: pytest.fail("no input expected"))
    dry = DryRunExecutor(search_url="http://127.0.0.1:9/search?q={query}")
    assert dry.perform(LeftClick(CENTRE), MAPPING) == "dry run: would click at (714, 448) (screen 2160, 450)"
    assert "Zürich" in dry.perform(TypeText("Zürich ✓"), MAPPING)
    assert dry.perform(WebSearch("a b"), MAPPING) == \
        "dry run: would open http://127.0.0.1:9/search?q=a+b"
    assert dry.perform(Terminate("success"), MAPPING).startswith("dry run")
    with pytest.raises(InvalidActionError):
        dry.perform(KeyPress(("nokey",)), MAPPING)
    assert len(dry.performed) == 4


def test_keysyms() -> None:
    assert keysym_for("a") == ord("a")
    assert keysym_for("ü") == 0xFC
    assert keysym_for("✓") == 0x01002713
    assert keysym_for("\n") == 0xFF0D
    assert keysym_for("\t") == 0xFF09
    assert keysym_for("\x07") is None


def test_clipboard_typer_writes_ascii_and_pastes_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    pasted: list[str] = []
    monkeypatch.setitem(sys.modules, "pyperclip", types.SimpleNamespace(copy=pasted.append))
    monkeypatch.setattr(typers.time, "sleep", lambda s: None)
    gui = FakeGui()
    typed = ClipboardTyper(gui).type_text("Zürich ✓ ok", lambda: False, gui.failSafeCheck)
    assert typed == len("Zürich ✓ ok")
    assert pasted == ["ü", "✓"]
    assert gui.calls == [("write", "Z"), ("keyDown", PRIMARY), ("press", "v"), ("keyUp", PRIMARY),
                         ("write", "rich "), ("keyDown", PRIMARY), ("press", "v"), ("keyUp", PRIMARY),
                         ("write", " ok")]
