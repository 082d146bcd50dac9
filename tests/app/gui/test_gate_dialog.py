"""The confirmation dialog shows what the gate read on screen at the target (issue 10)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from agent.actions import LeftClick
from agent.safety import ConfirmRequest
from app.confirm import ConfirmDialog
from app.worker import ConfirmView


@dataclass(frozen=True)
class Label:
    text: str
    role: str = ""
    source: str = "none"
    seconds: float = 0.0


def _dialog(qtbot, label) -> QLabel:
    request = ConfirmRequest(LeftClick((5, 5)), "Click the yellow button.",
                             ("the target on screen reads 'Place order' (place order)",), "Shop", label)
    dialog = ConfirmDialog(ConfirmView(request, None, None), timeout=30)
    qtbot.addWidget(dialog)
    shown = dialog.findChild(QLabel, "label")
    assert shown is not None
    return shown


def test_dialog_names_the_label_its_role_and_how_it_was_read(qtbot) -> None:
    shown = _dialog(qtbot, Label("Place order", "push button", "atspi"))
    assert "Place order" in shown.text() and "push button" in shown.text()
    assert "accessibility" in shown.text()
    assert "text recognition" in _dialog(qtbot, Label("Payer", "", "ocr")).text()


def test_dialog_says_when_nothing_was_read(qtbot) -> None:
    assert "nothing" in _dialog(qtbot, None).text()
    assert "nothing" in _dialog(qtbot, Label("", "", "none")).text()


def test_page_text_in_the_label_is_shown_as_plain_visible_text(qtbot) -> None:
    shown = _dialog(qtbot, Label("<b><font size=7>Cancel</font></b>\u202eredro ecalp", "push button", "ocr"))
    assert shown.textFormat() == Qt.TextFormat.PlainText
    assert "<b>" in shown.text() and "\u202e" not in shown.text()
