"""The first-run dialog shows `deskhand doctor`'s checks: each line, its fix, a summary."""

from __future__ import annotations

import pytest

from agent.doctor import Check, Level
from app.doctor_page import DoctorPanel
from app.firstrun import ModelSetupDialog

pytestmark = [pytest.mark.gui]

LINES = [Check("display", Level.WARN, "a Wayland session: only X11 apps", "log in to X11"),
         Check("model", Level.FAIL, "no model is set up yet", "deskhand models import DIR"),
         Check("cpu", Level.OK, "2 cores; AVX2")]


def test_the_first_run_dialog_runs_the_doctor_checks(qtbot, monkeypatch) -> None:
    monkeypatch.setattr("app.doctor.checks", lambda: iter(LINES))
    dialog = ModelSetupDialog()
    qtbot.addWidget(dialog)
    panel = dialog.checks
    assert isinstance(panel, DoctorPanel)
    assert panel.results == [] and panel.again.isEnabled()  # nothing runs until it is shown
    dialog.show()
    qtbot.waitUntil(lambda: panel.again.isEnabled() and bool(panel.results), timeout=10_000)
    assert panel.results == LINES
    text = panel.lines.text()
    for check in LINES:
        assert check.detail in text and check.level.value in text
    assert "Fix:</i> log in to X11" in text and "Fix:</i> deskhand models import DIR" in text
    assert panel.summary.text() == "1 failed, 1 to read"


def test_check_again_runs_them_again_and_a_crash_is_a_fail_line(qtbot) -> None:
    calls = []

    def checks():
        calls.append(1)
        yield Check("display", Level.OK, "X11 display :1")
        if len(calls) > 1:
            raise OSError("boom")

    panel = DoctorPanel(checks=checks, start=False)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.finished, timeout=10_000):
        panel.run()
    assert panel.summary.text() == "Everything is ready."
    with qtbot.waitSignal(panel.finished, timeout=10_000):
        panel.again.click()
    assert [c.level for c in panel.results] == [Level.OK, Level.FAIL]
    assert "boom" in panel.results[1].detail and panel.results[1].fix


def test_closing_the_dialog_while_checks_run_is_safe(qtbot) -> None:
    # The checks take seconds (a child process, a test square on screen); a person may close
    # the dialog meanwhile. The lines still arriving must go nowhere, not into freed widgets,
    # and the worker stops asking for more checks.
    import gc
    import threading

    release, reached, resumed = threading.Event(), threading.Event(), threading.Event()

    def slow():
        yield Check("display", Level.OK, "X11 display :1")
        release.wait(10)
        reached.set()
        yield Check("cpu", Level.OK, "2 cores")
        resumed.set()

    panel = DoctorPanel(checks=slow, start=False)
    with qtbot.waitSignal(panel.checked, timeout=10_000):
        panel.run()
    worker = next(t for t in threading.enumerate() if t.name == "deskhand-doctor")
    panel.deleteLater()
    qtbot.wait(50)  # the panel is deleted here
    del panel
    gc.collect()
    release.set()
    assert reached.wait(10)
    worker.join(10)
    qtbot.wait(100)  # deliver whatever was queued: nothing may reach the deleted panel
    assert not worker.is_alive() and not resumed.is_set()
