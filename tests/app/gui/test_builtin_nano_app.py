"""The app on the built-in model: no set-up dialog in the way, a note that says what Nano can do,
and its link to the full models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.builtin import ENV, NAME


@pytest.fixture
def builtin(export_int4: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "installed" / "nano"
    shutil.copytree(export_int4, folder)
    monkeypatch.setenv(ENV, str(folder))
    return folder


def test_the_app_says_when_it_runs_on_nano_and_offers_the_full_models(builtin: Path, qtbot) -> None:
    from app.main import DeskhandApp
    from app.settings import Settings

    desk = DeskhandApp(Settings(), hotkeys=False, open_exports=False)
    qtbot.addWidget(desk.window)
    assert desk.first_run() is None  # a model is ready: no set-up dialog in the way
    assert desk.window.model.currentData() == NAME
    assert not desk.window.nano_note.isHidden()
    opened = []
    desk.window.models_requested.connect(lambda: opened.append(True))
    desk.window.nano_note.linkActivated.emit("get")
    assert opened == [True]
    desk.shutdown()


def test_without_any_model_the_set_up_dialog_still_opens(qtbot) -> None:
    from app.main import DeskhandApp
    from app.settings import Settings

    desk = DeskhandApp(Settings(), hotkeys=False, open_exports=False)
    qtbot.addWidget(desk.window)
    dialog = desk.first_run()
    assert dialog is not None and desk.window.nano_note.isHidden()
    dialog.close()
    desk.shutdown()
