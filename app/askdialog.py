"""`python -m app.askdialog`: the confirmation question of a headless MCP run, as its own process.

`deskhand mcp` without the app asks the person through this small dialog (or zenity/kdialog):
the question comes as JSON on stdin ({"title", "text", "timeout"}), the answer goes to stdout
as one word: allow_once, allow_run or deny. Deny is the default button, the answer when the
window is closed, and the answer after the time-out.
"""

from __future__ import annotations

import json
import sys

from agent.safety import Decision


def main() -> int:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    try:
        question = json.loads(sys.stdin.read(1 << 16) or "{}")
    except ValueError:
        question = {}
    app = QApplication.instance() or QApplication(sys.argv[:1])
    box = QMessageBox(QMessageBox.Icon.Warning, str(question.get("title", "Deskhand")),
                      str(question.get("text", "")))
    box.setTextFormat(Qt.TextFormat.PlainText)  # model and page text are shown, never rendered
    once = box.addButton("Allow &once", QMessageBox.ButtonRole.AcceptRole)
    run = box.addButton("Allow for this &run", QMessageBox.ButtonRole.AcceptRole)
    deny = box.addButton("&Deny", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(deny)
    box.setEscapeButton(deny)
    timeout = float(question.get("timeout", 60))
    QTimer.singleShot(int(timeout * 1000), box.reject)
    box.exec()
    clicked = box.clickedButton()
    answer = (Decision.ALLOW_ONCE if clicked is once else Decision.ALLOW_RUN if clicked is run
              else Decision.DENY)
    print(answer.value, flush=True)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
