"""Perform typed actions with real input: pyautogui for the mouse and keys, XTest for text.

Coordinates arrive in MODEL space; `ScreenMapping.model_to_input` is the only conversion.
Which input space the OS wants:
- X11: XTest takes root-window pixels, the same physical pixels mss captures -> physical.
- macOS: Quartz events take points -> logical (a Retina monitor has scale 2).
- Windows: logical as well. mss makes the process DPI-aware, so Windows reports physical
  monitor rectangles and `Screen` computes scale 1.0 there; logical then equals physical and
  stays correct if a monitor ever reports another scale.

Text: `pyautogui.write` only knows ASCII. On X11 `XTestTyper` sends keysyms instead: a
character missing from the keyboard layout is put on a spare (unmapped) keycode, which is
pressed through XTest (the technique xdotool uses). Elsewhere ASCII goes through pyautogui and
the rest is pasted through the clipboard.

pyautogui is imported lazily: on X11 it (and its `mouseinfo` dependency) opens $DISPLAY at
import time, and it keeps one module-global X connection. Each `Executor` binds to its own
display (see `_PyAutoGUIBackend`), which lets tests drive several Xvfb servers in one process.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import quote_plus

from agent.actions import (
    Action,
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
    describe,
)
from agent.errors import ExecutorError, InvalidActionError
from agent.geometry import ScreenMapping
from agent.keys import KeyNameError, primary_modifier, resolve_chord
from agent.safety import StopFlag

# A local page: web_search must never reach a public engine (offline runs, privacy).
DEFAULT_SEARCH_URL = "http://127.0.0.1:8765/search?q={query}"
# Fara's reference harness scrolls about one page per action; 10 wheel clicks is roughly one
# page in browsers and Qt lists (3 lines per click).
DEFAULT_SCROLL_CLICKS = 10
# Time for a browser to move the focus to its address bar after Ctrl+L (see `_browser`).
BROWSER_SHORTCUT_DELAY = 0.3
INPUT_IS_LOGICAL = sys.platform in ("darwin", "win32")
IS_X11 = sys.platform.startswith(("linux", "freebsd", "openbsd"))
FAILSAFE_MESSAGE = "stopped: mouse moved to a screen corner"
# pyautogui's X connection is one module global: executors on different threads take turns.
_INPUT_LOCK = threading.RLock()


class TextTyper(Protocol):
    def type_text(self, text: str, should_stop: Callable[[], bool],
                  before_chunk: Callable[[], None]) -> int: ...

    def close(self) -> None: ...


class InputBackend(Protocol):
    """The single I/O seam: a pyautogui-like module plus a text typer."""

    gui: Any
    typer: TextTyper

    def activate(self) -> None: ...

    def close(self) -> None: ...


class Executor:
    """Performs actions on the real desktop; `perform` follows the loop's `ActionPerformer`."""

    def __init__(self, *, stop: StopFlag | None = None, search_url: str = DEFAULT_SEARCH_URL,
                 browser_chords: bool = True, display: str | None = None,
                 scroll_clicks: int = DEFAULT_SCROLL_CLICKS) -> None:
        if "{query}" not in search_url:
            raise ValueError("search_url must contain '{query}'")
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
            if self._backend is not None and isinstance(exc, _failsafe_type(self._backend.gui)):
                raise ExecutorError(FAILSAFE_MESSAGE) from exc
            if isinstance(exc, _display_errors()):
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
                if isinstance(exc, (*_display_errors(), KeyError, ImportError)):
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
        if isinstance(action, LeftClick):
            x, y = self._target(gui, mapping, action.coordinate)
            gui.click(x, y)
            return f"clicked at ({x}, {y})"
        if isinstance(action, MouseMove):
            x, y = self._target(gui, mapping, action.coordinate)
            gui.moveTo(x, y)
            return f"moved the mouse to ({x}, {y})"
        if isinstance(action, TypeText):
            return self._type(backend, action, mapping)
        if isinstance(action, KeyPress):
            self._chord(gui, self._resolve(action.keys))
            return "pressed " + "+".join(action.keys)
        if isinstance(action, Scroll):
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

    def _scroll(self, gui: Any, action: Scroll, mapping: ScreenMapping) -> str:
        if action.pixels == 0:
            return "scroll of 0 pixels: nothing to do"
        clicks = self.scroll_clicks if action.pixels > 0 else -self.scroll_clicks  # + is up
        if action.coordinate is not None:
            x, y = self._target(gui, mapping, action.coordinate)
        else:
            # Scroll where the pointer is, unless it is off this monitor (then at its centre).
            left, top = self._point(mapping, (0, 0))
            right, bottom = self._point(mapping, (mapping.model.width - 1, mapping.model.height - 1))
            px, py = gui.position()
            if left <= px <= right and top <= py <= bottom:
                gui.scroll(clicks)
                return f"scrolled {'up' if clicks > 0 else 'down'}"
            x, y = (left + right) // 2, (top + bottom) // 2
        gui.scroll(clicks, x=x, y=y)
        return f"scrolled {'up' if clicks > 0 else 'down'} at ({x}, {y})"

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
            target = self.search_url.replace("{query}", quote_plus(query))
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

    def __init__(self, *, stop: StopFlag | None = None, search_url: str = DEFAULT_SEARCH_URL,
                 browser_chords: bool = True, display: str | None = None,
                 scroll_clicks: int = DEFAULT_SCROLL_CLICKS) -> None:
        if "{query}" not in search_url:
            raise ValueError("search_url must contain '{query}'")
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
            return f"dry run: would open {self.search_url.replace('{query}', quote_plus(action.query))}"
        return f"dry run: would {describe(action)}{where}"


