"""Past runs from the trajectory store: a list, a step-by-step viewer, and export to HTML."""

from __future__ import annotations

import html
import time
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QImage
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from agent.replay.saved import SavedTasks
from agent.trajectory import TrajectoryError
from app.icons import icon
from app.liveview import LiveView
from app.overlay import overlay_for_record
from app.plaintext import tooltip
from app.qtcompat import emit
from app.steps import StepList, format_timings


class HistoryView(QWidget):
    """Lists runs newest first; selecting one shows its steps; a step shows its screenshot."""

    exported = Signal(str)
    replay_requested = Signal(str)  # "Run again": a run id

    def __init__(self, store_factory, parent: QWidget | None = None, *, open_exports: bool = True) -> None:
        super().__init__(parent)
        self._store_factory = store_factory
        self._open_exports = open_exports
        self.record = None
        self._listing_problems: tuple[str, ...] = ()
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
        self.replay_button = QPushButton(icon("deskhand"), self.tr("Run again"))
        self.replay_button.setToolTip(self.tr("Perform this run's actions again, each one only "
                                              "after its target is found on the screen; the "
                                              "model helps where the screen differs"))
        self.replay_button.setEnabled(False)
        self.replay_button.clicked.connect(self._replay)
        self.save_button = QPushButton(self.tr("Save as task…"))
        self.save_button.setToolTip(self.tr("Name this run; typing the name in the quick command "
                                            "runs it again"))
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save_as_task)
        self.refresh_button = QPushButton(self.tr("Refresh"))
        self.refresh_button.clicked.connect(self.refresh)
        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # it quotes file names and fields
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
        buttons.addWidget(self.replay_button)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.message, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)

    def refresh(self) -> None:
        """Re-read the run list (newest first)."""
        self.runs.clear()
        try:
            listing = self._store_factory().scan()
        except Exception as exc:
            self.message.setText(self.tr("Runs could not be read: {0}").format(exc))
            return
        self._listing_problems = listing.problems
        self._show_problems(listing.problems)
        for info in listing.runs:
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started))
            item = QTreeWidgetItem([started, info.task, info.status, str(info.steps)])
            item.setToolTip(1, tooltip(info.task + (f"\n\n{info.answer}" if info.answer else "")))
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
        self._show_problems(self._listing_problems + self.record.problems)
        self.export_button.setEnabled(True)
        # Only a run that ended successfully is worth repeating (the CLI has --allow-unfinished).
        self.replay_button.setEnabled(self.record.info.status == "success")
        self.save_button.setEnabled(self.record.info.status == "success")
        self.steps.clear()
        for row, step in enumerate(self.record.steps):
            # The row number, not the dict, goes into Qt: a record's field may hold a number no
            # QVariant can carry (2**70 raised OverflowError and emptied the list).
            self.steps.add_step(step.index, step.description or "", step.timings, step.error, row)
        meta = self.record.meta
        self.details.setPlainText("\n".join(filter(None, [
            self.tr("Task: {0}").format(meta.get("task", "")),
            self.tr("Result: {0} — {1}").format(meta.get("status", ""), meta.get("reason", "")),
            self.tr("Answer: {0}").format(meta["answer"]) if meta.get("answer") else ""])))
        self.view.show_image(None)
        if self.record.steps:
            self.steps.setCurrentItem(self.steps.topLevelItem(0))

    def save_as_task(self) -> str | None:
        """Ask for a name and save the selected run under it (the quick command starts it)."""
        if self.record is None:
            return None
        name, ok = QInputDialog.getText(self, self.tr("Save as task"),
                                        self.tr("Name (type it in the quick command to run "
                                                "this again):"), text=self.record.info.task[:80])
        if not ok or not name.strip():
            return None
        try:
            stored = SavedTasks().save(name, self.record.info.id)
        except (ValueError, TrajectoryError) as exc:
            self.message.setText(self.tr("Not saved: {0}").format(exc))
            return None
        self.message.setText(self.tr("Saved as “{0}”").format(stored))
        return stored

    def _replay(self) -> None:
        if self.record is not None:
            emit(self.replay_requested, self.record.info.id)

    def _step_picked(self, row: object) -> None:
        if self.record is None or not isinstance(row, int) or not 0 <= row < len(self.record.steps):
            return
        step = self.record.steps[row]
        check = step.replay
        image = QImage(step.screenshot) if step.screenshot else QImage()
        if image.isNull():
            self.view.set_placeholder(self.tr("No screenshot was kept for this step."))
            self.view.show_image(None)
        else:
            width = step.screenshot_size.width if step.screenshot_size else image.width()
            self.view.show_image(image, overlay_for_record(step), image.width() / max(1, width))
        lines = [self.tr("Step {0}: {1}").format(step.index + 1, step.description or ""),
                 self.tr("Timings (s): {0}").format(format_timings(step.timings))]
        if step.error:
            lines.append(self.tr("Error: {0}").format(step.error))
        if step.note:  # what the loop did besides the model's answer (e.g. a second look)
            lines.append(self.tr("Note: {0}").format(step.note))
        if step.screenshot_note:
            lines.append(step.screenshot_note)
        if isinstance(check, dict):
            score = check.get("score")
            lines.append(self.tr("Replay: {0}{1}{2}").format(
                check.get("verification", "?"),
                f" ({score:.2f})" if isinstance(score, (int, float)) else "",
                self.tr(", the model was called") if check.get("model_called") is True else ""))
        lines += ["", step.thoughts or ""]
        self.details.setPlainText("\n".join(lines))

    def _show_problems(self, problems: tuple[str, ...]) -> None:
        # Damaged records are named, not hidden: the first in the line, all in its tooltip.
        self.message.setText(self.tr("{0} problem(s) in the run records: {1}").format(
            len(problems), problems[0]) if problems else "")
        self.message.setToolTip("<qt>" + html.escape("\n".join(problems)).replace("\n", "<br>")
                                + "</qt>" if problems else "")

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
