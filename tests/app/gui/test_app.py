"""The whole app offscreen: tray quick command, first-run model setup, history, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from agent.loop import RunStatus
from app.firstrun import ModelSetupDialog
from app.main import DeskhandApp
from app.settings import Settings, load_settings
from app.settings_dialog import SettingsDialog
from tests.app.gui.fakes import click, done

pytestmark = pytest.mark.gui


@pytest.fixture
def desk(qtbot, services):
    app = DeskhandApp(Settings(model="fake-model", hide_window_during_run=True), services,
                      hotkeys=False, open_exports=False)
    qtbot.addWidget(app.window)
    yield app
    app.controller.stop()
    app.controller.wait()
    app.tray.close()
    app.quick.close()
    app.controller.pill.close()


def test_tray_quick_command_runs_without_the_main_window(qtbot, desk, services):
    services.extra["responses"] = [click(300, 140), done("The weather is sunny, 21 °C.")]
    states = []
    desk.controller.state_changed.connect(states.append)
    desk.tray.quick.trigger()
    assert desk.quick.isVisible()
    qtbot.keyClicks(desk.quick.edit, "what is the weather")
    with qtbot.waitSignal(desk.controller.run_finished, timeout=10_000) as blocker:
        qtbot.keyClick(desk.quick.edit, Qt.Key.Key_Return)
        assert not desk.quick.isVisible()
        assert desk.controller.pill.isVisible() or not desk.controller.running
    assert blocker.args[0].status is RunStatus.SUCCESS
    assert not desk.window.isVisible()
    _title, body = desk.tray.last_notification
    assert "The weather is sunny, 21 °C." in body
    assert states[0] == "running" and states[-1] == "idle"
    assert desk.tray.state == "idle" and not desk.controller.pill.isVisible()
    assert load_settings().recent_tasks == ["what is the weather"]


def test_tray_menu_stop_and_recent_runs(qtbot, desk, services):
    services.extra["responses"] = [click(10, 10)] * 100
    services.extra["token_delay"] = 0.01
    assert not desk.tray.stop.isEnabled()
    with qtbot.waitSignal(desk.controller.step, timeout=5000):
        desk.start_quick("click a lot")
    assert desk.tray.stop.isEnabled()
    desk.tray.pause.trigger()  # pause from the tray: the window's button follows
    assert desk.controller.state == "paused" and desk.window.pause_button.isChecked()
    desk.window.pause_button.click()
    assert desk.controller.state == "running" and not desk.tray.pause.isChecked()
    with qtbot.waitSignal(desk.controller.run_finished, timeout=5000) as blocker:
        desk.tray.stop.trigger()
    assert blocker.args[0].status is RunStatus.STOPPED
    assert "Stopped" in desk.tray.last_notification[1]
    desk.tray._fill_recent()
    labels = [a.text() for a in desk.tray.recent.actions()]
    assert labels and "click a lot" in labels[0] and "stopped" in labels[0]
    desk.tray.recent.actions()[0].trigger()
    assert desk.window.isVisible() and desk.window.tabs.currentWidget() is desk.history
    assert desk.history.steps.topLevelItemCount() >= 1


def _fake_model_folder(path):
    path.mkdir()
    model = {"type": "fara"}
    for part in ("decoder", "embedding", "vision"):
        (path / f"{part}.onnx").write_bytes(b"")
        model[part] = {"filename": f"{part}.onnx"}
    (path / "genai_config.json").write_text(json.dumps({"model": model}))
    from tests.models.test_registry import write_tokenizer_files  # import loads them: they must be real

    write_tokenizer_files(path)
    (path / "processor_config.json").write_text('{"processor": {"transforms": []}}')
    return path


def test_first_run_without_a_model_offers_setup_and_imports_a_folder(qtbot, desk, services,
                                                                     tmp_path, monkeypatch):
    from app.services import default_backend

    folder = _fake_model_folder(tmp_path / "fara-7b-int4")
    monkeypatch.setattr(ModelSetupDialog, "_folder_dialog", lambda self, title: str(folder))
    services.backend = default_backend
    desk.settings.model = ""
    desk.window.show()
    desk.window.task.setEditText("anything")
    desk.window.run_button.click()
    dialogs = [w for w in QApplication.topLevelWidgets()
               if isinstance(w, ModelSetupDialog) and w.isVisible()]
    assert len(dialogs) == 1 and "No model" in dialogs[0].reason.text()
    dialog = dialogs[0]
    with qtbot.waitSignal(dialog.model_ready, timeout=5000) as blocker:
        dialog.import_button.click()
    assert blocker.args[0] == "fara-7b-int4"
    # The registry's default is the one source of truth (the CLI's model too), not settings.json.
    from app.model_choice import model_name
    from models.registry import Registry as _Registry

    assert _Registry().default == "fara-7b-int4" and model_name(desk.settings) == "fara-7b-int4"
    assert load_settings().model == ""
    assert desk.window.model.findData("fara-7b-int4") >= 0
    from models.registry import Registry

    assert "fara-7b-int4" in Registry()


def test_importing_a_broken_folder_explains_and_stays_open(qtbot, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "genai_config.json").write_text("{not json")
    dialog = ModelSetupDialog(choose_folder=lambda _t: str(broken))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.import_button.click()
    qtbot.waitUntil(lambda: "did not work" in dialog.status.text(), timeout=5000)
    assert "genai_config.json" in dialog.status.text()
    assert dialog.import_button.isEnabled() and dialog.isVisible()


def test_history_viewer_and_html_export(qtbot, desk, services):
    services.extra["responses"] = [click(300, 140, "Open the recipe."), done("Done.")]
    with qtbot.waitSignal(desk.controller.run_finished, timeout=10_000):
        desk.start_quick("open the recipe")
    desk.history.refresh()
    assert desk.history.runs.topLevelItemCount() == 1
    desk.history.runs.setCurrentItem(desk.history.runs.topLevelItem(0))
    assert desk.history.steps.topLevelItemCount() == 2
    view = desk.history.view
    assert view.image is not None and not view.image.isNull()
    assert view._overlay is not None and view._overlay.kind == "click"
    assert "Open the recipe." in desk.history.details.toPlainText()
    with qtbot.waitSignal(desk.history.exported) as blocker:
        desk.history.export_button.click()
    html = Path(blocker.args[0]).read_text(encoding="utf-8")
    assert "open the recipe" in html and "<img" in html


def test_settings_dialog_validates_and_persists(qtbot, desk):
    dialog = SettingsDialog(desk.settings)
    qtbot.addWidget(dialog)
    dialog.max_steps.setValue(12)
    dialog.policy.setCurrentText("always")
    dialog.deny.setPlainText("Bank\nPassword manager\n")
    dialog.keep.setChecked(False)
    dialog.stop_hotkey.setText("F1")
    dialog.accept()
    assert dialog.result_settings() is None and "modifier" in dialog.error.text()
    dialog.stop_hotkey.setText("ctrl+alt+End")
    dialog.accept()
    new = dialog.result_settings()
    assert new is not None and new.max_steps == 12 and new.policy == "always"
    assert new.deny_titles == ["Bank", "Password manager"] and not new.keep_screenshots
    assert new.stop_hotkey == "ctrl+alt+End"


def test_download_asks_with_the_size_then_cancels(qtbot, monkeypatch, tmp_path):
    import threading
    from types import SimpleNamespace

    from models import download

    plan = SimpleNamespace(repo_id="someone/fara-onnx", commit="abc", subfolder="", name="fara",
                           total_bytes=5 * 1024**3, already=0,
                           describe=lambda: "someone/fara-onnx: 12 files")
    started = threading.Event()

    def fake_download(repo_id, *, on_progress, cancel, **_kwargs):
        started.set()
        for i in range(1000):
            if cancel.is_set():  # what the real download does between chunks
                raise download.DownloadCancelled("stopped")
            on_progress(i * 1024**2, plan.total_bytes)
            threading.Event().wait(0.01)
        return None

    monkeypatch.setattr(download, "plan_download", lambda repo, **_k: plan)
    monkeypatch.setattr(download, "download_model", fake_download)
    questions = []
    dialog = ModelSetupDialog(ask=lambda title, text: questions.append(text) or True)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.repo.setText("someone/fara-onnx")  # no default repo: none is published
    dialog.download_button.click()
    qtbot.waitUntil(started.is_set, timeout=5000)
    assert "5.0 GB" in questions[0] and "someone/fara-onnx" in questions[0]
    qtbot.waitUntil(lambda: dialog.bar.value() > 0, timeout=5000)
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.status.text() == "Cancelled.", timeout=5000)
    assert dialog.download_button.isEnabled() and not dialog.cancel_button.isVisible()


def test_declining_the_download_fetches_nothing(qtbot, monkeypatch):
    from types import SimpleNamespace

    from models import download

    plan = SimpleNamespace(repo_id="r/m", commit="c", subfolder="", name="m", total_bytes=10,
                           already=0, describe=lambda: "r/m")
    monkeypatch.setattr(download, "plan_download", lambda repo, **_k: plan)
    monkeypatch.setattr(download, "download_model", lambda *a, **k: pytest.fail("downloaded"))
    dialog = ModelSetupDialog(ask=lambda title, text: False)
    qtbot.addWidget(dialog)
    dialog.repo.setText("r/m")
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.status.text() == "Nothing was downloaded.", timeout=5000)


def test_export_of_a_folder_that_is_no_checkpoint_reports_the_failure(qtbot, tmp_path):
    not_a_checkpoint = tmp_path / "notes"
    not_a_checkpoint.mkdir()
    dialog = ModelSetupDialog(choose_folder=lambda _t: str(not_a_checkpoint))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.export_button.click()
    assert dialog.cancel_button.isVisible()
    qtbot.waitUntil(lambda: "did not finish" in dialog.status.text(), timeout=60_000)
    assert dialog.export_button.isEnabled() and dialog.model_name is None


@pytest.mark.xvfb
def test_a_hotkey_taken_by_another_application_is_explained(qtbot, services, xvfb_display):
    from app.hotkeys import GlobalHotkeys

    other = GlobalHotkeys(xvfb_display)
    other.register("ctrl+alt+Escape", lambda: None)
    app = DeskhandApp(Settings(model="fake-model", hide_window_during_run=False), services,
                      hotkeys=True, open_exports=False)
    qtbot.addWidget(app.window)
    try:
        assert "ctrl+alt+Escape is already taken" in app.hotkey_error
        assert "already taken" in app.tray.last_notification[1]
        assert app.hotkeys is not None  # the quick-command hotkey still works
        services.extra["responses"] = [done()]
        with qtbot.waitSignal(app.controller.run_finished, timeout=10_000) as blocker:
            app.controller.start("still usable")
        assert blocker.args[0].status is RunStatus.SUCCESS
    finally:
        app.shutdown()
        other.close()


def test_pill_stop_button_stops_the_run_and_the_window_comes_back(qtbot, desk, services):
    services.extra["responses"] = [click(10, 10)] * 100
    services.extra["token_delay"] = 0.01
    desk.show_window()
    desk.window.task.setEditText("click a lot")
    with qtbot.waitSignal(desk.controller.step, timeout=5000):
        desk.window.run_button.click()
    pill = desk.controller.pill
    assert not desk.window.isVisible() and pill.isVisible()
    flags = pill.windowFlags()
    assert flags & Qt.WindowType.WindowDoesNotAcceptFocus and flags & Qt.WindowType.Tool
    assert pill.testAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
    with qtbot.waitSignal(desk.controller.run_finished, timeout=5000) as blocker:
        pill.stop.click()
    assert blocker.args[0].status is RunStatus.STOPPED
    assert desk.window.isVisible() and not pill.isVisible()


_MAIN_PROBE = """
import json
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from app.firstrun import ModelSetupDialog
from app.main import main, make_application
from app.window import MainWindow
make_application([])  # main() reuses it; the timer below needs it to exist first
seen = {}
def look_then_quit():
    tops = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
    seen["setup"] = sum(isinstance(w, ModelSetupDialog) for w in tops)
    seen["window"] = sum(isinstance(w, MainWindow) for w in tops)
    QApplication.quit()
