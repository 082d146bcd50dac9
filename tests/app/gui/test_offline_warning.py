"""The app says so when offline mode refused something during a run, or its OS layer is off."""

from __future__ import annotations

import pytest

from agent import offline
from app.controller import RunController
from app.settings import Settings
from app.window import MainWindow
from tests.agent.test_offline_guard_attack import OUTSIDE, leaky
from tests.app.gui.fakes import click, done

pytestmark = pytest.mark.gui


def _window(qtbot, services):
    controller = RunController(Settings(model="fake-model", hide_window_during_run=False),
                               services)
    window = MainWindow(controller)
    qtbot.addWidget(window)
    window.show()
    return window, controller


def _run(qtbot, window) -> None:
    with qtbot.waitSignal(window.controller.run_finished, timeout=10_000):
        window.task.setEditText("look something up")
        window.run_button.click()
    qtbot.waitUntil(lambda: window.findChild(object, "offline-warning") is not None
                    or bool(window.last_offline_warning), timeout=2000)


def test_a_refused_attempt_shows_a_warning(qtbot, services) -> None:
    services.extra["responses"] = [leaky(click(300, 140)), done()]
    window, _controller = _window(qtbot, services)
    _run(qtbot, window)
    box = window.findChild(object, "offline-warning")
    assert box is not None and box.isVisible()
    assert "refused 1 attempt" in box.text() and OUTSIDE in box.text()


def test_a_clean_run_shows_no_warning_but_an_os_layer_off_does_once(qtbot, services) -> None:
    services.extra["responses"] = [click(300, 140), done()]
    window, controller = _window(qtbot, services)
    with qtbot.waitSignal(controller.run_finished, timeout=10_000):
        window.task.setEditText("look something up")
        window.run_button.click()
    qtbot.wait(50)
    assert window.findChild(object, "offline-warning") is None
    offline.note_isolation("model process", "OS layer off; Python guard only for the rest (test)")
    try:
        services.extra["responses"] = [done()]
        _run(qtbot, window)
        assert "Python guard only" in window.last_offline_warning
        window.last_offline_warning = ""
        services.extra["responses"] = [done()]
        with qtbot.waitSignal(controller.run_finished, timeout=10_000):
            window.run_button.click()
        qtbot.wait(50)
        assert window.last_offline_warning == ""  # said once per session, not after every run
    finally:
        offline._isolation_notes.pop("model process", None)
