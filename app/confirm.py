"""The confirmation dialog: the region around the target, the action, the thoughts, and a time-out."""

from __future__ import annotations

import time

from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from agent.actions import describe
from agent.safety import Decision
from app.qtcompat import emit
from app.worker import ConfirmView


def _marked(view: ConfirmView) -> QPixmap | None:
    if view.crop is None or view.crop.isNull():
        return None
    pix = QPixmap.fromImage(view.crop)
    if view.marker is not None:
        p = QPainter(pix)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor("#FF3D7F"), 3))
        centre = QPointF(*view.marker)
        p.drawEllipse(centre, 16, 16)
        p.drawEllipse(centre, 3, 3)
        p.end()
    return pix


class ConfirmDialog(QDialog):
    """Asks Allow once / Allow for this run / Deny; denies by itself after `timeout` seconds."""

    decided = Signal(object)  # Decision

    def __init__(self, view: ConfirmView, timeout: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Deskhand: confirm this action"))
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, True)
        self.setModal(False)  # the GUI keeps running; the worker is what waits
        self.view = view
        self.decision: Decision | None = None
        self._deadline = time.monotonic() + timeout

        req = view.request
        head = QLabel(self.tr("The agent wants to: <b>{0}</b>").format(
            _escape(describe(req.action))))
        head.setWordWrap(True)
        why = QLabel(self.tr("Why you are asked: {0}").format(_escape("; ".join(req.reasons))))
        why.setWordWrap(True)
        why.setObjectName("reasons")
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        if req.window_title:
            layout.addWidget(QLabel(self.tr("Focused window: {0}").format(_escape(req.window_title))))
        layout.addWidget(why)
        pix = _marked(view)
        if pix is not None:
            shot = QLabel()
            shot.setObjectName("region")
            shot.setPixmap(pix)
            shot.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(shot)
        thoughts = QPlainTextEdit(req.thoughts or self.tr("(the model gave no reasoning)"))
        thoughts.setReadOnly(True)
        thoughts.setMaximumHeight(110)
        layout.addWidget(QLabel(self.tr("The model's thoughts:")))
        layout.addWidget(thoughts)
        self.countdown = QLabel()
        layout.addWidget(self.countdown)

        buttons = QHBoxLayout()
        self.allow_once = QPushButton(self.tr("Allow once"))
        self.allow_run = QPushButton(self.tr("Allow for this run"))
        self.deny = QPushButton(self.tr("Deny"))
        self.deny.setDefault(True)  # Enter must never approve a risky action by accident
        for button, decision in ((self.allow_once, Decision.ALLOW_ONCE),
                                 (self.allow_run, Decision.ALLOW_RUN), (self.deny, Decision.DENY)):
            button.clicked.connect(lambda _=False, d=decision: self.finish(d))
            buttons.addWidget(button)
        layout.addLayout(buttons)

        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(250)
        self._tick()

    def _tick(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            self.finish(Decision.DENY)
            return
        self.countdown.setText(self.tr("Denied automatically in {0} s.").format(int(left + 0.999)))

    def finish(self, decision: Decision) -> None:
        """Record the answer once and close."""
        if self.decision is not None:
            return
        self.decision = decision
        self._timer.stop()
        emit(self.decided, decision)
        self.accept() if decision is not Decision.DENY else self.reject()

    def closeEvent(self, event) -> None:
        self.finish(Decision.DENY)  # closing the window is a "no"
        super().closeEvent(event)

    def reject(self) -> None:
        if self.decision is None:
            self.finish(Decision.DENY)
            return
        super().reject()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
