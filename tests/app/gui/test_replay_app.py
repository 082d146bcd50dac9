"""Replay from the app: History's "Run again", the tray's Recent runs, saved tasks in the quick command."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QInputDialog

from agent.inference.base import ScriptedBackend
from agent.loop import RunConfig, RunStatus, run_task
from agent.replay.saved import SavedTasks
from agent.safety import Decision, Gate
from app.main import DeskhandApp
from app.services import Services
from app.settings import Settings
from tests.support.replay_scene import TASK, AppExecutor, AppScreen, FakeApp, solver_replies

pytestmark = pytest.mark.gui


class _Executor(AppExecutor):
    stop = None


@pytest.fixture
def scene():
    return FakeApp(offset=(30, 50))  # the layout moved since the recording


@pytest.fixture
def desk(qtbot, scene):
    services = Services(offline=True)
    built: list = []

    def backend(_settings):
        built.append(ScriptedBackend([]))
        return built[-1]

    def make_executor(_settings, stop):
        executor = _Executor(scene)
        executor.stop = stop
        return executor

    services.backend = backend
    services.executor = make_executor
    services.screen = lambda: AppScreen(scene)
    services.window_title = lambda: "Hotel finder"
    services.models = lambda: ["fake-model"]
    services.extra["built"] = built
    app = DeskhandApp(Settings(model="fake-model", policy="never", hide_window_during_run=False),
                      services, hotkeys=False, open_exports=False)
    qtbot.addWidget(app.window)
    yield app
    app.controller.stop()
    app.controller.wait()
    app.tray.close()
    app.quick.close()
    app.controller.pill.close()


def _record(desk) -> str:
    app = FakeApp()
    recorder = desk._store().start(TASK)
    result = run_task(TASK, backend=ScriptedBackend(solver_replies(app)), screen=AppScreen(app),
                      executor=AppExecutor(app), gate=Gate("never"), recorder=recorder,
                      config=RunConfig(offline=False))
    assert result.ok
    return recorder.run_id


def _replayed(desk) -> dict:
    record = desk._store().load("last")
    assert record.meta["settings"]["replay_of"]
    return record


def test_history_run_again_replays_with_checks(qtbot, desk, scene) -> None:
    run_id = _record(desk)
    desk.history.refresh()
    assert desk.history.select_run(run_id)
    assert desk.history.replay_button.isEnabled()
    with qtbot.waitSignal(desk.controller.run_finished, timeout=20_000) as blocker:
        desk.history.replay_button.click()
    assert blocker.args[0].status is RunStatus.SUCCESS, blocker.args[0].reason
    assert scene.clicks == ["search", "oslo", "order"] and scene.page == "done"
    assert desk.controller.services.extra["built"] == []  # every step verified: no model loaded
    record = _replayed(desk)
    assert [s.replay["verification"] for s in record.steps][:3] == ["verified"] * 3
    # The History shows each replayed step's check.
    desk.history.refresh()
    desk.history.select_run(record.info.id)
    desk.history._step_picked(0)
    assert "Replay: verified" in desk.history.details.toPlainText()


def test_unfinished_run_cannot_be_run_again_from_history(qtbot, desk) -> None:
    recorder = desk._store().start("never finished")
    recorder.finish(type("R", (), {"status": RunStatus.STOPPED, "answer": "", "reason": "x",
                                   "steps": 0, "elapsed": 0.0, "facts": ()})())
    desk.history.refresh()
    assert desk.history.select_run(recorder.run_id)
    assert not desk.history.replay_button.isEnabled()
    assert not desk.replay_run(recorder.run_id)  # and refused if asked anyway
    assert not desk.controller.running


def test_tray_recent_runs_offers_run_again(qtbot, desk, scene) -> None:
    _record(desk)
    desk.tray._fill_recent()
    again = [a for a in desk.tray.recent.actions() if a.text().startswith("Run again")]
    assert len(again) == 1 and TASK[:20] in again[0].text()
    with qtbot.waitSignal(desk.controller.run_finished, timeout=20_000) as blocker:
        again[0].trigger()
    assert blocker.args[0].status is RunStatus.SUCCESS and scene.page == "done"


def test_saved_task_name_in_the_quick_command_replays_it(qtbot, desk, scene, monkeypatch) -> None:
    run_id = _record(desk)
    desk.history.refresh()
    desk.history.select_run(run_id)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Book my hotel", True))
    assert desk.history.save_as_task() == "Book my hotel"
    assert SavedTasks().run_id("book my hotel") == run_id
    desk.show_quick()
    offered = desk.quick.edit.completer().model()
    assert offered.index(0, 0).data() == "Book my hotel"
    with qtbot.waitSignal(desk.controller.run_finished, timeout=20_000) as blocker:
        assert desk.start_quick("book my hotel")
    assert blocker.args[0].status is RunStatus.SUCCESS and scene.page == "done"
    assert _replayed(desk).info.task == TASK


def test_risky_recorded_step_asks_again_in_the_app(qtbot, desk, scene) -> None:
    _record(desk)
    desk.settings.policy = "risky"
    with qtbot.waitSignal(desk.controller.run_finished, timeout=30_000) as blocker:
        assert desk.replay_run(desk._store().list_runs()[0].id)
        qtbot.waitUntil(lambda: desk.controller.dialog is not None, timeout=20_000)
        desk.controller._on_decided(Decision.DENY)
    assert blocker.args[0].status is RunStatus.DENIED
    assert scene.page == "hotel" and "order" not in scene.clicks
