"""The confirmation dialog: the region around the target, the action, the thoughts, and a time-out."""

from __future__ import annotations

import html
import re
import time

from PySide6.QtCore import QCoreApplication, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from agent.actions import describe
from agent.safety import Decision, read_on_screen
from agent.termtext import visible
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
        # Everything quoted here comes from the model or the screen: escaped into the one rich
        # label, plain text elsewhere, and every control or bidi character made visible.
        head = QLabel(self.tr("The agent wants to: <b>{0}</b>").format(
            _escape(_shorten(visible(describe(req.action), multiline=False)))))
        head.setTextFormat(Qt.TextFormat.RichText)
        head.setWordWrap(True)
        why = QLabel(self.tr("Why you are asked: {0}").format(
            _shorten(visible("; ".join(req.reasons), multiline=False))))
        why.setTextFormat(Qt.TextFormat.PlainText)
        why.setWordWrap(True)
        why.setObjectName("reasons")
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        if req.window_title:
            title = QLabel(self.tr("Focused window: {0}").format(
                _shorten(visible(req.window_title, multiline=False))))
            title.setTextFormat(Qt.TextFormat.PlainText)
            title.setWordWrap(True)
            layout.addWidget(title)
        read = QLabel(visible(read_on_screen(req.label), multiline=False))  # where the action lands
        read.setTextFormat(Qt.TextFormat.PlainText)
        read.setWordWrap(True)
        read.setObjectName("label")
        layout.addWidget(read)
        layout.addWidget(why)
        pix = _marked(view)
        if pix is not None:
            shot = QLabel()
            shot.setObjectName("region")
            shot.setPixmap(pix)
            shot.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(shot)
        thoughts = QPlainTextEdit(visible(req.thoughts) or self.tr("(the model gave no reasoning)"))
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


_SHOWN_CHARS = 300  # more than this fills the dialog several times over; the rest is counted


def _shorten(text: str, limit: int = _SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters (saying how many were left out), with wrap points."""
    extra = ""
    if len(text) > limit:
        extra = QCoreApplication.translate("ConfirmDialog", " … ({0} more characters not shown)").format(
            len(text) - limit)
        text = text[:limit]
    # Qt wraps only at spaces: give long unbroken runs (URLs) a zero-width break point.
    return re.sub(r"(\S{40})", "\\1\u200b", text) + extra


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
