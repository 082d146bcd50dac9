"""Perform typed actions: the dispatch from an Action to input calls on the input back end.

Coordinates arrive in MODEL space; `ScreenMapping.model_to_input` is the only conversion (into
the space the OS wants, see `agent.inputs.backend.INPUT_IS_LOGICAL`). Browser actions become
shortcuts (address bar, history back); a web search opens a local search page.

The input itself (pyautogui bound to one display, the XTest and clipboard text typers, the lock
around pyautogui's global X connection) lives in `agent.inputs`, behind the `InputBackend`
protocol; this module imports neither pyautogui nor Xlib.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any
from urllib.parse import quote_plus

from agent.actions import (
    CLICKS,
    Action,
    DoubleClick,
    Drag,
    HistoryBack,
    HScroll,
    KeyPress,
    LeftClick,
    MemorizeFact,
    MouseMove,
    RightClick,
    Scroll,
    Terminate,
    TripleClick,
    TypeText,
    VisitUrl,
    Wait,
    WebSearch,
    describe,
)
from agent.errors import ExecutorError, InvalidActionError
from agent.geometry import ScreenMapping
from agent.inputs.backend import INPUT_IS_LOGICAL, IS_X11, InputBackend, display_errors, failsafe_type
from agent.inputs.backend import INPUT_LOCK as _INPUT_LOCK
from agent.inputs.backend import open_backend as _open_backend  # tests replace this name here
from agent.inputs.typers import ClipboardTyper, TextTyper, XTestTyper, keysym_for
from agent.keys import KeyNameError, primary_modifier, resolve_chord
from agent.options import DEFAULTS
from agent.safety import StopFlag

__all__ = [
    "BROWSER_SHORTCUT_DELAY", "DEFAULT_SCROLL_CLICKS", "DEFAULT_SEARCH_URL", "FAILSAFE_MESSAGE",
    "INPUT_IS_LOGICAL", "IS_X11", "ClipboardTyper", "DryRunExecutor", "Executor", "ExecutorError",
    "InputBackend", "InvalidActionError", "TextTyper", "XTestTyper", "keysym_for",
]

# None unless configured (agent.options.RunOptions.search_url): nothing serves a search page
# outside the evaluation harness, and web_search must never reach a public engine (offline runs,
# privacy). Without one, a search is refused with a message the model is shown (`_search_target`).
DEFAULT_SEARCH_URL = DEFAULTS.search_url
# Fara's reference harness scrolls about one page per action; 10 wheel clicks is roughly one
# page in browsers and Qt lists (3 lines per click).
DEFAULT_SCROLL_CLICKS = 10
# Time for a browser to move the focus to its address bar after Ctrl+L (see `_browser`).
BROWSER_SHORTCUT_DELAY = 0.3
FAILSAFE_MESSAGE = "stopped: mouse moved to a screen corner"
DRAG_STEPS = 8  # pointer moves between press and release in a drag
_CLICK_CALLS = {LeftClick: ("click", "clicked"), DoubleClick: ("doubleClick", "double-clicked"),
                TripleClick: ("tripleClick", "triple-clicked"), RightClick: ("rightClick", "right-clicked")}


class Executor:
    """Performs actions on the real desktop; `perform` follows the loop's `ActionPerformer`."""

    def __init__(self, *, stop: StopFlag | None = None, search_url: str | None = DEFAULT_SEARCH_URL,
                 browser_chords: bool = True, display: str | None = None,
                 scroll_clicks: int = DEFAULT_SCROLL_CLICKS) -> None:
        search_url = _checked_search_url(search_url)
        if scroll_clicks < 1:
            raise ValueError("scroll_clicks must be at least 1")
        self.stop = stop or StopFlag()
        self.search_url = search_url
        self.browser_chords = browser_chords
        self.scroll_clicks = scroll_clicks
        self.display = display or (os.environ.get("DISPLAY") if IS_X11 else None)
        self._backend: InputBackend | None = None

    # -- public ---------------------------------------------------------------------------
    def perform(self, action: Action, mapping: ScreenMapping) -> str | None:
        """Send the input for one action; returns a short note; raises ExecutorError."""
        if isinstance(action, Terminate):
            return None
        if isinstance(action, MemorizeFact):
            return f"remembered: {action.fact}"
        if isinstance(action, Wait):
            return self._wait(action.time)
        try:
            with _INPUT_LOCK:
                backend = self._open()
                return self._dispatch(backend, action, mapping)
        except ExecutorError:
            raise
        except Exception as exc:
            if self._backend is not None and isinstance(exc, failsafe_type(self._backend.gui)):
                raise ExecutorError(FAILSAFE_MESSAGE) from exc
            if isinstance(exc, display_errors()):
                self._drop_backend()
                raise ExecutorError(f"lost the display {self.display or ''}: {_short(exc)}") from exc
            raise

    def close(self) -> None:
        """Release the X connection and give spare keycodes back."""
        self._drop_backend()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------
    def _open(self) -> InputBackend:
        if self._backend is None:
            try:
                self._backend = _open_backend(self.display)
            except ExecutorError:
                raise
            except Exception as exc:
                if isinstance(exc, (*display_errors(), KeyError, ImportError)):
                    raise ExecutorError(f"cannot open the display {self.display or '(DISPLAY unset)'} "
                                        f"for input: {_short(exc)}") from exc
                raise
        self._backend.activate()
        return self._backend

    def _drop_backend(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            with contextlib.suppress(Exception):  # the display may already be gone
                backend.close()

    def _point(self, mapping: ScreenMapping, coordinate: tuple[int, int]) -> tuple[int, int]:
        return mapping.model_to_input(coordinate[0], coordinate[1], logical=INPUT_IS_LOGICAL)

    def _target(self, gui: Any, mapping: ScreenMapping, coordinate: tuple[int, int]) -> tuple[int, int]:
        """The input point for a model coordinate, kept one pixel off the fail-safe corners:
        the agent parking the pointer there would make its own next action trip the fail-safe,
        which is meant for the user's hand."""
        x, y = self._point(mapping, coordinate)
        if (x, y) in getattr(gui, "FAILSAFE_POINTS", ()):
            x, y = (x + 1 if x <= 0 else x - 1), (y + 1 if y <= 0 else y - 1)
        return x, y

    def _dispatch(self, backend: InputBackend, action: Action, mapping: ScreenMapping) -> str | None:
        gui = backend.gui
        if isinstance(action, CLICKS):
            x, y = self._target(gui, mapping, action.coordinate)
            method, verb = _CLICK_CALLS[type(action)]
            getattr(gui, method)(x, y)
            return f"{verb} at ({x}, {y})"
        if isinstance(action, Drag):
            return self._drag(gui, action, mapping)
        if isinstance(action, MouseMove):
            x, y = self._target(gui, mapping, action.coordinate)
            gui.moveTo(x, y)
            return f"moved the mouse to ({x}, {y})"
        if isinstance(action, TypeText):
            return self._type(backend, action, mapping)
        if isinstance(action, KeyPress):
            self._chord(gui, self._resolve(action.keys))
            return "pressed " + "+".join(action.keys)
        if isinstance(action, (Scroll, HScroll)):
            return self._scroll(gui, action, mapping)
        if isinstance(action, (VisitUrl, WebSearch, HistoryBack)):
            return self._browser(backend, action)
        raise InvalidActionError(f"the executor cannot perform {describe(action)!r}")

    @staticmethod
    def _resolve(keys: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        try:
            return resolve_chord(list(keys))
        except KeyNameError as exc:
            raise InvalidActionError(str(exc)) from exc

    @staticmethod
    def _chord(gui: Any, keys: tuple[str, ...]) -> None:
        # Pressed in order, released in reverse; release even on failure so no modifier sticks.
        pressed: list[str] = []
        try:
            for key in keys:
                gui.keyDown(key)
                pressed.append(key)
        finally:
            for key in reversed(pressed):
                with contextlib.suppress(Exception):
                    gui.keyUp(key)

    def _type_text(self, backend: InputBackend, text: str) -> bool:
        """Type text; False when the stop flag interrupted it."""
        text = text.replace("\r\n", "\n")  # one Enter per line break, not two
        typed = backend.typer.type_text(text, self.stop.is_set, backend.gui.failSafeCheck)
        return typed >= len(text)

    def _type(self, backend: InputBackend, action: TypeText, mapping: ScreenMapping) -> str:
        gui = backend.gui
        where = ""
        if action.coordinate is not None:
            x, y = self._target(gui, mapping, action.coordinate)
            gui.click(x, y)
            where = f" at ({x}, {y})"
        if action.delete_existing_text:
            self._chord(gui, (primary_modifier(), "a"))
            gui.press("delete")
        if not self._type_text(backend, action.text):
            return f"typing{where} interrupted: {self.stop.reason or 'stopped'}"
        if action.press_enter:
            gui.press("enter")
        return f"typed {len(action.text)} characters{where}" + (" + Enter" if action.press_enter else "")

    def _scroll(self, gui: Any, action: Scroll | HScroll, mapping: ScreenMapping) -> str:
        if action.pixels == 0:
            return "scroll of 0 pixels: nothing to do"
        clicks = self.scroll_clicks if action.pixels > 0 else -self.scroll_clicks
        # + is up for `scroll` (Fara's schema), right for `hscroll` (pyautogui's and X's buttons 7/6).
        wheel, way = ((gui.hscroll, "right" if clicks > 0 else "left") if isinstance(action, HScroll)
                      else (gui.scroll, "up" if clicks > 0 else "down"))
        if action.coordinate is not None:
            x, y = self._target(gui, mapping, action.coordinate)
        else:
            # Scroll where the pointer is, unless it is off this monitor (then at its centre).
            left, top = self._point(mapping, (0, 0))
            right, bottom = self._point(mapping, (mapping.model.width - 1, mapping.model.height - 1))
            px, py = gui.position()
            if left <= px <= right and top <= py <= bottom:
                wheel(clicks)
                return f"scrolled {way}"
            x, y = (left + right) // 2, (top + bottom) // 2
        wheel(clicks, x=x, y=y)
        return f"scrolled {way} at ({x}, {y})"

    def _drag(self, gui: Any, action: Drag, mapping: ScreenMapping) -> str:
        """Press, move in a few steps (drop targets want motion, not a jump), release."""
        if action.start_coordinate is not None:
            gui.moveTo(*self._target(gui, mapping, action.start_coordinate))
        sx, sy = gui.position()
        x, y = self._target(gui, mapping, action.coordinate)
        gui.mouseDown(button="left")
        try:
            for i in range(1, DRAG_STEPS + 1):
                gui.moveTo(sx + (x - sx) * i // DRAG_STEPS, sy + (y - sy) * i // DRAG_STEPS)
        finally:  # never leave the button held, even when a move failed
            gui.mouseUp(button="left")
        return f"dragged from ({sx}, {sy}) to ({x}, {y})"

    def _browser(self, backend: InputBackend, action: Action) -> str:
        if not self.browser_chords:
            raise InvalidActionError(f"{action.name} needs a browser, and browser shortcuts are off")
        gui = backend.gui
        if isinstance(action, HistoryBack):
            self._chord(gui, ("command", "[") if sys.platform == "darwin" else ("alt", "left"))
            return "went back"
        if isinstance(action, VisitUrl) and " " not in action.url.strip():
            target, note = action.url.strip(), f"opened {action.url.strip()}"
        else:
            query = action.query if isinstance(action, WebSearch) else action.url.strip()
            target = _search_target(self.search_url, action, query)
            note = f"searched for {query!r}"
        self._chord(gui, (primary_modifier(), "l"))  # focus the address bar, selecting its text
        # Browsers offer a key to the page first and act on the shortcut only when the page
        # hands it back, asynchronously: keys typed at once would still land in the page.
        if self.stop.wait(BROWSER_SHORTCUT_DELAY):
            return f"opening the address interrupted: {self.stop.reason or 'stopped'}"
        if not self._type_text(backend, target):
            return f"typing the address interrupted: {self.stop.reason or 'stopped'}"
        gui.press("enter")
        return note

    def _wait(self, seconds: float) -> str:
        # StopFlag.wait wakes at once when the flag is set, so a stop never waits out the sleep.
        if self.stop.wait(max(0.0, seconds)):
            return f"wait interrupted: {self.stop.reason or 'stopped'}"
        return f"waited {seconds:g} s"


class DryRunExecutor:
    """Same interface as `Executor`; sends no input and describes what it would have done.

    Takes `Executor`'s arguments so callers construct either one the same way.
    """

    def __init__(self, *, stop: StopFlag | None = None, search_url: str | None = DEFAULT_SEARCH_URL,
                 browser_chords: bool = True, display: str | None = None,
                 scroll_clicks: int = DEFAULT_SCROLL_CLICKS) -> None:
        search_url = _checked_search_url(search_url)
        self.search_url = search_url
        self.browser_chords = browser_chords
        self.performed: list[Action] = []

    def perform(self, action: Action, mapping: ScreenMapping) -> str | None:
        """Validate the action like `Executor` does and return a note; no input is sent."""
        if isinstance(action, KeyPress):
            Executor._resolve(action.keys)
        if isinstance(action, (VisitUrl, WebSearch, HistoryBack)) and not self.browser_chords:
            raise InvalidActionError(f"{action.name} needs a browser, and browser shortcuts are off")
        self.performed.append(action)
        where = ""
        if action.target is not None:
            x, y = mapping.model_to_input(*action.target, logical=INPUT_IS_LOGICAL)
            where = f" (screen {x}, {y})"
        if isinstance(action, WebSearch):
            return f"dry run: would open {_search_target(self.search_url, action, action.query)}"
        return f"dry run: would {describe(action)}{where}"


def _checked_search_url(search_url: str | None) -> str:
    """The search page template, "" for none; a template without {query} is a ValueError."""
    if search_url and "{query}" not in search_url:
        raise ValueError("search_url must contain '{query}'")
    return search_url or ""


def _search_target(search_url: str, action: Action, query: str) -> str:
    """The address that searches for `query`; InvalidActionError (shown to the model) if none."""
    if not search_url:
        raise InvalidActionError(
            f"{action.name} cannot search for {query[:80]!r}: no search page is configured on "
            "this computer; open a page with visit_url and its full address instead")
    return search_url.replace("{query}", quote_plus(query))


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
