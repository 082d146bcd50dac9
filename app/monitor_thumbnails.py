"""Small pictures of each monitor for the monitor selector, captured off the GUI thread."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from app.qtcompat import emit
from app.worker import to_qimage


class MonitorThumbnails(QObject):
    """Captures one small image per monitor on a background thread."""

    ready = Signal(list)  # [(index, name, QImage | None)]

    def load(self, screen_factory) -> None:
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
            try:
                emit(self.ready, found)
            except RuntimeError:
                pass  # the window closed while the thumbnails were being captured

        threading.Thread(target=work, name="monitor-thumbnails", daemon=True).start()
