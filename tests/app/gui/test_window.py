"""Main window and run controller with a scripted model, a fake screen and recorded input."""

from __future__ import annotations

import time

import pytest
from PySide6.QtWidgets import QMessageBox

from agent.actions import LeftClick, TypeText
from agent.loop import RunStatus
from agent.trajectory import TrajectoryStore
from app.controller import RunController
from app.settings import Settings, load_settings
from app.window import MainWindow
from tests.app.gui.fakes import click, done, typing
from tests.app.gui.stall import StallProbe, check_stall, idle_worst, report

pytestmark = pytest.mark.gui


def make_window(qtbot, services, **overrides):
    settings = Settings(model="fake-model", hide_window_during_run=False, **overrides)
    controller = RunController(settings, services)
    window = MainWindow(controller)
    qtbot.addWidget(window)
    window.show()
    return window, controller


def run(qtbot, window, task: str, timeout: int = 10_000):
    with qtbot.waitSignal(window.controller.run_finished, timeout=timeout) as blocker:
        window.task.setEditText(task)
        window.run_button.click()
    return blocker.args[0]


def test_run_shows_screenshot_thoughts_and_steps(qtbot, services, recorder_executor, fake_screen):
    services.extra["responses"] = [click(300, 140), typing("lasagne"), done("Found it: 42 min.")]
    window, controller = make_window(qtbot, services)
    result = run(qtbot, window, "find a lasagne recipe")

    assert result.status is RunStatus.SUCCESS and result.answer == "Found it: 42 min."
    assert [type(a) for a in recorder_executor.actions] == [LeftClick, TypeText]
    assert window.steps.topLevelItemCount() == 3
    assert "I will click the search box." in window.thoughts.toPlainText()
    image = window.live.image
    assert image is not None and not image.isNull()
    # The live view holds the fed screenshot: the body colour of the last captured frame.
    assert image.pixelColor(image.width() // 2, image.height() - 10).getRgb()[:3] in [
        (230, 90, 30), (40, 160, 90), (60, 90, 220), (200, 50, 160), (240, 200, 40)]
    assert window.status_step.text().startswith("Finished")
    # The run was recorded, and the task went into the persisted recent-task history.
    runs = TrajectoryStore(controller.settings.runs_dir()).list_runs()
    assert len(runs) == 1 and runs[0].status == "success" and runs[0].steps == 3
    assert load_settings().recent_tasks[0] == "find a lasagne recipe"
    assert window.task.itemText(0) == "find a lasagne recipe"
    assert window.run_button.isEnabled() and not window.stop_button.isEnabled()


def test_clicking_a_step_inspects_it(qtbot, services):
    services.extra["responses"] = [click(300, 140, "Open the menu."), done()]
    window, _ = make_window(qtbot, services)
    run(qtbot, window, "open the menu")
    window.steps.setCurrentItem(window.steps.topLevelItem(0))
    text = window.inspector.toPlainText()
    assert "Open the menu." in text and "click at (300, 140)" in text and "generate" in text
    assert window.live._overlay is not None and window.live._overlay.kind == "click"


def test_a_steps_note_is_shown_when_it_is_inspected(qtbot, services):
    """What the loop did besides the model's answer (here a second look) is in the inspector."""
    from PySide6.QtGui import QImage

    from app.worker import StepView
    from tests.agent.test_formats_steps import a_step

    window, _ = make_window(qtbot, services)
    note = "a second look at the 640x400 pixels around (768, 440) moved the point to (798, 425)"
    window._inspect(StepView(a_step(note=note), QImage(8, 8, QImage.Format.Format_RGB32), 1.0))
    assert "Note: " + note in window.inspector.toPlainText()


def test_pause_holds_the_next_phase_and_resume_finishes(qtbot, services, recorder_executor):
    services.extra["responses"] = [click(10, 10), click(20, 20), click(30, 30), done()]
    services.extra["token_delay"] = 0.01
    window, controller = make_window(qtbot, services)
    window.task.setEditText("click three times")
    with qtbot.waitSignal(controller.step, timeout=5000):
        window.run_button.click()
    window.pause_button.click()
    assert controller.state == "paused"
    time.sleep(0.1)  # anything already in a phase finishes it
    count = len(recorder_executor.actions)
    qtbot.wait(600)
    assert len(recorder_executor.actions) == count and controller.running
    with qtbot.waitSignal(controller.run_finished, timeout=10_000) as blocker:
        window.pause_button.click()
    assert blocker.args[0].status is RunStatus.SUCCESS
    assert len(recorder_executor.actions) == 3


