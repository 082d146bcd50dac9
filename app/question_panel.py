"""The inline question panel: the model's ask_user_question, answered in the main window.

Shown above the live view while the worker waits; the answer goes back through the controller
to the worker's `QuestionBridge`. The question is model text: shown as plain text with every
control or bidi character visible. The panel counts down the confirmation time-out, after which
the worker ends the run by itself (the panel only stops offering an answer).
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from agent.termtext import visible
from app.qtcompat import emit

QUESTION_MAX_CHARS = 600  # longer questions are cut for display (the model keeps its text)


class QuestionPanel(QFrame):
    """Question, answer box, Answer and Don't answer; hidden when nothing is asked."""

    answered = Signal(object)  # str, or None when the person declines

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("question_panel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.question = QLabel()
        self.question.setTextFormat(Qt.TextFormat.PlainText)
        self.question.setWordWrap(True)
        self.question.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reply = QLineEdit()
        self.reply.setPlaceholderText(self.tr("Your answer to the agent"))
        self.send = QPushButton(self.tr("Answer"))
        self.send.setDefault(True)
        self.decline = QPushButton(self.tr("Don't answer"))
        self.countdown = QLabel()
        row = QHBoxLayout()
        for w in (self.reply, self.send, self.decline, self.countdown):
            row.addWidget(w, 1 if w is self.reply else 0)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(self.tr("The agent asks you:")))
        layout.addWidget(self.question)
        layout.addLayout(row)
        self.send.clicked.connect(self._send)
        self.reply.returnPressed.connect(self._send)
        self.decline.clicked.connect(lambda: self._finish(None))
        self._deadline = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._tick)
        self.hide()

    def ask(self, question: str, timeout: float) -> None:
        """Show `question` and wait up to `timeout` seconds for an answer."""
        text, most = visible(question), QUESTION_MAX_CHARS
        self.question.setText(text if len(text) <= most else text[:most - 1] + "…")
        self.reply.clear()
        self._deadline = time.monotonic() + timeout
        self._tick()
        self._timer.start()
        self.show()
        self.reply.setFocus()

    def close_question(self) -> None:
        """Hide without answering (the run ended or stopped)."""
        self._timer.stop()
        self.hide()

    def _send(self) -> None:
        if self.reply.text().strip():
            self._finish(self.reply.text())

    def _finish(self, answer: str | None) -> None:
        if not self.isVisible():
            return
        self.close_question()
        emit(self.answered, answer)

    def _tick(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            self.close_question()  # the worker has ended the run: no answer came in time
            return
        self.countdown.setText(self.tr("{0} s").format(int(left + 0.5)))
