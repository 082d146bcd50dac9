"""Model, page and server text is shown as typed in every widget: never as rich text.

Each test puts markup (and terminal/bidi controls) where a hostile model or page can put it,
and checks what Qt would render: the widget's text format, or the tooltip/notification string
laid out the way Qt lays it out (rich text when Qt::mightBeRichText says so).
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as QtGuiNamespace
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QLabel, QMessageBox, QPlainTextEdit, QSystemTrayIcon

from agent.actions import VisitUrl
from agent.loop import RunResult, RunStatus
from agent.safety import ConfirmRequest, Decision
from agent.trajectory import TrajectoryStore
from app.confirm import ConfirmDialog
from app.controller import RunController
from app.firstrun import ModelSetupDialog
from app.history import HistoryView
from app.pill import StatusPill
from app.settings import Settings
from app.steps import StepList
from app.tray import Tray
from app.window import MainWindow
from app.worker import ConfirmView

pytestmark = pytest.mark.gui

BIG = "<b><font size=7>All done - safe to leave</font></b>"
IMG = '<img src="file:///etc/hosts" width=900 height=900>'


def rendered(text: str, fmt: Qt.TextFormat = Qt.TextFormat.AutoText) -> str:
    """What a person sees for `text` shown with `fmt` (AutoText: Qt guesses, as tooltips do)."""
    doc = QTextDocument()
    rich = fmt == Qt.TextFormat.RichText or (
        fmt == Qt.TextFormat.AutoText and QtGuiNamespace.mightBeRichText(text))
    doc.setHtml(text) if rich else doc.setPlainText(text)
    return doc.toPlainText()


def shown(label: QLabel) -> str:
    return rendered(label.text(), label.textFormat())


def test_status_pill_shows_markup_as_text(qtbot) -> None:
    pill = StatusPill()
    qtbot.addWidget(pill)
    pill.set_status(BIG)
    assert pill.text.textFormat() == Qt.TextFormat.PlainText
    assert shown(pill.text) == BIG
    normal = QLabel("All done")
    assert pill.text.sizeHint().height() <= normal.sizeHint().height() + 2  # not 7x the font


def test_step_list_tooltips_show_markup_as_text(qtbot) -> None:
    steps = StepList()
    qtbot.addWidget(steps)
    item = steps.add_step(0, f"type {IMG!r}", {"generate": 1.0}, f"error {IMG}", None)
    assert IMG in rendered(item.toolTip(1))
    assert IMG in rendered(item.toolTip(4))
    assert item.text(1) == f"type {IMG!r}"  # item text itself is always plain


def test_window_status_and_error_box_are_plain(qtbot, services) -> None:
    controller = RunController(Settings(model="fake-model", hide_window_during_run=False),
                               services)
    window = MainWindow(controller)
    qtbot.addWidget(window)
    window._on_finished(RunResult(RunStatus.SUCCESS, BIG, "done", 2, 1.0))
    assert window.status_phase.textFormat() == Qt.TextFormat.PlainText
    assert BIG in shown(window.status_phase)
    window.show_error(f"the server said: {IMG}")
    box = window.findChild(QMessageBox, "error-box")
    assert box is not None and box.textFormat() == Qt.TextFormat.PlainText
    assert IMG in rendered(box.text(), box.textFormat())


def test_confirm_dialog_quotes_everything_literally(qtbot) -> None:
    url = "https://bank.test/\u202egpj.exe\x1b[2K\rSafe: nothing to confirm"
    request = ConfirmRequest(VisitUrl(url), thoughts=f"{BIG}\u202eeulav", reasons=(f"pay {IMG}",),
                             window_title=f"Shop {BIG}")
    dialog = ConfirmDialog(ConfirmView(request, None, None), timeout=60)
    qtbot.addWidget(dialog)
    labels = {w.text(): w for w in dialog.findChildren(QLabel) if w.text()}
    seen = "\n".join(shown(w) for w in labels.values()).replace("\u200b", "")  # wrap points
    for literal in (IMG, f"Shop {BIG}", "https://bank.test/\\u202egpj.exe\\x1b[2K\\rSafe"):
        assert literal in seen
    # No control or bidi character reaches any label or the thoughts box.
    thoughts = dialog.findChildren(QPlainTextEdit)[0]
    for text in [seen, thoughts.toPlainText()]:
        assert not any(ch in text for ch in "\x1b\r\u202e")
    assert BIG in thoughts.toPlainText()
    dialog.finish(Decision.DENY)


def test_confirm_dialog_fits_a_huge_url_and_says_it_was_cut(qtbot) -> None:
    request = ConfirmRequest(VisitUrl("https://x.test/" + "a" * 5000 + "?pay=all"), "",
                             ("r" * 3000,), "w" * 3000)
    dialog = ConfirmDialog(ConfirmView(request, None, None), timeout=60)
    qtbot.addWidget(dialog)
    assert dialog.sizeHint().width() < 1000  # was 40,000 pixels: the end of the URL off-screen
    assert any("more characters not shown" in shown(w) for w in dialog.findChildren(QLabel))
    dialog.finish(Decision.DENY)


def test_model_setup_dialog_quotes_errors_literally(qtbot) -> None:
    dialog = ModelSetupDialog(reason=f"the server said {IMG}", ask=lambda *a: False)
    qtbot.addWidget(dialog)
    dialog.status.setText(f"export: {BIG}")
    for label in (dialog.reason, dialog.status):
        assert label.textFormat() == Qt.TextFormat.PlainText


def test_history_tooltips_and_message_are_plain(qtbot, tmp_path) -> None:
    store = TrajectoryStore(tmp_path)
    recorder = store.start(IMG, {}, keep_screenshots=False)
    recorder.finish(RunResult(RunStatus.SUCCESS, BIG, "done", 0, 0.1))
    history = HistoryView(lambda: store, open_exports=False)
    qtbot.addWidget(history)
    history.refresh()
    item = history.runs.topLevelItem(0)
    assert item.text(1) == IMG
    assert IMG in rendered(item.toolTip(1)) and BIG in rendered(item.toolTip(1))
    assert history.message.textFormat() == Qt.TextFormat.PlainText


def test_tray_notifications_toast_and_menu_are_plain(qtbot, monkeypatch) -> None:
    class Info:
        id, task, status = "r1", f"R&D {BIG}\tCtrl+Q", "success"

    tray = Tray(lambda: [Info()])
    # No tray on the offscreen platform: the in-app toast is used.
    tray.available = False
    tray.notify("Deskhand", f"Done: {BIG}")
    assert tray.toast.body.textFormat() == Qt.TextFormat.PlainText
    assert tray.toast.title.textFormat() == Qt.TextFormat.PlainText
    assert shown(tray.toast.body) == f"Done: {BIG}"
    # With a tray, the desktop's notification server reads <, > and & as markup.
    sent = []
    monkeypatch.setattr(QSystemTrayIcon, "supportsMessages", staticmethod(lambda: True))
    monkeypatch.setattr(QSystemTrayIcon, "showMessage",
                        lambda self, title, body, *rest: sent.append((title, body)))
    tray.available = True
    tray.notify(f"<i>{IMG}</i>", f"Done: {BIG} & more")
    (title, body), = sent
    assert not any(ch in title + body for ch in "<>&")
    assert "All done - safe to leave" in body and "more" in body
    # Recent runs: `&` is not a mnemonic, a tab does not fake a shortcut column.
    tray._fill_recent()
    label = tray.recent.actions()[0].text()
    assert "\t" not in label and "R&&D" in label
    tray.close()
