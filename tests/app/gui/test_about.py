"""The About dialog (versions, providers, folders), its menu entry, and the autostart checkbox."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from agent import __version__
from app.about import AboutDialog, about_facts, facts_text
from app.controller import RunController
from app.settings import Settings, load_settings, save_settings
from app.settings_dialog import SettingsDialog
from app.window import MainWindow

pytestmark = pytest.mark.gui


def test_about_names_versions_providers_and_every_folder(qtbot, tmp_path, monkeypatch) -> None:
    import onnxruntime

    monkeypatch.delenv("DESKHAND_DATA_DIR")  # so the data-dir setting is what counts
    settings = Settings(data_dir=str(tmp_path / "elsewhere"))
    save_settings(settings)  # models follow the saved setting
    facts = dict(about_facts(settings))
    assert facts["Deskhand"] == __version__
    assert facts["ONNX Runtime"] == onnxruntime.__version__
    assert "CPUExecutionProvider" in facts["Execution providers"]
    assert facts["Qt"].startswith(__import__("PySide6.QtCore").QtCore.qVersion())
    assert facts["Runs"] == str(tmp_path / "elsewhere" / "runs")  # the setting wins
    assert facts["Data folder"] == str(tmp_path / "elsewhere")
    assert facts["Models"] == str(tmp_path / "elsewhere" / "models")
    assert facts["Settings"] == str(Path(os.environ["DESKHAND_CONFIG_DIR"]) / "settings.json")
    dialog = AboutDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.values["Runs"].text() == facts["Runs"]
    dialog.copy()
    assert QApplication.clipboard().text() == facts_text(dialog.facts)
    assert f"Deskhand: {__version__}" in QApplication.clipboard().text()


def test_a_folder_name_is_shown_as_typed_never_as_markup(qtbot, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("DESKHAND_DATA_DIR")
    dialog = AboutDialog(Settings(data_dir=str(tmp_path / "<b>bold</b>")))
    qtbot.addWidget(dialog)
    assert "<b>bold</b>" in dialog.values["Runs"].text()
    assert dialog.values["Runs"].textFormat().name == "PlainText"


def test_window_menu_opens_about(qtbot, services, monkeypatch) -> None:
    shown = []
    monkeypatch.setattr("app.window.show_about", lambda settings, parent: shown.append(settings))
    controller = RunController(Settings(model="fake-model"), services)
    window = MainWindow(controller)
    qtbot.addWidget(window)
    assert window.about_action in window.menuBar().actions()[0].menu().actions()
    window.about_action.trigger()
    assert shown == [controller.settings]


def test_autostart_checkbox_writes_and_removes_the_login_item(qtbot, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    item = tmp_path / "autostart" / "deskhand.desktop"
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    assert not dialog.autostart.isChecked() and dialog.autostart.isEnabled()
    dialog.autostart.setChecked(True)
    dialog.accept()
    result = dialog.result_settings()
    assert result is not None and result.autostart
    entry = configparser.ConfigParser(interpolation=None)
    entry.read_string(item.read_text(encoding="utf-8"))
    assert entry["Desktop Entry"]["Exec"].endswith(" app --tray")
    save_settings(result)
    assert load_settings().autostart is True  # stored with the other settings
    again = SettingsDialog(load_settings())
    qtbot.addWidget(again)
    assert again.autostart.isChecked()
    again.autostart.setChecked(False)
    again.accept()
    assert again.result_settings().autostart is False and not item.exists()


def test_a_login_item_that_cannot_be_written_keeps_the_dialog_open(qtbot, monkeypatch, tmp_path) -> None:
    (tmp_path / "autostart").write_text("a file where the folder belongs")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.autostart.setChecked(True)
    dialog.accept()
    assert dialog.result_settings() is None and "login item" in dialog.error.text()


def test_ok_without_changing_the_choice_leaves_the_login_item_alone(qtbot, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    item = tmp_path / "autostart" / "deskhand.desktop"
    item.parent.mkdir()
    item.write_text("[Desktop Entry]\nExec=the user's own\n")
    dialog = SettingsDialog(Settings())  # autostart off in the settings, a file there anyway
    qtbot.addWidget(dialog)
    dialog.accept()
    assert dialog.result_settings() is not None
    assert item.read_text() == "[Desktop Entry]\nExec=the user's own\n"