# -- the pyautogui seam ----------------------------------------------------------------------

def _open_backend(display: str | None) -> InputBackend:
    """Open the real input backend for `display` (tests replace this function)."""
    return _PyAutoGUIBackend(display)


class _PyAutoGUIBackend:
    """pyautogui bound to one X display (or the native input API off X11).

    The hack: pyautogui's X11 module holds a module-global `_display` connection and a
    `keyboardMapping` computed from it at import. We re-run that module (importlib.reload)
    with DISPLAY pointing at our display, keep the connection and table it builds, and put
    them back into the module whenever another Executor (another display) was used since.
    pyautogui's fail-safe corners, also computed at import, are reset to this display's size.
    """

    def __init__(self, display: str | None) -> None:
        self.display = display
        self._xdisplay: Any = None
        self._keymap: Any = None
        if IS_X11:
            if not display:
                raise ExecutorError("no X display to send input to (DISPLAY is not set)")
            with _environ("DISPLAY", display):
                gui = importlib.import_module("pyautogui")
                module = gui.platformModule
                importlib.reload(module)
            self._xdisplay, self._keymap = module._display, module.keyboardMapping
            self.typer: TextTyper = XTestTyper(self._xdisplay)
        else:
            gui = importlib.import_module("pyautogui")
            self.typer = ClipboardTyper(gui)
        # No pause after every call (the default adds 0.1 s to each); the fail-safe stays on.
        gui.PAUSE = 0
        gui.FAILSAFE = True
        self.gui = gui

    def activate(self) -> None:
        """Make pyautogui's global X connection ours again if another display took it."""
        if self._xdisplay is None:
            return
        module = self.gui.platformModule
        if module._display is not self._xdisplay:
            module._display, module.keyboardMapping = self._xdisplay, self._keymap
        screen = self._xdisplay.screen()
        w, h = screen.width_in_pixels, screen.height_in_pixels
        self.gui.FAILSAFE_POINTS[:] = [(0, 0), (0, h - 1), (w - 1, 0), (w - 1, h - 1)]

    def close(self) -> None:
        self.typer.close()
        if self._xdisplay is not None:
            self._xdisplay.close()


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _failsafe_type(gui: Any) -> type[BaseException] | tuple[()]:
    return getattr(gui, "FailSafeException", ())


