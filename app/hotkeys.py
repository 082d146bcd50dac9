"""Global hotkeys on X11: XGrabKey on the root window, served by a listener thread (no Qt).

Callbacks run on the listener thread. The stop hotkey's callback sets the run's StopFlag directly,
so stopping never waits for the Qt event loop.
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_MODIFIER_NAMES = {"ctrl": "ControlMask", "control": "ControlMask", "shift": "ShiftMask",
                   "alt": "Mod1Mask", "super": "Mod4Mask", "win": "Mod4Mask", "meta": "Mod4Mask"}
_KEY_ALIASES = {"esc": "Escape", "escape": "Escape", "space": "space", "enter": "Return",
                "return": "Return", "tab": "Tab", "backspace": "BackSpace", "pause": "Pause"}


class HotkeyError(RuntimeError):
    """A hotkey cannot be registered; the message is for users."""


@dataclass(frozen=True)
class Hotkey:
    text: str
    modifiers: tuple[str, ...]
    key: str


def parse_hotkey(text: str) -> Hotkey:
    """'ctrl+alt+Escape' → Hotkey; raises HotkeyError for an unusable combination."""
    parts = [p.strip() for p in text.split("+") if p.strip()]
    if not parts:
        raise HotkeyError("the hotkey is empty")
    *mods, key = parts
    unknown = [m for m in mods if m.lower() not in _MODIFIER_NAMES]
    if unknown:
        raise HotkeyError(f"unknown modifier {unknown[0]!r} in {text!r} (use ctrl, alt, shift, super)")
    if not mods:
        raise HotkeyError(f"{text!r} has no modifier; a global hotkey needs ctrl, alt, shift or super")
    key = _KEY_ALIASES.get(key.lower(), key if len(key) > 1 else key.lower())
    return Hotkey(text, tuple(m.lower() for m in mods), key)


class GlobalHotkeys:
    """Grabs hotkeys on an X display and calls their callbacks from one listener thread."""

    def __init__(self, display: str | None = None) -> None:
        if sys.platform != "linux" or not (display or os.environ.get("DISPLAY")):
            raise HotkeyError("global hotkeys need an X11 desktop session (DISPLAY is not set)")
        try:
            from Xlib import XK, X, error
            from Xlib import display as xdisplay
        except ImportError as exc:
            raise HotkeyError("python-xlib is not installed (pip install deskhand)") from exc
        self._X, self._XK, self._error = X, XK, error
        try:
            self._d = xdisplay.Display(display)
        except Exception as exc:
            raise HotkeyError(f"cannot open the X display for hotkeys ({exc})") from exc
        self._root = self._d.screen().root
        self._bindings: dict[tuple[int, int], tuple[Hotkey, Callable[[], None]]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.last_fired: dict[str, float] = {}  # hotkey text -> time.monotonic() of the key event
        self._ignored = self._lock_masks()

    def _lock_masks(self) -> list[int]:
        """Modifier variants to grab too: CapsLock and NumLock must not disable the hotkey."""
        X = self._X
        numlock = 0
        keycode = self._d.keysym_to_keycode(self._XK.string_to_keysym("Num_Lock"))
        masks = [X.ShiftMask, X.LockMask, X.ControlMask, X.Mod1Mask, X.Mod2Mask, X.Mod3Mask,
                 X.Mod4Mask, X.Mod5Mask]
        for i, codes in enumerate(self._d.get_modifier_mapping()):
            if keycode and keycode in codes:
                numlock = masks[i]
        numlock = numlock or X.Mod2Mask
        return [0, X.LockMask, numlock, X.LockMask | numlock]

    def register(self, text: str, callback: Callable[[], None]) -> Hotkey:
        """Grab `text` on the root window; HotkeyError if it is malformed or already taken."""
        hotkey = parse_hotkey(text)
        X = self._X
        keysym = self._XK.string_to_keysym(hotkey.key)
        keycode = self._d.keysym_to_keycode(keysym) if keysym else 0
        if not keycode:
            raise HotkeyError(f"the key {hotkey.key!r} in {text!r} is not on this keyboard")
        mask = 0
        for m in hotkey.modifiers:
            mask |= getattr(X, _MODIFIER_NAMES[m])
        catcher = self._error.CatchError(self._error.BadAccess)
        with self._lock:
            for extra in self._ignored:
                self._root.grab_key(keycode, mask | extra, True, X.GrabModeAsync, X.GrabModeAsync,
                                    onerror=catcher)
            self._d.sync()  # errors arrive asynchronously; sync makes BadAccess visible now
            if catcher.get_error() is not None:
                for extra in self._ignored:
                    self._root.ungrab_key(keycode, mask | extra)
                self._d.sync()
                raise HotkeyError(f"the hotkey {text} is already taken by another application; "
                                  "choose another one in Settings")
            self._bindings[(keycode, mask)] = (hotkey, callback)
        return hotkey

    def unregister_all(self) -> None:
        with self._lock:
            for keycode, mask in self._bindings:
                for extra in self._ignored:
                    self._root.ungrab_key(keycode, mask | extra)
            self._bindings.clear()
            self._d.sync()

    def start(self) -> None:
        """Serve key events on a daemon thread until `close`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._listen, name="global-hotkeys", daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        X = self._X
        relevant = X.ShiftMask | X.ControlMask | X.Mod1Mask | X.Mod4Mask
        fd = self._d.fileno()
        while not self._closing.is_set():
            try:
                readable, _, _ = select.select([fd], [], [], 0.1)
                if not readable and not self._d.pending_events():
                    continue
                with self._lock:
                    events = []
                    while self._d.pending_events():
                        events.append(self._d.next_event())
            except Exception:
                if self._closing.is_set():
                    return
                time.sleep(0.1)  # a lost display: keep the thread quiet, the app reports it
                continue
            for event in events:
                if event.type != X.KeyPress:
                    continue
                binding = self._bindings.get((event.detail, event.state & relevant))
                if binding is not None:
                    hotkey, callback = binding
                    self.last_fired[hotkey.text] = time.monotonic()
                    try:
                        callback()
                    except Exception:
                        pass  # a failing callback must not kill the listener

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(1.0)
        try:
            self.unregister_all()
            self._d.close()
        except Exception:
            pass
