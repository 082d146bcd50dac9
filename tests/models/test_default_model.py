"""One source of truth for the default model: the README's CLI path, then the app agrees."""

from __future__ import annotations

import argparse
import os
import sys
import types
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from models import cli
from models.registry import Registry
from tests.app.gui.fakes import FakeScreen, RecordingExecutor, make_services
from tests.models.test_registry import make_genai_folder

pytestmark = [pytest.mark.gui]


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="deskhand")
    cli.register(parser.add_subparsers(dest="command"))
    return cli.run(parser.parse_args(["models", *argv]))


@pytest.fixture
def services():
    from app.services import default_models

    services = make_services(FakeScreen(), RecordingExecutor())
    services.models = default_models  # the real registry (in this test's data dir)
    return services


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`deskhand models export HF --name X` then `deskhand models default X` (the README's path)."""
    def fake_export(hf_dir, out_dir, **_options):  # the exporter itself is tested elsewhere
        return make_genai_folder(Path(out_dir))

    monkeypatch.setitem(sys.modules, "models.export", types.SimpleNamespace(export_model=fake_export))
    (tmp_path / "hf").mkdir()
    make_genai_folder(tmp_path / "other")
    assert run_cli("import", str(tmp_path / "other"), "--name", "other") == 0
    assert run_cli("export", str(tmp_path / "hf"), "--name", "fara-x") == 0
    assert run_cli("default", "fara-x") == 0
    return "fara-x"


def test_app_uses_the_cli_default_and_skips_first_run(qtbot, services, exported: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from app.main import DeskhandApp
    from app.services import SetupError, default_backend
    from app.settings import load_settings

    app = DeskhandApp(load_settings(), services, hotkeys=False)  # a fresh user's settings
    try:
        assert app.window.model.currentData() == exported
        assert app.first_run() is None  # no first-run dialog: a model is set up
        hosted: list[str] = []

        def host(folder, provider):  # the model process, which loads the folder it is given
            hosted.append(folder)
            raise RuntimeError("stand-in model process")

        monkeypatch.setattr("app.procbackend.ProcessBackend", host)
        monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: object())
        with pytest.raises(SetupError, match="stand-in model process"):
            default_backend(app.settings)  # what Run builds: the CLI's default, not "no model"
        assert hosted == [str(Registry().get(exported).folder)]
    finally:
        app.shutdown()


def test_choosing_in_the_app_sets_the_cli_default(qtbot, services, exported: str) -> None:
    from app.main import DeskhandApp
    from app.settings import load_settings

    app = DeskhandApp(load_settings(), services, hotkeys=False)
    try:
        box = app.window.model
        box.setCurrentIndex(box.findData("other"))
        box.activated.emit(box.currentIndex())
        assert Registry().default == "other"  # `deskhand run` now uses it too
        assert app.settings.model == ""  # no second copy of the choice in settings.json
        assert load_settings().model == ""
    finally:
        app.shutdown()


def test_old_settings_file_is_adopted_once(exported: str) -> None:
    from app.model_choice import adopt_settings_model, model_name
    from app.settings import Settings

    reg = Registry()
    old = Settings(model="other")  # an old settings file: the app's choice stored by name
    assert adopt_settings_model(old) and old.model == ""
    assert reg.default == "fara-x" and model_name(old) == "fara-x"  # the CLI's explicit choice wins
    run_cli("remove", "fara-x", "--yes")
    old = Settings(model="other")
    assert adopt_settings_model(old) and Registry().default == "other"  # no default yet: adopted
    folder = Settings(model="/somewhere/a-folder")  # an unregistered folder stays an override
    assert not adopt_settings_model(folder) and model_name(folder) == "/somewhere/a-folder"


def test_a_name_typed_in_settings_becomes_the_default(qtbot, services, exported: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from app.main import DeskhandApp
    from app.settings import load_settings

    app = DeskhandApp(load_settings(), services, hotkeys=False)
    try:
        chosen = [replace(app.settings, model="other"), replace(app.settings, model="/a/folder")]
        monkeypatch.setattr("app.main.SettingsDialog.exec", lambda self: 1)
        monkeypatch.setattr("app.main.SettingsDialog.result_settings", lambda self: chosen[0])
        app.edit_settings()
        assert Registry().default == "other" and app.settings.model == ""
        chosen.pop(0)
        app.edit_settings()  # a folder is the app's own override; the CLI's default stays
        assert Registry().default == "other" and app.settings.model == "/a/folder"
    finally:
        app.shutdown()