QTimer.singleShot(800, look_then_quit)
seen["code"] = main(["--no-hotkeys"])
print(json.dumps(seen))
"""


def test_main_opens_the_app_and_offers_model_setup_without_a_model():
    """`deskhand app` end to end, in its own process (its event loop ends the way an app's does)."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", _MAIN_PROBE], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"setup": 1, "window": 1, "code": 0}


def test_a_broken_model_folder_is_explained_and_setup_is_offered(qtbot, desk, services, tmp_path):
    from app.services import default_backend

    broken = tmp_path / "half-copied-model"
    broken.mkdir()
    (broken / "genai_config.json").write_text(json.dumps({"model": {"type": "fara"}}))
    services.backend = default_backend
    desk.settings.model = str(broken)
    desk.show_window()
    with qtbot.waitSignal(desk.controller.run_finished, timeout=10_000) as blocker:
        desk.window.task.setEditText("anything")
        desk.window.run_button.click()
    assert blocker.args[0].status is RunStatus.ERROR
    assert "genai_config.json has no model.decoder section" in desk.window.last_error
    dialogs = [w for w in QApplication.topLevelWidgets()
               if isinstance(w, ModelSetupDialog) and w.isVisible()]
    assert dialogs and "decoder" in dialogs[-1].reason.text()
    assert desk.window.run_button.isEnabled() and desk.tray.state == "error"
