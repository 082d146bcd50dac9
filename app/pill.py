"""The status pill shown instead of the main window during a run: small, on top, never focused."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QGuiApplication, QPainterPath, QRegion
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from app.icons import icon
from app.plaintext import plain
from app.qtcompat import emit

PILL_STYLE = """
#pill { background: #1F2A44; border-radius: 16px; border: 1px solid #3B6FE0; }
#pill QLabel { color: white; }
#pill QPushButton { color: white; background: #D64545; border: none; border-radius: 10px;
                    padding: 3px 12px; font-weight: bold; }
#pill QPushButton:hover { background: #E05555; }
"""


class StatusPill(QFrame):
    """Always on top, frameless, never takes focus (so typing keeps going to the target app)."""

    stop_clicked = Signal()
    show_window_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint
                         | Qt.WindowType.WindowStaysOnTopHint
                         | Qt.WindowType.WindowDoesNotAcceptFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating, True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setObjectName("pill")
        self.setStyleSheet(PILL_STYLE)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 8, 6)
        self.state = QLabel()
        self.state.setPixmap(icon("state-running").pixmap(18, 18))
        self.text = plain(QLabel(self.tr("Starting…")))  # shows task and model text
        self.text.setMinimumWidth(220)
        self.stop = QPushButton(icon("stop"), self.tr("Stop"))
        self.stop.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stop.clicked.connect(self.stop_clicked)
        row.addWidget(self.state)
        row.addWidget(self.text, 1)
        row.addWidget(self.stop)
        self.looking = False  # hidden for the instant the agent captures or acts

    def set_status(self, text: str, state: str = "running") -> None:
        self.text.setText(text)
        self.state.setPixmap(icon(f"state-{state}").pixmap(18, 18))

    def place(self) -> None:
        """Top centre of the screen under the cursor, clear of most title bars' buttons."""
        self.adjustSize()
        screen = QGuiApplication.screenAt(QPoint(0, 0)) or QGuiApplication.primaryScreen()
        if screen is None:
            return
        geo = screen.availableGeometry()
        self.move(geo.left() + (geo.width() - self.width()) // 2, geo.top() + 4)

    def resizeEvent(self, event) -> None:
        # Rounded corners by shape, not by transparency: no compositor is needed for them.
        path = QPainterPath()
        path.addRoundedRect(QRectF(self.rect()), 16, 16)
        self.setMask(QRegion(path.toFillPolygon().toPolygon()))
        super().resizeEvent(event)

    def mouseDoubleClickEvent(self, _event) -> None:
        emit(self.show_window_clicked)
