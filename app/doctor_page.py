"""The first-run dialog's "This computer" section: `deskhand doctor`'s checks, line by line.

The checks (`app/doctor.py`) run on a thread (the offline self-test starts a process, the
capture check draws a test square); each line appears as soon as its check is done, handed to
the GUI thread by `app/to_gui.py` (the thread holds no widget, so closing the dialog mid-check
is safe). They start when the panel is first shown (a dialog built and never shown draws
nothing on the screen).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from agent.doctor import Check, Level
from app.qtcompat import emit
from app.to_gui import to_gui

COLOURS = {Level.OK: "#2E7D32", Level.WARN: "#B26A00", Level.FAIL: "#D64545"}


def check_html(check: Check) -> str:
    """One line: the level in its colour, the check's name and what was found, then the fix."""
    colour = COLOURS[check.level]
    fix = f"<br>&nbsp;&nbsp;&nbsp;<i>Fix:</i> {escape(check.fix)}" if check.fix else ""
    return (f"<span style='color:{colour}'><b>{check.level.value}</b></span> "
            f"<b>{escape(check.name)}</b>: {escape(check.detail)}{fix}")


class DoctorPanel(QGroupBox):
    """The checks of `deskhand doctor`, run when the panel is first shown and on "Check again"."""

    checked = Signal(object)  # each Check as its line appears (on the GUI thread)
    finished = Signal()  # every check is done

    def __init__(self, parent: QWidget | None = None, *,
                 checks: Callable[[], Iterable[Check]] | None = None, start: bool = True) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("This computer (the checks of `deskhand doctor`)"))
        self._checks = checks or _default_checks
        self.results: list[Check] = []
        self._start = start
        self.lines = QLabel()
        self.lines.setWordWrap(True)
        self.lines.setTextFormat(Qt.TextFormat.RichText)
        self.summary = QLabel()
        self.again = QPushButton(self.tr("Check again"))
        self.again.clicked.connect(self.run)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.again)
        layout = QVBoxLayout(self)
        layout.addWidget(self.lines)
        layout.addLayout(row)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._start:
            self._start = False
            self.run()

    def run(self) -> None:
        """Run every check again, off the GUI thread."""
        self.results = []
        self.lines.setText("")
        self.summary.setText(self.tr("Checking…"))
        self.again.setEnabled(False)
        checks, add, done = self._checks, to_gui(self._add), to_gui(self._done)

        def work() -> None:
            found = iter(checks())
            while True:
                try:
                    check = next(found)
                except StopIteration:
                    break
                except Exception as exc:  # a check that crashes is a failed line, never a crash
                    check = Check("doctor", Level.FAIL, f"a check crashed: {exc}",
                                  "run `deskhand doctor` in a terminal and report it")
                    found = iter(())
                if not add(check):
                    return  # the dialog was closed meanwhile
            done()

        threading.Thread(target=work, name="deskhand-doctor", daemon=True).start()

    def _add(self, check: Check) -> None:
        self.results.append(check)
        self.lines.setText("<br>".join(check_html(c) for c in self.results))
        emit(self.checked, check)

    def _done(self) -> None:
        failed = sum(c.level is Level.FAIL for c in self.results)
        warned = sum(c.level is Level.WARN for c in self.results)
        self.summary.setText(self.tr("{0} failed, {1} to read").format(failed, warned)
                             if failed or warned else self.tr("Everything is ready."))
        self.again.setEnabled(True)
        emit(self.finished)


def _default_checks() -> Iterable[Check]:
    from app.doctor import checks

    return checks()
