"""The input back end: pyautogui bound to one display, a text typer, and the lock they share.

This is the single I/O seam under `agent.executor`: the dispatch there turns an Action into
calls on an `InputBackend` (a pyautogui-like module plus a `TextTyper`), and only this package
touches pyautogui, Xlib and the clipboard.

pyautogui is imported lazily: on X11 it (and its `mouseinfo` dependency) opens $DISPLAY at
import time, and it keeps one module-global X connection. Each executor binds to its own
display (see `PyAutoGUIBackend`), which lets tests drive several Xvfb servers in one process.

Which input space the OS wants (`INPUT_IS_LOGICAL`):
- X11: XTest takes root-window pixels, the same physical pixels mss captures -> physical.
- macOS: Quartz events take points -> logical (a Retina monitor has scale 2).
- Windows: logical as well. mss makes the process DPI-aware, so Windows reports physical
  monitor rectangles and `Screen` computes scale 1.0 there; logical then equals physical and
  stays correct if a monitor ever reports another scale.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, Protocol

from agent.errors import ExecutorError
from agent.inputs.typers import ClipboardTyper, TextTyper, XTestTyper

INPUT_IS_LOGICAL = sys.platform in ("darwin", "win32")
IS_X11 = sys.platform.startswith(("linux", "freebsd", "openbsd"))
# pyautogui's X connection is one module global: executors on different threads take turns.
INPUT_LOCK = threading.RLock()


class InputBackend(Protocol):
    """The single I/O seam: a pyautogui-like module plus a text typer."""

    gui: Any
    typer: TextTyper

    def activate(self) -> None: ...

    def close(self) -> None: ...


def open_backend(display: str | None) -> InputBackend:
    """Open the real input backend for `display` (tests replace `agent.executor._open_backend`)."""
    return PyAutoGUIBackend(display)


class PyAutoGUIBackend:
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
            with scoped_environ("DISPLAY", display):
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
def scoped_environ(name: str, value: str) -> Iterator[None]:
    """`os.environ[name] = value` for the block (processes started in it inherit it), then as
    it was."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def failsafe_type(gui: Any) -> type[BaseException] | tuple[()]:
    """The exception pyautogui raises when the pointer reaches a fail-safe corner."""
    return getattr(gui, "FailSafeException", ())


def display_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning the display is gone or unreachable (not a bug in our code)."""
    errors: list[type[BaseException]] = [OSError]
    if IS_X11:
        try:
            import Xlib.error
        except ImportError:
            pass
        else:
            errors += [Xlib.error.DisplayError, Xlib.error.ConnectionClosedError, Xlib.error.XError]
    return tuple(errors)
