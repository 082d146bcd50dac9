"""The desktop/browser mode: one enum, a `deskhand run --mode` flag, an app setting."""

from __future__ import annotations

import json

import pytest

from agent.loop import RunConfig
from agent.options import Mode, from_args
from app.commands import build_parser
from app.settings import Settings, read_settings


def test_run_flag_sets_the_mode_and_defaults_to_browser() -> None:
    parser = build_parser()
    assert from_args(parser.parse_args(["run", "x"])).mode is Mode.BROWSER
    options = from_args(parser.parse_args(["run", "x", "--mode", "desktop"]))
    assert options.mode is Mode.DESKTOP
    assert RunConfig.from_options(options).mode is Mode.DESKTOP
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "x", "--mode", "tablet"])


def test_app_setting_reaches_the_run_and_a_bad_value_keeps_the_default(tmp_path) -> None:
    assert Settings().mode == "browser"
    assert Settings(mode="desktop").run_options().mode is Mode.DESKTOP
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"mode": "desktop"}))
    assert read_settings(path)[0].mode == "desktop"
    path.write_text(json.dumps({"mode": "tablet"}))
    settings, notes = read_settings(path)
    assert settings.mode == "browser" and any("mode" in n for n in notes)


def test_settings_dialog_edits_the_mode(qtbot) -> None:
    from app.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    assert dialog.mode.currentText() == "browser"
    dialog.mode.setCurrentText("desktop")
    assert dialog.edited().mode == "desktop"
