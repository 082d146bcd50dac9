"""The step list: one row per step with action, per-phase timings and errors; click to inspect."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from agent.loop import PHASES
from app.plaintext import tooltip
from app.qtcompat import emit

ERROR_COLOUR = QColor("#D64545")


SHORT = {"capture": "cap", "prompt": "prm", "generate": "gen", "parse": "prs", "look": "look", "gate": "gate",
         "act": "act", "settle": "set"}


def format_timings(timings: dict[str, float], *, short: bool = False) -> str:
    """'capture 0.02 · generate 1.31 · …' for the phases a step went through (seconds)."""
    names = SHORT if short else {p: p for p in PHASES}
    return " · ".join(f"{names[p]} {timings[p]:.2f}" for p in PHASES
                      if p in timings and (not short or timings[p] >= 0.005))


class StepList(QTreeWidget):
    """Rows carry an arbitrary payload (a StepView or a recorded step dict) for the inspector."""

    picked = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels([self.tr("#"), self.tr("Action"), self.tr("Time"), self.tr("Phases (s)"),
                              self.tr("Error")])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setColumnWidth(0, 36)
        self.setColumnWidth(1, 200)
        self.setColumnWidth(2, 56)
        self.setColumnWidth(3, 170)
        self.itemSelectionChanged.connect(self._selected)

    def add_step(self, index: int, summary: str, timings: dict[str, float], error: str | None,
                 payload: object) -> QTreeWidgetItem:
        """Append one row; the newest row scrolls into view."""
        total = sum(timings.get(p, 0.0) for p in PHASES)
        item = QTreeWidgetItem([str(index + 1), summary, f"{total:.2f} s",
                                format_timings(timings, short=True), error or ""])
        item.setToolTip(1, tooltip(summary))  # model text: tooltips would render HTML
        item.setToolTip(2, format_timings(timings))
        item.setToolTip(3, format_timings(timings))
        item.setData(0, Qt.ItemDataRole.UserRole, payload)
        if error:
            for col in range(5):
                item.setForeground(col, QBrush(ERROR_COLOUR))
            item.setToolTip(4, tooltip(error))
        self.addTopLevelItem(item)
        self.scrollToItem(item)
        return item

    def _selected(self) -> None:
        items = self.selectedItems()
        if items:
            emit(self.picked, items[0].data(0, Qt.ItemDataRole.UserRole))