def _display_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    if IS_X11:
        try:
            import Xlib.error
        except ImportError:
            pass
        else:
            errors += [Xlib.error.DisplayError, Xlib.error.ConnectionClosedError, Xlib.error.XError]
    return tuple(errors)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# -- text typers -----------------------------------------------------------------------------

def keysym_for(char: str) -> int | None:
    """The X keysym of one character (None for control characters that have none)."""
    if char in "\n\r":
        return 0xFF0D  # Return
    if char == "\t":
        return 0xFF09  # Tab
    cp = ord(char)
    if 0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xFF:
        return cp  # Latin-1 keysyms equal their code points
    if cp < 0x20 or 0x7F <= cp < 0xA0:
        return None
    return 0x01000000 | cp  # X's Unicode keysym range


class XTestTyper:
    """Types any Unicode text on X11 by keysym, through XTest, on the given Xlib display.

    Characters on the current layout use their own key (with Shift where needed). Others are
    put on spare keycodes (ones the layout leaves empty). Those stay assigned until `close()`:
    re-mapping right after a key press races the application, which looks the key up in the
    keymap it fetches when it processes the mapping change, possibly after a later change.
    """

    CHUNK = 8  # characters between stop checks (and X round trips)
    # Time for clients to fetch a changed keymap before keys that use it arrive (xdotool
    # waits similarly); spent only when a new character needs a spare keycode.
    REMAP_SETTLE = 0.03
    EVICT_SETTLE = 0.1
    CLOSE_SETTLE = 0.2

    def __init__(self, xdisplay: Any) -> None:
        from Xlib import X
        from Xlib.ext import xtest

        self._d = xdisplay
        self._X = X
        self._fake = xtest.fake_input
        self._spare: list[int] | None = None
        self._assigned: dict[int, int] = {}  # keysym -> spare keycode, oldest first

    def type_text(self, text: str, should_stop: Callable[[], bool],
                  before_chunk: Callable[[], None]) -> int:
        """Type `text`; returns how many characters were typed (fewer when stopped)."""
        layout = self._layout()
        shift = layout.get(0xFFE1, (None, False))[0]  # Shift_L
        # A chunk's missing characters must fit on the spare keycodes at once.
        size = max(1, min(self.CHUNK, len(self._spare or ())))
        typed = 0
        for start in range(0, len(text), size):
            if should_stop():
                return typed
            before_chunk()
            chunk = text[start:start + size]
            self._assign([s for s in map(keysym_for, chunk) if s is not None and s not in layout])
            for char in chunk:
                sym = keysym_for(char)
                if sym is not None:
                    code, shifted = layout.get(sym, (self._assigned.get(sym), False))
                    if code is None:
                        raise ExecutorError(f"no key can type {char!r} on this display")
                    self._key(code, shifted and shift is not None, shift)
            self._d.sync()
            typed += len(chunk)
        return typed

    def _key(self, code: int, shifted: bool, shift: int | None) -> None:
        X, d = self._X, self._d
        if shifted:
            self._fake(d, X.KeyPress, shift)
        self._fake(d, X.KeyPress, code)
        self._fake(d, X.KeyRelease, code)
        if shifted:
            self._fake(d, X.KeyRelease, shift)

    def _layout(self) -> dict[int, tuple[int, bool]]:
        """keysym -> (keycode, needs Shift) for the current layout's first group."""
        info = self._d.display.info
        first, count = info.min_keycode, info.max_keycode - info.min_keycode + 1
        rows = self._d.get_keyboard_mapping(first, count)
        spare_now = {c for c in self._assigned.values()}
        if self._spare is None:
            self._spare = [first + i for i, row in enumerate(rows) if not any(row)]
        found: dict[int, tuple[int, bool]] = {}
        for i, row in enumerate(rows):
            code = first + i
            if code in spare_now:
                continue
            for column, shifted in ((1, True), (0, False)):  # column 0 wins when both match
                if column < len(row) and row[column]:
                    found[row[column]] = (code, shifted)
        return found

    def _assign(self, needed: list[int]) -> None:
        """Put every keysym in `needed` on a spare keycode (least recently used ones reused)."""
        needed = list(dict.fromkeys(needed))
        for sym in needed:
            if sym in self._assigned:
                self._assigned[sym] = self._assigned.pop(sym)  # most recently used last
        missing = [s for s in needed if s not in self._assigned]
        if not missing:
            return
        spare = self._spare or []
        if len(needed) > len(spare):
            raise ExecutorError("this keyboard layout has no free keycodes for typing characters "
                                "it lacks")
        used = set(self._assigned.values())
        free = [c for c in spare if c not in used]
        evictable = [s for s in self._assigned if s not in needed]  # oldest first
        if len(free) < len(missing):
            # Re-mapping a keycode already typed with: an application still behind on its
            # events would read those keys with the new map. Give it time to catch up.
            time.sleep(self.EVICT_SETTLE)
        width = len(self._d.get_keyboard_mapping(spare[0], 1)[0])
        for sym in missing:
            code = free.pop(0) if free else self._assigned.pop(evictable.pop(0))
            self._assigned[sym] = code
            row = [sym, sym] + [0] * max(0, width - 2)
            self._d.change_keyboard_mapping(code, [row[:width]])
        self._d.sync()
        time.sleep(self.REMAP_SETTLE)

    def close(self) -> None:
        """Unmap the spare keycodes this typer used."""
        if not self._assigned:
            return
        # An application still working through queued key events fetches the keymap when it
        # reaches the mapping change; give it a moment so it still finds our characters.
        time.sleep(self.CLOSE_SETTLE)
        width = len(self._d.get_keyboard_mapping(next(iter(self._assigned.values())), 1)[0])
        for code in self._assigned.values():
            self._d.change_keyboard_mapping(code, [[0] * width])
        self._assigned.clear()
        self._d.sync()


