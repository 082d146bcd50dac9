"""The quick-command prompt: a small frameless box near the cursor; Enter starts the run."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QCursor, QGuiApplication
from PySide6.QtWidgets import QCompleter, QFrame, QHBoxLayout, QLabel, QLineEdit, QWidget

from app.icons import icon
from app.qtcompat import emit

STYLE = """
#quick { background: #1F2A44; border: 1px solid #3B6FE0; border-radius: 12px; }
#quick QLineEdit { background: #FFFFFF; color: #111; border: none; border-radius: 8px;
                   padding: 6px 10px; font-size: 15px; }
"""


class QuickPrompt(QFrame):
    """Emits `submitted(task)` on Enter; Escape or losing focus closes it."""

    submitted = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint
                         | Qt.WindowType.WindowStaysOnTopHint)
        self.setObjectName("quick")
        self.setStyleSheet(STYLE)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 8, 10, 8)
        logo = QLabel()
        logo.setPixmap(icon("deskhand").pixmap(24, 24))
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(self.tr("Tell Deskhand what to do, then press Enter"))
        self.edit.setMinimumWidth(460)
        self.edit.returnPressed.connect(self._submit)
        row.addWidget(logo)
        row.addWidget(self.edit, 1)

    def open(self, recent: list[str], at: QPoint | None = None, *,
             saved: Sequence[str] = ()) -> None:
        """Show near `at` (the cursor by default), kept on that screen, with the text focused.

        `saved` are saved-task names (a name replays its run); they are offered first.
        """
        completer = QCompleter([*saved, *(t for t in recent if t not in saved)], self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.edit.setCompleter(completer)
        self.edit.clear()
        self.adjustSize()
        pos = at or QCursor.pos()
        screen = QGuiApplication.screenAt(pos) or QGuiApplication.primaryScreen()
        x, y = pos.x() - self.width() // 2, pos.y() + 16
        if screen is not None:
            g = screen.availableGeometry()
            x = min(max(g.left(), x), g.right() - self.width())
            y = min(max(g.top(), y), g.bottom() - self.height())
        self.move(x, y)
        self.show()
        self.raise_()
        self.activateWindow()  # the prompt is the one window that must take the keyboard
        self.edit.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def _submit(self) -> None:
        task = self.edit.text().strip()
        if task:
            self.hide()
            emit(self.submitted, task)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.hide()
            return
        super().keyPressEvent(event)
