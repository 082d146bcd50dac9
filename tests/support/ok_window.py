"""A test window for "click the OK button": a small Qt dialog on a real X display.

Usage: python -m tests.support.ok_window OUT_DIR [X Y]
Shows a window titled "Deskhand test" with a line of text and one OK button at (X, Y) (default
430, 300); writes OUT_DIR/ready.json (the button's rectangle on the screen) once it is shown,
and OUT_DIR/clicked.json (where the click landed, in screen pixels) when OK is pressed, then
closes. Closes by itself after 10 minutes so a failed test never leaves it behind.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "xcb"

from PySide6.QtCore import QPoint, QTimer
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QApplication, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    x, y = (int(argv[1]), int(argv[2])) if len(argv) >= 3 else (430, 300)
    app = QApplication([sys.argv[0]])
    window = QWidget()
    window.setWindowTitle("Deskhand test")
    layout = QVBoxLayout(window)
    layout.addWidget(QLabel("The report was saved. Press OK to continue."))
    row = QHBoxLayout()
    row.addStretch(1)
    ok = QPushButton("OK")
    row.addWidget(ok)
    layout.addLayout(row)
    window.resize(420, 140)
    window.move(x, y)

    def clicked() -> None:
        at = QCursor.pos()
        (out / "clicked.json").write_text(json.dumps({"x": at.x(), "y": at.y()}))
        window.close()

    def shown() -> None:
        top_left = ok.mapToGlobal(QPoint(0, 0))
        rect = [top_left.x(), top_left.y(), ok.width(), ok.height()]
        (out / "ready.json").write_text(json.dumps({"ok": rect, "window": int(window.winId())}))

    ok.clicked.connect(clicked)
    window.show()
    QTimer.singleShot(500, shown)
    QTimer.singleShot(600_000, app.quit)
    app.setQuitOnLastWindowClosed(True)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
