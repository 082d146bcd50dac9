"""`deskhand` / `deskhand app`: the desktop app (main window, tray, quick command, hotkeys)."""

from __future__ import annotations

import argparse
import gc
import sys

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from agent.loop import RunResult, RunStatus
from agent.replay import ReplayRefused, check_replayable, from_record
from agent.replay.saved import SavedTasks
from agent.trajectory import TrajectoryError
from app.controller import RunController, result_text
from app.firstrun import ModelSetupDialog
from app.history import HistoryView
from app.icons import icon
from app.model_choice import adopt_settings_model, choose_model, model_name
from app.qtcompat import emit, emitter
from app.quick import QuickPrompt
from app.services import Services
from app.settings import Settings, SettingsError, load_settings, read_settings, save_settings
from app.settings_dialog import SettingsDialog
from app.to_gui import collect_on_gui_thread
from app.tray import Tray
from app.window import MainWindow


class _HotkeyBridge(QObject):
    """Carries hotkey presses from the listener thread onto the GUI thread."""

    quick = Signal()
    stopped = Signal()


class DeskhandApp(QObject):
    """Wires the controller, main window, history, tray, quick prompt and global hotkeys."""

    def __init__(self, settings: Settings | None = None, services: Services | None = None, *,
                 hotkeys: bool = True, open_exports: bool = True) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        self.controller = RunController(self.settings, services)
        self.window = MainWindow(self.controller)
        self.history = HistoryView(self._store, open_exports=open_exports)
        self.window.attach_history(self.history)
        self.history.refresh()
        self.tray = Tray(lambda: self._store().list_runs(), self)
        self.window.keep_in_tray = self.tray.available
        self.quick = QuickPrompt()
        self.hotkeys = None
        self.hotkey_error = ""
        self._bridge = _HotkeyBridge()
        self._quick_run = False
        self.mcp = None  # the MCP hand-off listener (start_mcp_handoff)
        self._connect()
        if hotkeys:
            self.install_hotkeys()

    def _store(self):
        from agent.trajectory import TrajectoryStore

        return TrajectoryStore(self.settings.runs_dir())

    def _connect(self) -> None:
        c, t, w = self.controller, self.tray, self.window
        c.state_changed.connect(t.set_state)
        c.run_finished.connect(self._on_finished)
        c.failed.connect(self._on_failed)
        c.question_asked.connect(self._on_question)
        c.model_problem.connect(self.setup_model)
        c.preloaded.connect(w.show_note)
        t.quick_requested.connect(self.show_quick)
        t.show_requested.connect(self.show_window)
        t.pause_toggled.connect(c.set_paused)
        t.stop_requested.connect(lambda: c.stop())
        t.quit_requested.connect(self.quit)
        t.run_requested.connect(self._open_run)
        t.replay_requested.connect(self.replay_run)
        self.history.replay_requested.connect(self.replay_run)
        self.quick.submitted.connect(self.start_quick)
        self._bridge.quick.connect(self.show_quick)
        self._bridge.stopped.connect(lambda: t.notify(self.tr("Deskhand"),
                                                      self.tr("Stopping the run (stop hotkey).")))
        w.settings_requested.connect(self.edit_settings)
        w.models_requested.connect(lambda: self.setup_model())
        w.quit_action.triggered.connect(self.quit)

    # --- hotkeys -----------------------------------------------------------------------------
    def install_hotkeys(self) -> None:
        """Register the stop and quick-command hotkeys; a failure is explained, never fatal."""
        from app.hotkeys import GlobalHotkeys, HotkeyError

        if self.hotkeys is not None:
            self.hotkeys.close()
            self.hotkeys = None
        problems = []
        try:
            keys = GlobalHotkeys()
        except HotkeyError as exc:
            self.hotkey_error = str(exc)
            self.window.statusBar().showMessage(self.tr("Global hotkeys are off: {0}").format(exc))
            return

        def stop() -> None:
            self.controller.stop_now("stopped by the stop hotkey")  # directly, not via Qt
            emit(self._bridge.stopped)

        for text, callback in ((self.settings.stop_hotkey, stop),
                               (self.settings.quick_hotkey, emitter(self._bridge.quick))):
            try:
                keys.register(text, callback)
            except HotkeyError as exc:
                problems.append(str(exc))
        keys.start()
        self.hotkeys = keys
        self.hotkey_error = "\n".join(problems)
        if problems:
            self.window.statusBar().showMessage(" ".join(problems))
            self.tray.notify(self.tr("Deskhand: hotkey unavailable"), self.hotkey_error, error=True)

    def start_mcp_handoff(self, path=None) -> bool:
        """Take tasks from `deskhand mcp` (single instance); a failure is shown, never fatal."""
        from app.mcp_handoff import McpHandoff

        self.mcp = McpHandoff(self.controller, path, self)
        self.sharing_label = QLabel(self.tr("⚠ Screenshots are shared with MCP clients "
                                            "(deskhand mcp --share-screenshots)"))
        self.sharing_label.setStyleSheet("color: #B00020; font-weight: bold")
        self.sharing_label.hide()
        self.window.statusBar().addPermanentWidget(self.sharing_label)
        self.mcp.sharing_changed.connect(self.sharing_label.setVisible)
        self.mcp.sharing_changed.connect(
            lambda on: on and self.tray.notify(self.tr("Deskhand"), self.sharing_label.text()))
        if not self.mcp.listen():
            self.window.statusBar().showMessage(
                self.tr("MCP tasks will run headless: {0}").format(self.mcp.error))
            return False
        return True

    # --- actions -----------------------------------------------------------------------------
    def show_window(self) -> None:
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    def show_quick(self) -> None:
        if self.controller.running:
            self.tray.notify(self.tr("Deskhand"), self.tr("A run is in progress."))
            return
        self.quick.open(self.settings.recent_tasks, saved=list(SavedTasks().all()))

    def start_quick(self, task: str) -> bool:
        """Start a run from the quick prompt without opening the main window.

        A saved task's name replays its run (each step checked on screen first).
        """
        self._quick_run = True
        run_id = SavedTasks().run_id(task)
        started = (self.replay_run(run_id, collapse=True) if run_id is not None
                   else self.controller.start(task, collapse=True))
        if started:
            self._save()
            return True
        self._quick_run = False
        return False

    def setup_model(self, reason: str = "") -> ModelSetupDialog:
        dialog = ModelSetupDialog(self.window, reason=reason)
        dialog.model_ready.connect(self._model_ready)
        dialog.show()
        return dialog

    def first_run(self) -> ModelSetupDialog | None:
        """Open the model set-up dialog when no model is set up (the app's or the CLI's)."""
        return None if model_name(self.settings) else self.setup_model()

    def _model_ready(self, name: str) -> None:
        choose_model(self.settings, name)  # the registry's default: the CLI's model too
        self._save()
        self.window.refresh_models()
        self.controller.preload()

    def edit_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self.window)
        if dialog.exec() and dialog.result_settings() is not None:
            new = dialog.result_settings()
            keys_changed = (new.stop_hotkey, new.quick_hotkey) != (self.settings.stop_hotkey,
                                                                   self.settings.quick_hotkey)
            for name, value in vars(new).items():
                setattr(self.settings, name, value)
            if self.settings.model:  # a registered name becomes the default; a folder stays
                choose_model(self.settings, self.settings.model)
            self._save()
            self.window.refresh_models()
            self.history.refresh()
            if keys_changed and self.hotkeys is not None:
                self.install_hotkeys()
            self.controller.preload()  # a new model or provider: load it before the next task

    def _save(self) -> None:
        try:
            save_settings(self.settings)
        except SettingsError as exc:
            self.window.show_error(str(exc))

    def replay_run(self, run_id: str, *, collapse: bool | None = None) -> bool:
        """Run a recorded run again ("Run again" in History and the tray, saved tasks)."""
        try:
            recording = from_record(self._store().load(run_id))
            check_replayable(recording)
        except (KeyError, ReplayRefused, TrajectoryError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            self._on_failed(message)
            self.window.show_error(message)
            return False
        return self.controller.start(recording.task, collapse=collapse, replay=recording)

    def _open_run(self, run_id: str) -> None:
        self.history.refresh()
        self.window.tabs.setCurrentWidget(self.history)
        self.history.select_run(run_id)
        self.show_window()

    def _on_finished(self, result: RunResult) -> None:
        quick, self._quick_run = self._quick_run, False
        if quick or not self.window.isVisible():
            self.tray.notify(self.tr("Deskhand"), result_text(result),
                             error=result.status is RunStatus.ERROR)

    def _on_question(self, question: str) -> None:
        """The model asks the person: a notification, and the window with the inline panel."""
        self.tray.notify_question(question)
        self.show_window()

    def _on_failed(self, message: str) -> None:
        quick, self._quick_run = self._quick_run, False
        if quick or not self.window.isVisible():
            self.tray.notify(self.tr("Deskhand: the run did not start"), message, error=True)

    def quit(self) -> None:
        self.shutdown()
        QApplication.quit()

    def shutdown(self) -> None:
        """Stop any run, release the hotkeys and destroy our windows while Qt still runs."""
        if self.controller.running:
            self.controller.stop("Deskhand is quitting")
            self.controller.wait(5000)
        if self.hotkeys is not None:
            self.hotkeys.close()
            self.hotkeys = None
        if self.mcp is not None:
            self.mcp.close()
        self.controller.close_backend()
        self.tray.close()
        for widget in (self.quick, self.controller.pill, self.tray.toast, self.window):
            widget.close()
            widget.deleteLater()
        QApplication.sendPostedEvents(None, 0)  # run the deleteLater calls now


def make_application(argv: list[str]) -> QApplication:
    """The QApplication, high-DPI aware (fractional scales pass through unrounded)."""
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setApplicationName("Deskhand")
    app.setOrganizationName("Deskhand")
    app.setWindowIcon(icon("deskhand"))
    return app


def main(argv: list[str] | None = None) -> int:
    """Start the desktop app; returns the exit code."""
    parser = argparse.ArgumentParser(prog="deskhand app", description="The Deskhand desktop app.")
    parser.add_argument("--tray", action="store_true", help="start in the tray, window hidden")
    parser.add_argument("--no-hotkeys", action="store_true", help="don't grab global hotkeys")
    args = parser.parse_args(argv or [])
    app = make_application([])
    collect_on_gui_thread()  # no Qt object freed by a cycle collection on a worker thread
    settings, ignored = read_settings()
    if adopt_settings_model(settings):  # an old file's model name: now the registry's default
        save_settings(settings)
    try:
        desk = DeskhandApp(settings, hotkeys=not args.no_hotkeys)
    except Exception as exc:  # e.g. an unreadable data dir: say so instead of a traceback
        QMessageBox.critical(None, "Deskhand", f"Deskhand could not start: {exc}")
        return 1
    app.setQuitOnLastWindowClosed(not desk.tray.available)
    if ignored:  # values in settings.json that were ignored: named, with the default used instead
        desk.window.show_error("Some settings were ignored:\n" + "\n".join(ignored))
    if not (args.tray and desk.tray.available):
        desk.show_window()
    desk.first_run()
    desk.controller.preload()  # the first task should not wait for the model to load
    desk.start_mcp_handoff()  # `deskhand mcp` hands its tasks to this app while it runs
    code = app.exec()
    app.setQuitOnLastWindowClosed(False)  # closing our windows below must not post another quit
    desk.shutdown()
    del desk
    gc.collect()  # Python wrappers go before the QApplication does (no crash at exit)
    return code
