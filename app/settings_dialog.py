"""The settings dialog: edits a copy of `Settings` and returns it only when valid."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from agent.options import MODES, POLICIES, PROVIDERS
from app import autostart
from app.hotkeys import HotkeyError, parse_hotkey
from app.settings import Settings


class SettingsDialog(QDialog):
    """`result_settings()` holds the edited settings after `accept`."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Deskhand settings"))
        self.setMinimumWidth(600)
        self._original = settings
        self._result: Settings | None = None
        form = QFormLayout()
        self.model = QLineEdit(settings.model)
        self.model.setPlaceholderText(self.tr("empty: the default model (`deskhand models "
                                              "default`); or a registered name or a folder"))
        self.provider = QComboBox()
        self.provider.addItems(PROVIDERS)
        self.provider.setCurrentText(settings.provider)
        self.max_steps = QSpinBox()
        self.max_steps.setRange(1, 1000)
        self.max_steps.setValue(settings.max_steps)
        self.settle = QDoubleSpinBox()
        self.settle.setRange(0.0, 60.0)
        self.settle.setSuffix(" s")
        self.settle.setValue(settings.settle_timeout)
        self.policy = QComboBox()
        self.policy.addItems(POLICIES)
        self.policy.setCurrentText(settings.policy)
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.setCurrentText(settings.mode)
        self.mode.setToolTip(self.tr("What the agent operates: a browser page or the whole "
                                     "desktop. Models with a desktop prompt (Fara1.5) use it in "
                                     "desktop mode; Fara-7B has one prompt for both."))
        self.confirm_timeout = QSpinBox()
        self.confirm_timeout.setRange(5, 3600)
        self.confirm_timeout.setSuffix(" s")
        self.confirm_timeout.setValue(int(settings.confirm_timeout))
        self.deny = QPlainTextEdit("\n".join(settings.deny_titles))
        self.deny.setMaximumHeight(80)
        self.deny.setToolTip(self.tr("Always ask before acting while a window whose title "
                                     "contains one of these words has the focus (one per line)."))
        self.stop_hotkey = QLineEdit(settings.stop_hotkey)
        self.quick_hotkey = QLineEdit(settings.quick_hotkey)
        self.data_dir = QLineEdit(settings.data_dir)
        self.data_dir.setPlaceholderText(self.tr("(default)"))
        self.data_dir.setToolTip(self.tr("Runs and models live here from now on, for the app and "
                                         "the deskhand command alike (DESKHAND_DATA_DIR, if set, "
                                         "wins); files already recorded are not moved."))
        browse = QPushButton(self.tr("Browse…"))
        browse.clicked.connect(self._browse)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_dir, 1)
        data_row.addWidget(browse)
        self.keep = QCheckBox(self.tr("Keep the screenshots of each run"))
        self.keep.setChecked(settings.keep_screenshots)
        self.hide_window = QCheckBox(self.tr("Collapse to a status pill while a run is in progress"))
        self.hide_window.setChecked(settings.hide_window_during_run)
        self.preload = QCheckBox(self.tr("Load the model when Deskhand starts (the first task "
                                         "starts at once; uses the model's memory from the start)"))
        self.preload.setChecked(settings.preload_model)
        self.autostart = QCheckBox(self.tr("Start Deskhand in the tray when I log in"))
        self.autostart.setChecked(settings.autostart)
        self.autostart.setEnabled(autostart.supported())
        for label, widget in ((self.tr("Model"), self.model), (self.tr("Provider"), self.provider),
                              (self.tr("Maximum steps"), self.max_steps),
                              (self.tr("Settle time-out"), self.settle),
                              (self.tr("Confirmation policy"), self.policy),
                              (self.tr("Mode"), self.mode),
                              (self.tr("Deny unanswered confirmations after"), self.confirm_timeout),
                              (self.tr("Deny list (window titles)"), self.deny),
                              (self.tr("Stop hotkey"), self.stop_hotkey),
                              (self.tr("Quick-command hotkey"), self.quick_hotkey)):
            form.addRow(label, widget)
        form.addRow(self.tr("Data folder"), data_row)
        form.addRow(self.keep)
        form.addRow(self.hide_window)
        form.addRow(self.preload)
        form.addRow(self.autostart)
        self.error = QLabel()
        self.error.setStyleSheet("color: #D64545;")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Data folder"), self.data_dir.text())
        if folder:
            self.data_dir.setText(folder)

    def edited(self) -> Settings:
        """The settings as currently shown (not validated)."""
        return replace(
            self._original, model=self.model.text().strip(), provider=self.provider.currentText(),
            max_steps=self.max_steps.value(), settle_timeout=self.settle.value(),
            policy=self.policy.currentText(), confirm_timeout=float(self.confirm_timeout.value()),
            mode=self.mode.currentText(),
            deny_titles=[t.strip() for t in self.deny.toPlainText().splitlines() if t.strip()],
            stop_hotkey=self.stop_hotkey.text().strip(),
            quick_hotkey=self.quick_hotkey.text().strip(), data_dir=self.data_dir.text().strip(),
            keep_screenshots=self.keep.isChecked(),
            hide_window_during_run=self.hide_window.isChecked(),
            preload_model=self.preload.isChecked(), autostart=self.autostart.isChecked(),
            recent_tasks=list(self._original.recent_tasks))

    def accept(self) -> None:
        s = self.edited()
        try:
            for text in (s.stop_hotkey, s.quick_hotkey):
                parse_hotkey(text)
        except HotkeyError as exc:
            self.error.setText(str(exc))
            return
        if s.stop_hotkey.lower() == s.quick_hotkey.lower():
            self.error.setText(self.tr("The stop and quick-command hotkeys must differ."))
            return
        if autostart.supported() and s.autostart != self._original.autostart:
            try:  # the login item is a file of its own, changed only when the choice changes
                autostart.set_autostart(s.autostart)
            except OSError as exc:
                self.error.setText(self.tr("Could not change the login item: {0}").format(exc))
                return
        self._result = s
        super().accept()

    def result_settings(self) -> Settings | None:
        return self._result
