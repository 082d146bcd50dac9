"""The main window: task box, run controls, selectors, the live view, thoughts, steps and history."""

from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from agent.loop import RunResult
from agent.options import POLICIES, PROVIDERS
from app.about import show_about
from app.controller import RunController, phase_text, result_text
from app.icons import icon
from app.liveview import LiveView
from app.model_choice import choose_model, is_builtin, model_name
from app.monitor_thumbnails import MonitorThumbnails
from app.overlay import overlay_for
from app.plaintext import plain
from app.qtcompat import emit
from app.question_panel import QuestionPanel
from app.settings import Settings, SettingsError, save_settings
from app.steps import StepList, format_timings
from app.thoughts import ThoughtsView
from app.worker import StepView

BROWSE = "\x00browse"


class MainWindow(QMainWindow):
    """Everything a person needs to run a task and watch it; runs go through the controller."""

    settings_requested = Signal()
    models_requested = Signal()

    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings: Settings = controller.settings
        self.setWindowTitle(self.tr("Deskhand"))
        self.setWindowIcon(icon("deskhand"))
        self.resize(1200, 760)
        self._run_started = 0.0
        self._was_visible = False
        self.keep_in_tray = False  # closing hides the window when a tray icon can bring it back
        self.last_error = ""
        self.last_offline_warning = ""
        self._build()
        self._connect()
        self._fill_selectors()
        self._elapsed = QTimer(self)
        self._elapsed.timeout.connect(self._tick)
        self._elapsed.start(500)

    # --- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        row = QHBoxLayout()
        self.task = QComboBox()
        self.task.setEditable(True)
        self.task.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.task.lineEdit().setPlaceholderText(self.tr("What should the agent do? e.g. "
                                                        "Find a vegetarian lasagne recipe"))
        self.task.setMinimumWidth(420)
        self.run_button = QPushButton(icon("run"), self.tr("Run"))
        self.pause_button = QPushButton(icon("pause"), self.tr("Pause"))
        self.pause_button.setCheckable(True)
        self.stop_button = QPushButton(icon("stop"), self.tr("Stop"))
        row.addWidget(self.task, 1)
        for b in (self.run_button, self.pause_button, self.stop_button):
            b.setIconSize(QSize(18, 18))
            row.addWidget(b)
        outer.addLayout(row)

        opts = QHBoxLayout()
        self.model = QComboBox()
        self.model.setMinimumWidth(200)
        self.provider = QComboBox()
        for p in PROVIDERS:
            self.provider.addItem({"auto": self.tr("automatic"), "cpu": "CPU", "cuda": "CUDA",
                                   "dml": "DirectML"}[p], p)
        self.monitor = QComboBox()
        self.monitor.setIconSize(QSize(64, 40))
        self.monitor.setMinimumWidth(240)
        self.policy = QComboBox()
        for p in POLICIES:
            self.policy.addItem({"never": self.tr("never ask"),
                                 "risky": self.tr("ask before risky actions"),
                                 "always": self.tr("ask before every action")}[p], p)
        for label, box in ((self.tr("Model"), self.model), (self.tr("Provider"), self.provider),
                           (self.tr("Monitor"), self.monitor), (self.tr("Confirm"), self.policy)):
            opts.addWidget(QLabel(label))
            opts.addWidget(box)
        opts.addStretch(1)
        outer.addLayout(opts)
        # While the built-in Nano is the model: what it can do, and the way to a full model.
        self.nano_note = QLabel(self.tr(
            "Using <b>Deskhand Nano</b>, the small model built in: it clicks clearly labelled "
            "buttons on simple screens and little more. For real tasks, "
            "<a href=\"get\">get a full model…</a>"))
        self.nano_note.setObjectName("nano-note")
        self.nano_note.setWordWrap(True)
        self.nano_note.setStyleSheet("#nano-note { background: #FFF6D6; border: 1px solid #E0C050;"
                                     " border-radius: 4px; padding: 4px 8px; }")
        self.nano_note.linkActivated.connect(lambda _link: emit(self.models_requested))
        self.nano_note.hide()
        outer.addWidget(self.nano_note)

        self.tabs = QTabWidget()
        run_tab = QSplitter(Qt.Orientation.Horizontal)
        self.live = LiveView()
        right = QSplitter(Qt.Orientation.Vertical)
        self.thoughts = ThoughtsView()
        self.steps = StepList()
        self.inspector = QPlainTextEdit()
        self.inspector.setReadOnly(True)
        self.inspector.setPlaceholderText(self.tr("Click a step to inspect it."))
        for w in (self.thoughts, self.steps, self.inspector):
            right.addWidget(w)
        right.setSizes([200, 260, 160])
        run_tab.addWidget(self.live)
        run_tab.addWidget(right)
        run_tab.setSizes([780, 420])
        self.tabs.addTab(run_tab, icon("run"), self.tr("Run"))
        self.history = None
        self.question_panel = QuestionPanel()  # the model's ask_user_question, answered inline
        outer.addWidget(self.question_panel)
        outer.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.status_step = QLabel(self.tr("Ready"))
        self.status_tps = QLabel("")
        self.status_time = QLabel("")
        self.status_phase = plain(QLabel(""))  # results quote the model's answer
        bar = self.statusBar()
        bar.addWidget(self.status_step)
        bar.addWidget(self.status_phase, 1)
        bar.addPermanentWidget(self.status_tps)
        bar.addPermanentWidget(self.status_time)

        menu = self.menuBar().addMenu(self.tr("&Deskhand"))
        settings = QAction(icon("settings"), self.tr("Settings…"), self)
        settings.triggered.connect(self.settings_requested)
        models = QAction(icon("model"), self.tr("Models…"), self)
        models.triggered.connect(self.models_requested)
        self.quit_action = QAction(self.tr("Quit"), self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.about_action = QAction(icon("deskhand"), self.tr("About Deskhand…"), self)
        self.about_action.triggered.connect(lambda: show_about(self.controller.settings, self))
        for a in (settings, models, self.about_action, self.quit_action):
            menu.addAction(a)
        self._update_buttons()

    def attach_history(self, widget: QWidget) -> None:
        """Add the history tab (built separately so the window stays small)."""
        self.history = widget
        self.tabs.addTab(widget, icon("history"), self.tr("History"))

    def _connect(self) -> None:
        c = self.controller
        self.run_button.clicked.connect(self.start_run)
        self.task.lineEdit().returnPressed.connect(self.start_run)
        self.stop_button.clicked.connect(lambda: c.stop())
        self.pause_button.toggled.connect(c.set_paused)
        c.run_started.connect(self._on_started)
        c.token.connect(self.thoughts.add_token)
        c.captured.connect(self._on_captured)
        c.step.connect(self._on_step)
        c.phase.connect(self._on_phase)
        c.stats.connect(self._on_stats)
        c.run_finished.connect(self._on_finished)
        c.failed.connect(self.show_error)
        c.offline_warning.connect(self.show_offline_warning)
        c.state_changed.connect(lambda _s: self._update_buttons())
        c.question_asked.connect(lambda q: self.question_panel.ask(q, c.settings.confirm_timeout))
        c.question_closed.connect(self.question_panel.close_question)
        self.question_panel.answered.connect(c.answer_question)
        self.steps.picked.connect(self._inspect)
        self.model.activated.connect(self._model_chosen)
        self.provider.currentIndexChanged.connect(lambda _i: self._store(
            provider=self.provider.currentData()))
        self.policy.currentIndexChanged.connect(lambda _i: self._store(
            policy=self.policy.currentData()))
        self.monitor.currentIndexChanged.connect(self._monitor_chosen)
        self._thumbs = MonitorThumbnails(self)
        self._thumbs.ready.connect(self._on_thumbnails)

    def _fill_selectors(self) -> None:
        s = self.settings
        self.task.clear()
        self.task.addItems(s.recent_tasks)
        self.task.setEditText("")
        self.refresh_models()
        self.provider.setCurrentIndex(max(0, self.provider.findData(s.provider)))
        self.policy.setCurrentIndex(max(0, self.policy.findData(s.policy)))
        self.monitor.clear()
        self.monitor.addItem(self.tr("Monitor {0}").format(s.monitor), s.monitor)
        self._thumbs.load(self.controller.services.screen)

    def refresh_models(self) -> None:
        """Re-read the registered models into the selector."""
        s = self.settings
        self.model.blockSignals(True)
        self.model.clear()
        names = self.controller.services.models()
        for name in names:
            self.model.addItem(icon("model"), name, name)
        current = model_name(s)  # the settings' override, else the registry's default
        if current and current not in names:
            self.model.addItem(icon("model"), current, current)
        self.model.addItem(self.tr("Set up a model…"), BROWSE)
        self.model.setCurrentIndex(max(0, self.model.findData(current)))
        self.model.blockSignals(False)
        self.nano_note.setVisible(bool(current) and is_builtin(current))

    def _on_thumbnails(self, found: list) -> None:
        if not found:
            return
        self.monitor.blockSignals(True)
        self.monitor.clear()
        for index, size, img in found:
            ic = QIcon(QPixmap.fromImage(img)) if isinstance(img, QImage) else QIcon()
            self.monitor.addItem(ic, self.tr("Monitor {0} ({1})").format(index, size), index)
        self.monitor.setCurrentIndex(max(0, self.monitor.findData(self.settings.monitor)))
        self.monitor.blockSignals(False)

    # --- actions -----------------------------------------------------------------------------
    def _store(self, **changes) -> None:
        for k, v in changes.items():
            setattr(self.settings, k, v)
        self.save_settings()

    def save_settings(self) -> None:
        try:
            save_settings(self.settings)
        except SettingsError as exc:
            self.show_error(str(exc))

    def _monitor_chosen(self, _index: int) -> None:
        if self.monitor.currentData():
            self._store(monitor=self.monitor.currentData())

    def _model_chosen(self, _index: int) -> None:
        data = self.model.currentData()
        if data == BROWSE:
            self.refresh_models()
            emit(self.models_requested)
        elif data:
            choose_model(self.settings, data)  # the registry's default, shared with the CLI
            self.save_settings()
            self.nano_note.setVisible(is_builtin(data))

    def start_run(self) -> None:
        """Run the task in the task box."""
        task = self.task.currentText().strip()
        if self.controller.running:
            return
        if self.controller.start(task):
            self.save_settings()  # the recent-task list changed

    def show_note(self, message: str) -> None:
        """A passing status line (e.g. the model finished loading); ignored during a run."""
        if not self.controller.running:
            self.status_phase.setText(message.splitlines()[0] if message else "")

    def show_error(self, message: str) -> None:
        """A clear message that leaves the window usable."""
        self.status_step.setText(self.tr("Error"))
        self.status_phase.setText(message.splitlines()[0] if message else "")
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Deskhand"), message,
                          QMessageBox.StandardButton.Ok, self)
        plain(box)  # errors quote servers and files
        box.setObjectName("error-box")
        box.setModal(False)
        box.show()
        self.last_error = message

    def show_offline_warning(self, message: str) -> None:
        """Offline mode refused something during the run (or is weaker here): say so plainly."""
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Deskhand: network attempt refused"),
                          message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("offline-warning")
        box.setTextFormat(Qt.TextFormat.PlainText)  # destinations come from untrusted code
        box.setModal(False)
        box.show()
        self.last_offline_warning = message

    def _update_buttons(self) -> None:
        running = self.controller.running
        self.run_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        for w in (self.model, self.provider, self.monitor, self.policy):
            w.setEnabled(not running)
        if self.controller.state != "waiting":  # pause may also be toggled from the tray
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(running and self.controller.state == "paused")
            self.pause_button.blockSignals(False)

    # --- run signals -------------------------------------------------------------------------
    def _on_started(self, task: str) -> None:
        self._run_started = time.monotonic()
        self.thoughts.clear()
        self.steps.clear()
        self.inspector.clear()
        self.live.show_image(None)
        self.status_step.setText(self.tr("Step 1 / {0}").format(self.settings.max_steps))
        self.status_tps.setText("")
        self.task.blockSignals(True)
        self.task.clear()
        self.task.addItems(self.settings.recent_tasks)
        self.task.setEditText(task)
        self.task.blockSignals(False)
        self._update_buttons()
        self._was_visible = self.isVisible()
        if self.controller.collapsed and self._was_visible:
            self.hide()  # the agent must not see us, and the target app keeps the focus

    def _on_captured(self, image: QImage) -> None:
        self.live.show_image(image)

    def _on_phase(self, phase: str) -> None:
        if phase == "generate":
            self.thoughts.new_answer()
        self.status_phase.setText("· " + phase_text(phase))

    def _on_stats(self, n: int, limit: int, tps: float) -> None:
        self.status_step.setText(self.tr("Step {0} / {1}").format(n, limit))
        self.status_tps.setText(self.tr("{0:.1f} tokens/s").format(tps) if tps else "")

    def _on_step(self, view: StepView) -> None:
        st = view.step
        self.live.show_image(view.preview, overlay_for(st.action, st.mapping), view.scale)
        self.steps.add_step(st.index, st.summary if st.action is not None else self.tr("(no action)"),
                            st.timings, st.error, view)

    def _inspect(self, payload: object) -> None:
        if not isinstance(payload, StepView):
            return
        st = payload.step
        self.live.show_image(payload.preview, overlay_for(st.action, st.mapping), payload.scale)
        lines = [self.tr("Step {0}: {1}").format(st.index + 1, st.summary),
                 self.tr("Timings (s): {0}").format(format_timings(st.timings))]
        if st.error:
            lines.append(self.tr("Error: {0}").format(st.error))
        if st.note:  # what the loop did besides the model's answer (e.g. a second look)
            lines.append(self.tr("Note: {0}").format(st.note))
        if st.verdict is not None and st.verdict.asked:
            lines.append(self.tr("You were asked: {0}").format(
                st.verdict.decision.value if st.verdict.decision else ""))
        lines += ["", self.tr("Thoughts:"), st.thoughts, "", self.tr("Model output:"), st.model_text]
        self.inspector.setPlainText("\n".join(lines))

    def _on_finished(self, result: RunResult) -> None:
        self._update_buttons()
        self.status_step.setText(self.tr("Finished: {0} steps").format(result.steps))
        self.status_phase.setText(result_text(result))
        if self._was_visible and not self.isVisible():
            self.show()
        if result.answer:
            self.inspector.setPlainText(self.tr("Answer:\n{0}").format(result.answer))
        if self.history is not None:
            self.history.refresh()

    def _tick(self) -> None:
        if self.controller.running:
            elapsed = int(time.monotonic() - self._run_started)
            self.status_time.setText(f"{elapsed // 60:02d}:{elapsed % 60:02d}")

    def closeEvent(self, event) -> None:
        # With a tray icon, closing the window keeps Deskhand running in the tray.
        if self.keep_in_tray:
            event.ignore()
            self.hide()
            return
        super().closeEvent(event)
