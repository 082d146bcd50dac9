"""Background model load at start-up: the first task finds the model loaded and warmed up."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.controller import RunController
from app.services import default_backend
from app.settings import Settings

pytestmark = [pytest.mark.gui]


def test_preload_loads_and_warms_up_the_model_in_the_background(qtbot, services,
                                                                export_int4: Path) -> None:
    pytest.importorskip("onnxruntime")
    services.backend = default_backend
    settings = Settings(model=str(export_int4), provider="cpu")
    controller = RunController(settings, services)
    try:
        with qtbot.waitSignal(controller.preloaded, timeout=120_000) as blocker:
            assert controller.preload() is not None
        assert blocker.args[0].startswith("Model ready")
        cached = controller._backend_cache
        assert cached is not None and cached[0] == (str(export_int4), "cpu")
        # The run's factory hands out the preloaded backend instead of loading again.
        assert controller._backend_factory(settings)() is cached[1]
        assert controller.preload() is None  # already loaded: nothing to do
    finally:
        controller.close_backend()


def test_preload_reports_a_broken_model(qtbot, services, tmp_path: Path) -> None:
    services.backend = default_backend
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "genai_config.json").write_text("{not json")
    controller = RunController(Settings(model=str(broken), provider="cpu"), services)
    with qtbot.waitSignal(controller.preloaded, timeout=60_000) as blocker:
        assert controller.preload() is not None
    assert blocker.args[0].startswith("The model could not be loaded")
    assert controller._backend_cache is None


def test_preload_only_when_wanted(services) -> None:
    services.backend = default_backend
    assert RunController(Settings(model=""), services).preload() is None
    assert RunController(Settings(model="x", preload_model=False), services).preload() is None


def test_settings_dialog_keeps_the_preload_choice(qtbot) -> None:
    from app.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings(preload_model=True))
    qtbot.addWidget(dialog)
    assert dialog.preload.isChecked()
    dialog.preload.setChecked(False)
    assert dialog.edited().preload_model is False


def test_the_preload_thread_holds_no_controller(qtbot, services, monkeypatch) -> None:
    # A thread that holds the last reference to a QObject frees it off the GUI thread (a crash
    # later). The controller must be freed where it is dropped, while the load still runs.
    import gc
    import threading
    import weakref

    started, gate = threading.Event(), threading.Event()

    def slow(_settings):
        started.set()
        gate.wait(10)
        raise RuntimeError("no model here")

    monkeypatch.setattr("app.controller.default_backend", slow)
    services.backend = slow
    controller = RunController(Settings(model="m", provider="cpu"), services)
    thread = controller.preload()
    assert thread is not None and started.wait(10)
    ref = weakref.ref(controller)
    del controller
    gc.collect()
    assert ref() is None and thread.is_alive()
    gate.set()
    thread.join(10)
    qtbot.wait(50)  # its report goes nowhere
