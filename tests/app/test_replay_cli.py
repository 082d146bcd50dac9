"""`deskhand runs replay|save` end to end, with the fake app in place of the X screen and input."""

from __future__ import annotations

import pytest

import agent.executor
import agent.screen
from agent.actions import Terminate, format_call
from agent.inference.base import ScriptedBackend
from agent.loop import RunConfig, run_task
from agent.replay.saved import SavedTasks
from agent.safety import Gate
from agent.trajectory import TrajectoryStore
from app.commands import main
from tests.support.replay_scene import TASK, AppExecutor, AppScreen, FakeApp, solver_replies


def _record(*, finished: bool = True) -> str:
    app = FakeApp()
    replies = solver_replies(app)
    if not finished:
        replies = [*replies[:2], lambda m, i: format_call("Stuck.", Terminate("failure"))]
    recorder = TrajectoryStore().start(TASK)
    run_task(TASK, backend=ScriptedBackend(replies), screen=AppScreen(app),
             executor=AppExecutor(app), gate=Gate("never"), recorder=recorder,
             config=RunConfig(offline=False))
    return recorder.run_id


@pytest.fixture
def fake_desktop(monkeypatch: pytest.MonkeyPatch) -> FakeApp:
    app = FakeApp(offset=(40, 64))  # the layout moved since the recording
    monkeypatch.setattr(agent.screen, "Screen", lambda *a, **k: AppScreen(app))
    monkeypatch.setattr(agent.executor, "Executor", lambda *a, **k: AppExecutor(app))
    return app


def test_cli_replay_acts_where_targets_are_now(fake_desktop: FakeApp, capsys) -> None:
    run_id = _record()
    code = main(["runs", "replay", run_id, "--confirm", "never", "--no-model"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert fake_desktop.page == "done" and fake_desktop.clicks == ["search", "oslo", "order"]
    assert out.count("replay: verified") == 3
    assert "4 of 4 recorded actions replayed, 0 step(s) by the model" in out
    replayed = TrajectoryStore().load("last")
    assert replayed.meta["settings"]["replay_of"] == run_id
    assert all(s.replay["model_called"] is False for s in replayed.steps)


def test_cli_replay_asks_again_at_the_risky_step(fake_desktop: FakeApp, capsys) -> None:
    run_id = _record()
    # No terminal to ask on: the gate's question is answered "no", as for a model's action.
    code = main(["runs", "replay", run_id, "--no-model"])
    captured = capsys.readouterr()
    assert code == 1
    assert "confirmation needed" in captured.err
    assert "denied" in captured.out and fake_desktop.page == "hotel"
    assert "order" not in fake_desktop.clicks


def test_cli_refuses_unfinished_runs_without_the_flag(fake_desktop: FakeApp, capsys) -> None:
    run_id = _record(finished=False)
    assert main(["runs", "replay", run_id, "--no-model"]) == 2
    assert "--allow-unfinished" in capsys.readouterr().err
    assert fake_desktop.clicks == []
    code = main(["runs", "replay", run_id, "--no-model", "--allow-unfinished", "--confirm", "never"])
    out = capsys.readouterr().out
    assert code == 1 and fake_desktop.clicks == ["search", "oslo"]
    assert "recording ends without finishing" in out


def test_cli_parameters(fake_desktop: FakeApp, capsys) -> None:
    run_id = _record()
    assert main(["runs", "replay", run_id, "--set", "Paris=Rome"]) == 2
    assert "not in the recorded task" in capsys.readouterr().err
    assert main(["runs", "replay", run_id, "--set", "nonsense"]) == 2
    main(["runs", "replay", run_id, "--set", "Oslo=Bergen", "--confirm", "never", "--no-model"])
    out = capsys.readouterr().out
    assert "typed from the task: 'Bergen'" in out
    assert fake_desktop.typed == ["Bergen"]
    assert "Search hotels for Bergen" in TrajectoryStore().load("last").info.task


def test_saved_task_by_name(fake_desktop: FakeApp, capsys) -> None:
    run_id = _record()
    assert main(["runs", "save", run_id, "Book my hotel"]) == 0
    assert SavedTasks().run_id("book  MY hotel") == run_id
    assert main(["runs", "replay", "Book my hotel", "--confirm", "never", "--no-model"]) == 0
    assert fake_desktop.page == "done"
    assert main(["runs", "save", "Book my hotel", "--forget"]) == 0
    assert SavedTasks().all() == {}
    unfinished = _record(finished=False)
    assert main(["runs", "save", unfinished, "Broken"]) == 2  # only replayable runs get names
    capsys.readouterr()


def test_saved_tasks_file_damage_is_harmless(tmp_path) -> None:
    saved = SavedTasks(tmp_path / "saved.json")
    (tmp_path / "saved.json").write_text('{"a": 1, "b": "run-b", "c": ["x"]}')
    assert saved.all() == {"b": "run-b"}
    (tmp_path / "saved.json").write_text("[[[[")
    assert saved.all() == {}
    with pytest.raises(ValueError):
        saved.save("bad\x1bname", "run")
    assert saved.save("  Daily   report ", "r1") == "Daily report"