class ClipboardTyper:
    """Off X11: ASCII through `pyautogui.write`, anything else pasted from the clipboard."""

    CHUNK = 8

    def __init__(self, gui: Any) -> None:
        self._gui = gui

    def type_text(self, text: str, should_stop: Callable[[], bool],
                  before_chunk: Callable[[], None]) -> int:
        """Type `text`; returns how many characters were typed (fewer when stopped)."""
        typed = 0
        for run in _runs(text):
            if run.isascii():
                for start in range(0, len(run), self.CHUNK):
                    if should_stop():
                        return typed
                    chunk = run[start:start + self.CHUNK]
                    self._gui.write(chunk)
                    typed += len(chunk)
            else:
                if should_stop():
                    return typed
                before_chunk()
                self._paste(run)
                typed += len(run)
        return typed

    def _paste(self, text: str) -> None:
        try:
            import pyperclip
        except ImportError as exc:  # pragma: no cover - a pyautogui dependency
            raise ExecutorError("typing non-ASCII text needs pyperclip (pip install pyperclip)") from exc
        pyperclip.copy(text)
        modifier = primary_modifier()
        self._gui.keyDown(modifier)
        try:
            self._gui.press("v")
        finally:
            self._gui.keyUp(modifier)
        time.sleep(0.05)  # the target reads the clipboard asynchronously; don't overwrite it early

    def close(self) -> None:
        """Nothing to release."""


def _runs(text: str) -> list[str]:
    """Split text into maximal runs of ASCII and non-ASCII characters."""
    runs: list[str] = []
    for char in text:
        if runs and runs[-1][-1].isascii() == char.isascii():
            runs[-1] += char
        else:
            runs.append(char)
    return runs
