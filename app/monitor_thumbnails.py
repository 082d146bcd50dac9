"""Small pictures of each monitor for the monitor selector, captured off the GUI thread."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from app.qtcompat import emit
from app.to_gui import to_gui
from app.worker import to_qimage


class MonitorThumbnails(QObject):
    """Captures one small image per monitor on a background thread."""

    ready = Signal(list)  # [(index, name, QImage | None)]

    def load(self, screen_factory) -> None:
        deliver = to_gui(self._ready)  # the thread holds no Qt object (app/to_gui.py)

        def work() -> None:
            found = []
            try:
                screen = screen_factory()
                for m in screen.monitors():
                    if m.index == 0:
                        continue
                    try:
                        img = to_qimage(screen.capture(m.index).image, (96, 60))
                    except Exception:
                        img = None
                    found.append((m.index, f"{m.width}×{m.height}", img))
            except Exception:
                found = []
            deliver(found)  # dropped if the window closed meanwhile

        threading.Thread(target=work, name="monitor-thumbnails", daemon=True).start()

    def _ready(self, found: list) -> None:
        emit(self.ready, found)