def test_stop_ends_the_run_and_the_window_stays_usable(qtbot, services):
    services.extra["responses"] = [click(10, 10)] * 50
    services.extra["token_delay"] = 0.01
    window, controller = make_window(qtbot, services)
    window.task.setEditText("click forever")
    with qtbot.waitSignal(controller.step, timeout=5000):
        window.run_button.click()
    with qtbot.waitSignal(controller.run_finished, timeout=5000) as blocker:
        window.stop_button.click()
    assert blocker.args[0].status is RunStatus.STOPPED
    assert window.run_button.isEnabled()
    services.extra["responses"] = [done()]
    assert run(qtbot, window, "again").status is RunStatus.SUCCESS


def _answer_dialog(qtbot, controller, button: str):
    qtbot.waitUntil(lambda: controller.dialog is not None and controller.dialog.isVisible(),
                    timeout=5000)
    dialog = controller.dialog
    getattr(dialog, button).click()
    return dialog


def test_confirmation_allow_once_and_deny(qtbot, services, recorder_executor):
    services.extra["responses"] = [click(300, 140, "I will click Buy now to purchase."),
                                   click(300, 140, "I will click Buy now to purchase."), done()]
    window, controller = make_window(qtbot, services, policy="risky")
    window.task.setEditText("buy it")
    window.run_button.click()
    dialog = _answer_dialog(qtbot, controller, "allow_once")
    assert "purchase" in dialog.findChild(type(dialog.countdown), "reasons").text()
    region = dialog.findChild(type(dialog.countdown), "region")
    assert region is not None and region.pixmap().width() == 320
    with qtbot.waitSignal(controller.run_finished, timeout=5000) as blocker:
        _answer_dialog(qtbot, controller, "deny")
    assert blocker.args[0].status is RunStatus.DENIED
    assert len(recorder_executor.actions) == 1


def test_confirmation_is_denied_after_the_time_out(qtbot, services, recorder_executor):
    services.extra["responses"] = [typing("my password is hunter2 and send it")]
    window, controller = make_window(qtbot, services, policy="always")
    controller.settings.confirm_timeout = 0.6
    result = run(qtbot, window, "send it")
    assert result.status is RunStatus.DENIED and recorder_executor.actions == []
    assert controller.dialog is None


def test_no_model_gives_a_clear_message_and_the_app_stays_usable(qtbot, services):
    from app.services import default_backend

    services.backend = default_backend
    window, controller = make_window(qtbot, services)
    controller.settings.model = ""
    window.task.setEditText("anything")
    window.run_button.click()
    boxes = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert boxes and "No model" in boxes[0].text()
    assert window.run_button.isEnabled() and not controller.running


def test_display_lost_is_reported(qtbot, services, fake_screen):
    fake_screen.fail = True
    window, _ = make_window(qtbot, services)
    result = run(qtbot, window, "anything")
    assert result.status is RunStatus.ERROR and "display" in result.reason
    assert "display" in window.status_phase.text()


def test_disk_full_while_recording_is_reported(qtbot, services, monkeypatch):
    from agent import trajectory

    def full(*_a, **_k):
        raise trajectory.TrajectoryError("the disk is full: could not save step 0.")

    monkeypatch.setattr(trajectory.RunRecorder, "record", full)
    window, _ = make_window(qtbot, services)
    result = run(qtbot, window, "anything")
    assert result.status is RunStatus.ERROR and "disk is full" in result.reason


def test_gui_thread_never_stalls_during_a_run(qtbot, services):
    """Longest event-loop gap while a run streams tokens (ScriptedBackend, 5 ms per token)."""
    words = " ".join(f"word{i}" for i in range(150))
    services.extra["responses"] = [click(300, 140, words), typing("x" * 40, words), done(words)]
    services.extra["token_delay"] = 0.005
    window, _ = make_window(qtbot, services)
    qtbot.waitExposed(window)
    idle = idle_worst(qtbot, 1.0)
    with StallProbe() as probe:
        run(qtbot, window, "stream a lot", timeout=20_000)
    idle = max(idle, idle_worst(qtbot, 1.0))
    print("\n" + report("scripted backend, 5 ms per token", probe, idle))
    check_stall(probe, idle)
