"""Text typers: type any Unicode text, by keysym through XTest on X11, by clipboard elsewhere.

`pyautogui.write` only knows ASCII. On X11 `XTestTyper` sends keysyms instead: a character
missing from the keyboard layout is put on a spare (unmapped) keycode, which is pressed through
XTest (the technique xdotool uses). Elsewhere `ClipboardTyper` sends ASCII through pyautogui and
pastes the rest from the clipboard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from agent.errors import ExecutorError
from agent.keys import primary_modifier


class TextTyper(Protocol):
    """Types text in chunks, checking `should_stop` and calling `before_chunk` between them."""

    def type_text(self, text: str, should_stop: Callable[[], bool],
                  before_chunk: Callable[[], None]) -> int: ...

    def close(self) -> None: ...


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
