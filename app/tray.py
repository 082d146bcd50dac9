"""The system tray icon: run state, a menu, and notifications (with an in-app fallback)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QT_TRANSLATE_NOOP, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QLabel, QMenu, QSystemTrayIcon, QVBoxLayout, QWidget

from agent.termtext import visible
from app.icons import icon, state_icon
from app.plaintext import menu_label, notification, plain
from app.qtcompat import emit

STATE_TEXT = {"idle": QT_TRANSLATE_NOOP("Tray", "idle"),
              "running": QT_TRANSLATE_NOOP("Tray", "running"),
              "paused": QT_TRANSLATE_NOOP("Tray", "paused"),
              "waiting": QT_TRANSLATE_NOOP("Tray", "waiting for your confirmation"),
              "error": QT_TRANSLATE_NOOP("Tray", "error")}


class Toast(QWidget):
    """A notification for desktops without a tray: bottom-right, never takes focus."""

    def __init__(self) -> None:
        super().__init__(None, Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint
                         | Qt.WindowType.WindowStaysOnTopHint
                         | Qt.WindowType.WindowDoesNotAcceptFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating, True)
        self.setStyleSheet("QWidget { background: #1F2A44; color: white; } "
                           "#title { font-weight: bold; }")
        layout = QVBoxLayout(self)
        self.title = plain(QLabel())
        self.title.setObjectName("title")
        self.body = plain(QLabel())  # run results quote the model's answer
        self.body.setWordWrap(True)
        self.body.setMaximumWidth(380)
        layout.addWidget(self.title)
        layout.addWidget(self.body)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)

    def pop(self, title: str, body: str, ms: int = 8000) -> None:
        self.title.setText(title)
        self.body.setText(body)
        self.adjustSize()
        screen = QGuiApplication.primaryScreen()
        if screen is not None:
            g = screen.availableGeometry()
            self.move(g.right() - self.width() - 16, g.bottom() - self.height() - 16)
        self.show()
        self._timer.start(ms)


class Tray(QObject):
    """Menu: Quick command…, Show window, Pause, Stop, Recent runs, Quit."""

    quick_requested = Signal()
    show_requested = Signal()
    pause_toggled = Signal(bool)
    stop_requested = Signal()
    quit_requested = Signal()
    run_requested = Signal(str)  # open a recent run in the history
    replay_requested = Signal(str)  # run a recent run again (verified replay)

    def __init__(self, recent_runs: Callable[[], list], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._recent_runs = recent_runs
        self.menu = QMenu()
        self.quick = self._add(self.tr("Quick command…"), self.quick_requested, "deskhand")
        self.show_window = self._add(self.tr("Show window"), self.show_requested)
        self.menu.addSeparator()
        self.pause = QAction(icon("pause"), self.tr("Pause"), self)
        self.pause.setCheckable(True)
        self.pause.toggled.connect(self.pause_toggled)
        self.menu.addAction(self.pause)
        self.stop = self._add(self.tr("Stop"), self.stop_requested, "stop")
        self.recent = self.menu.addMenu(icon("history"), self.tr("Recent runs"))
        self.recent.aboutToShow.connect(self._fill_recent)
        self.menu.addSeparator()
        self._add(self.tr("Quit"), self.quit_requested)
        self.available = QSystemTrayIcon.isSystemTrayAvailable()
        self.icon = QSystemTrayIcon(state_icon("idle"), self)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.toast = Toast()
        self.state = "idle"
        self.last_notification: tuple[str, str] | None = None
        self.set_state("idle")
        if self.available:
            self.icon.show()

    def _add(self, text: str, signal, icon_name: str | None = None) -> QAction:
        action = QAction(icon(icon_name) if icon_name else icon("deskhand"), text, self)
        action.triggered.connect(lambda _=False: emit(signal))
        self.menu.addAction(action)
        return action

    def set_state(self, state: str) -> None:
        """Show the run state in the icon and tooltip; Pause/Stop only make sense during a run."""
        self.state = state
        shown = "waiting" if state == "paused" else state
        self.icon.setIcon(state_icon(shown))
        self.icon.setToolTip(self.tr("Deskhand: {0}").format(self.tr(STATE_TEXT.get(state, state))))
        active = state in ("running", "paused", "waiting")
        self.pause.setEnabled(active)
        self.stop.setEnabled(active)
        if state != "waiting":  # waiting for a confirmation leaves pause as it was
            self.pause.blockSignals(True)
            self.pause.setChecked(state == "paused")
            self.pause.blockSignals(False)

    def notify(self, title: str, body: str, *, error: bool = False) -> None:
        """A desktop notification; a small toast where no tray exists."""
        self.last_notification = (title, body)
        if self.available and QSystemTrayIcon.supportsMessages():
            kind = QSystemTrayIcon.MessageIcon.Warning if error else QSystemTrayIcon.MessageIcon.Information
            self.icon.showMessage(notification(title), notification(body), kind, 8000)
        else:
            self.toast.pop(title, body)

    def notify_question(self, question: str) -> None:
        """The model's ask_user_question as a notification (answered in the main window)."""
        text = visible(question, multiline=False)
        self.notify(self.tr("Deskhand: the agent asks you"), text if len(text) <= 200 else text[:199] + "…")

    def _fill_recent(self) -> None:
        self.recent.clear()
        try:
            runs = self._recent_runs()[:10]
        except Exception:
            runs = []
        if not runs:
            self.recent.addAction(self.tr("(no runs yet)")).setEnabled(False)
        for info in runs:
            label = (info.task if len(info.task) <= 50 else info.task[:49] + "…") + f"  [{info.status}]"
            action = self.recent.addAction(menu_label(label))
            action.triggered.connect(lambda _=False, rid=info.id: emit(self.run_requested, rid))
        finished = [info for info in runs if info.status == "success"]  # replay refuses the rest
        if finished:
            self.recent.addSeparator()
        for info in finished:
            task = info.task if len(info.task) <= 44 else info.task[:43] + "…"
            again = self.recent.addAction(icon("deskhand"),
                                          menu_label(self.tr("Run again: {0}").format(task)))
            again.triggered.connect(lambda _=False, rid=info.id: emit(self.replay_requested, rid))

    def _activated(self, reason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            emit(self.show_requested)

    def close(self) -> None:
        self.icon.hide()
        self.toast.hide()
