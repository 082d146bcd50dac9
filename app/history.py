"""Past runs from the trajectory store: a list, a step-by-step viewer, and export to HTML."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QImage
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.icons import icon
from app.liveview import LiveView
from app.overlay import overlay_for_record
from app.qtcompat import emit
from app.steps import StepList, format_timings


class HistoryView(QWidget):
    """Lists runs newest first; selecting one shows its steps; a step shows its screenshot."""

    exported = Signal(str)

    def __init__(self, store_factory, parent: QWidget | None = None, *, open_exports: bool = True) -> None:
        super().__init__(parent)
        self._store_factory = store_factory
        self._open_exports = open_exports
        self.record = None
        self.runs = QTreeWidget()
        self.runs.setHeaderLabels([self.tr("Started"), self.tr("Task"), self.tr("Result"),
                                   self.tr("Steps")])
        self.runs.setRootIsDecorated(False)
        self.runs.setColumnWidth(0, 130)
        self.runs.setColumnWidth(1, 240)
        self.runs.itemSelectionChanged.connect(self._run_selected)
        self.steps = StepList()
        self.steps.picked.connect(self._step_picked)
        self.view = LiveView()
        self.view.set_placeholder(self.tr("Pick a run, then a step."))
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.export_button = QPushButton(icon("export"), self.tr("Export to HTML…"))
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export)
        self.refresh_button = QPushButton(self.tr("Refresh"))
        self.refresh_button.clicked.connect(self.refresh)
        self.message = QLabel()
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.runs)
        left.addWidget(self.steps)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.view)
        right.addWidget(self.details)
        right.setSizes([420, 160])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([460, 700])
        buttons = QHBoxLayout()
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.message, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)

    def refresh(self) -> None:
        """Re-read the run list (newest first)."""
        self.runs.clear()
        try:
            infos = self._store_factory().list_runs()
        except Exception as exc:
            self.message.setText(self.tr("Runs could not be read: {0}").format(exc))
            return
        for info in infos:
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started))
            item = QTreeWidgetItem([started, info.task, info.status, str(info.steps)])
            item.setToolTip(1, info.task + (f"\n\n{info.answer}" if info.answer else ""))
            item.setData(0, Qt.ItemDataRole.UserRole, info.id)
            self.runs.addTopLevelItem(item)

    def select_run(self, run_id: str) -> bool:
        """Select a run by id (from the tray's Recent runs)."""
        for i in range(self.runs.topLevelItemCount()):
            item = self.runs.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == run_id:
                self.runs.setCurrentItem(item)
                return True
        return False

    def _run_selected(self) -> None:
        items = self.runs.selectedItems()
        if not items:
            return
        run_id = items[0].data(0, Qt.ItemDataRole.UserRole)
        try:
            self.record = self._store_factory().load(run_id)
        except Exception as exc:
            self.record = None
            self.message.setText(self.tr("This run could not be read: {0}").format(exc))
            return
        self.export_button.setEnabled(True)
        self.steps.clear()
        for step in self.record.steps:
            self.steps.add_step(int(step.get("index", 0)), step.get("description") or "",
                                step.get("timings") or {}, step.get("error"), step)
        meta = self.record.meta
        self.details.setPlainText("\n".join(filter(None, [
            self.tr("Task: {0}").format(meta.get("task", "")),
            self.tr("Result: {0} — {1}").format(meta.get("status", ""), meta.get("reason", "")),
            self.tr("Answer: {0}").format(meta["answer"]) if meta.get("answer") else ""])))
        self.view.show_image(None)
        if self.record.steps:
            self.steps.setCurrentItem(self.steps.topLevelItem(0))

    def _step_picked(self, step: object) -> None:
        if not isinstance(step, dict):
            return
        image = QImage(step["screenshot"]) if step.get("screenshot") else QImage()
        if image.isNull():
            self.view.set_placeholder(self.tr("No screenshot was kept for this step."))
            self.view.show_image(None)
        else:
            size = step.get("screenshot_size") or [image.width(), image.height()]
            self.view.show_image(image, overlay_for_record(step), image.width() / max(1, size[0]))
        lines = [self.tr("Step {0}: {1}").format(int(step.get("index", 0)) + 1,
                                                  step.get("description", "")),
                 self.tr("Timings (s): {0}").format(format_timings(step.get("timings") or {}))]
        if step.get("error"):
            lines.append(self.tr("Error: {0}").format(step["error"]))
        lines += ["", step.get("thoughts") or ""]
        self.details.setPlainText("\n".join(lines))

    def export(self) -> Path | None:
        """Write the selected run as one HTML file and open it."""
        if self.record is None:
            return None
        try:
            path = self._store_factory().export_html(self.record.info.id)
        except Exception as exc:
            self.message.setText(self.tr("Export failed: {0}").format(exc))
            return None
        self.message.setText(self.tr("Exported to {0}").format(path))
        emit(self.exported, str(path))
        if self._open_exports:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
        return path
