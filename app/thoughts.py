"""The thoughts panel: the model's answer streamed as a person reads it, without the tool call."""

from __future__ import annotations

from PySide6.QtWidgets import QPlainTextEdit, QWidget

from agent.tool_call import split_thoughts


def visible_thoughts(text: str) -> str:
    """The part of a streamed answer a person reads: the thoughts before the tool call."""
    return split_thoughts(text)[0]


class ThoughtsView(QPlainTextEdit):
    """Read-only; each model answer is a paragraph of its thoughts, streamed as they come."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setPlaceholderText(self.tr("The model's thoughts stream here."))
        self._generated, self._shown = "", 0  # the current answer, and how much of it is shown

    def new_answer(self) -> None:
        """A generation starts: its thoughts go in a paragraph of their own."""
        self._generated, self._shown = "", 0
        if not self.document().isEmpty():
            self.appendPlainText("")

    def add_token(self, piece: str) -> None:
        """One streamed piece; shown once it is known not to be part of the tool call."""
        self._generated += piece
        new = visible_thoughts(self._generated)[self._shown:]
        if new:
            self._shown += len(new)
            cursor = self.textCursor()
            cursor.movePosition(cursor.MoveOperation.End)
            cursor.insertText(new)
            self.setTextCursor(cursor)
