"""A plain X window that takes the keyboard focus and timestamps every key press it receives."""

from __future__ import annotations

import select
import threading
import time


class KeyLogger:
    """Full-screen window on `display`; `presses` holds (time.monotonic(), keycode) per KeyPress."""

    def __init__(self, display: str) -> None:
        from Xlib import X
        from Xlib import display as xdisplay

        self._X = X
        self.d = xdisplay.Display(display)
        screen = self.d.screen()
        self.window = screen.root.create_window(
            0, 0, screen.width_in_pixels, screen.height_in_pixels, 0, screen.root_depth,
            X.InputOutput, X.CopyFromParent, background_pixel=screen.white_pixel,
            event_mask=X.KeyPressMask | X.StructureNotifyMask)
        self.window.map()
        self.d.sync()
        self._wait_mapped()
        self.window.set_input_focus(X.RevertToParent, X.CurrentTime)
        self.d.sync()
        self.presses: list[tuple[float, int]] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="key-logger", daemon=True)
        self._thread.start()

    def _wait_mapped(self) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            while self.d.pending_events():
                if self.d.next_event().type == self._X.MapNotify:
                    return
            time.sleep(0.01)

    def keycode(self, keysym_name: str) -> int:
        from Xlib import XK

        return self.d.keysym_to_keycode(XK.string_to_keysym(keysym_name))

    def _listen(self) -> None:
        fd = self.d.fileno()
        while not self._closing.is_set():
            readable, _, _ = select.select([fd], [], [], 0.05)
            if not readable and not self.d.pending_events():
                continue
            while self.d.pending_events():
                event = self.d.next_event()
                if event.type == self._X.KeyPress:
                    self.presses.append((time.monotonic(), event.detail))

    def close(self) -> None:
        self._closing.set()
        self._thread.join(1)
        self.window.destroy()
        self.d.close()
