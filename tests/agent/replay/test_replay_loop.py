"""Replay through the real loop, gate and recorder on a fake app whose layout changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from agent.actions import LeftClick, Terminate, TypeText, format_call
from agent.inference.base import ScriptedBackend
from agent.loop import RunConfig, RunStatus, run_task
from agent.replay import ReplayBackend, ReplayRefused, check_replayable, from_record
from agent.replay.recording import task_parameters, with_parameters
from agent.safety import ConfirmRequest, Decision, Gate
from agent.trajectory import TrajectoryStore
from tests.support.replay_scene import (
    TASK,
    AppExecutor,
    AppReader,
    AppScreen,
    FakeApp,
    model_point,
    solver_replies,
)


def _gate(app: FakeApp, asked: list[ConfirmRequest], answer: Decision = Decision.ALLOW_ONCE) -> Gate:
    def ask(request: ConfirmRequest) -> Decision:
        asked.append(request)
        return answer

    return Gate("risky", ask=ask, reader=AppReader(app))


def record_run(store: TrajectoryStore) -> tuple[str, list[ConfirmRequest]]:
    app, asked = FakeApp(), []
    recorder = store.start(TASK)
    result = run_task(TASK, backend=ScriptedBackend(solver_replies(app)), screen=AppScreen(app),
                      executor=AppExecutor(app), gate=_gate(app, asked), recorder=recorder,
                      config=RunConfig(offline=False))
    assert result.status is RunStatus.SUCCESS and app.page == "done"
    return recorder.run_id, asked


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[TrajectoryStore, str]:
    store = TrajectoryStore(tmp_path / "runs")
    run_id, asked = record_run(store)
    assert [r.label.text for r in asked] == ["Place order"]  # the recording asked once
    return store, run_id


def replay(store, run_id, app, *, fallback=None, answer=Decision.ALLOW_ONCE, sets=()):
    recording = with_parameters(from_record(store.load(run_id)), list(sets))
    backend = ReplayBackend(recording, fallback=fallback)
    asked: list[ConfirmRequest] = []
    executor = AppExecutor(app)
    recorder = store.start(recording.task)
    result = run_task(recording.task, backend=backend, screen=AppScreen(app), executor=executor,
                      gate=_gate(app, asked, answer), recorder=recorder,
                      config=RunConfig(offline=False))
    steps = store.load(recorder.run_id).steps
    return result, executor, asked, steps, backend


def test_unchanged_screen_replays_every_step_verified(recorded) -> None:
    store, run_id = recorded
    app = FakeApp()
    result, _executor, asked, steps, backend = replay(store, run_id, app)
    assert result.status is RunStatus.SUCCESS
    assert app.clicks == ["search", "oslo", "order"] and app.page == "done"
    assert app.typed == ["Oslo"]
    assert result.answer == "The order for Oslo Grand Hotel is placed."
    checks = [s.replay for s in steps]
    assert [c["verification"] for c in checks] == ["verified"] * 3 + ["not_needed"]
    assert all(c["score"] > 0.95 for c in checks[:3])
    assert not any(c["model_called"] for c in checks) and backend.model_steps == 0
    # The risky recorded step asked again, with the label read on the replayed screen.
    assert [r.label.text for r in asked] == ["Place order"]


def test_shifted_layout_clicks_where_the_target_is_now(recorded) -> None:
    store, run_id = recorded
    app = FakeApp(offset=(150, 70))  # a banner on top and the content moved right
    result, _executor, _asked, steps, _b = replay(store, run_id, app)
    assert result.status is RunStatus.SUCCESS and app.page == "done"
    assert app.clicks == ["search", "oslo", "order"]
    moved = [s.replay["moved"] for s in steps[:3]]
    for dx, dy in moved:  # model pixels ≈ screen pixels here (1280x800 → 1288x812)
        assert abs(dx - 150) <= 3 and abs(dy - 70) <= 3


def test_declined_risky_step_stops_without_acting(recorded) -> None:
    store, run_id = recorded
    app = FakeApp()
    result, _executor, asked, _steps, _b = replay(store, run_id, app, answer=Decision.DENY)
    assert result.status is RunStatus.DENIED
    assert "order" not in app.clicks and app.page == "hotel"
    assert [r.label.text for r in asked] == ["Place order"]


def test_gone_target_without_a_model_stops_with_the_reason(recorded) -> None:
    store, run_id = recorded
    app = FakeApp(renamed={"oslo": "Trondheim Fjord Lodge"})
    result, _executor, _asked, _steps, _b = replay(store, run_id, app)
    assert result.status is RunStatus.STOPPED
    assert "recorded step 2" in result.reason and "not on the screen" in result.reason
    assert app.clicks == ["search"]  # nothing was clicked at a guess


def test_gone_target_calls_the_model_then_replay_resumes(recorded) -> None:
    store, run_id = recorded
    app = FakeApp(renamed={"oslo": "Trondheim Fjord Lodge"})  # a different hotel now

    model = ScriptedBackend([lambda m, i: format_call("The Oslo hotel is gone; take this one.",
                                                      LeftClick(model_point(app, "oslo", i)))])
    result, _executor, asked, steps, backend = replay(store, run_id, app, fallback=model)
    assert result.status is RunStatus.SUCCESS and app.page == "done"
    assert app.clicks == ["search", "oslo", "order"]
    assert len(model.calls) == 1 and backend.model_steps == 1
    checks = [s.replay for s in steps]
    # Twice it waited for the page (a missing target is often one still loading), then the model.
    assert [c["verification"] for c in checks[1:3]] == ["waiting", "waiting"]
    assert [s.action.name for s in steps[1:3]] == ["wait", "wait"]
    checks = [c for c in checks if c["verification"] != "waiting"]
    assert checks[1]["verification"] == "gone" and checks[1]["model_called"] is True
    assert checks[2]["verification"] == "verified" and not checks[2]["model_called"]
    assert "resumed at recorded step 3" in checks[2]["reason"]
    # The model got the task and the recent history (the replayed first step) from the loop.
    messages, images = model.calls[0]
    text = str(messages)
    assert TASK in text and "Replaying recorded step 1" in text and len(images) >= 2
    assert [r.label.text for r in asked] == ["Place order"]


def test_page_still_loading_after_the_model_step_is_waited_for(recorded) -> None:
    """The model's click starts a page load that the first settled frame does not show yet.

    Seen in CI under load: without a wait, replay called the model a second time on the old
    page. One wait, then replay resumes on the new page.
    """
    store, run_id = recorded
    app = FakeApp(renamed={"oslo": "Trondheim Fjord Lodge"})
    screen = AppScreen(app)
    original_click, late = app.click, []

    def slow_click(x: float, y: float) -> None:  # the page changes one frame later
        before = app.page
        original_click(x, y)
        if app.page != before and before == "results":
            late.append(app.page)
            app.page = before

    def capture(index: int = 1):
        shot = AppScreen.capture(screen, index)
        if late:
            app.page = late.pop()
        return shot

    app.click = slow_click  # type: ignore[method-assign]
    screen.capture = capture  # type: ignore[method-assign]
    screen.wait_settled = lambda index=1, **kw: capture(index)  # type: ignore[method-assign]
    model = ScriptedBackend([lambda m, i: format_call("The Oslo hotel is gone; take this one.",
                                                      LeftClick(model_point(app, "oslo", i)))])
    backend = ReplayBackend(from_record(store.load(run_id)), fallback=model)
    recorder = store.start(TASK)
    result = run_task(TASK, backend=backend, screen=screen, executor=AppExecutor(app),
                      gate=_gate(app, []), recorder=recorder, config=RunConfig(offline=False))
    steps = store.load(recorder.run_id).steps
    assert result.status is RunStatus.SUCCESS and app.page == "done", result.reason
    assert len(model.calls) == 1 and backend.model_steps == 1
    after = [s.replay for s in steps][steps.index(next(s for s in steps
                                                       if s.replay["model_called"])) + 1:]
    assert after[0]["verification"] == "waiting" and not after[0]["model_called"]
    assert "resumed at recorded step 3" in after[1]["reason"]


def test_ambiguous_target_calls_the_model(recorded) -> None:
    store, run_id = recorded
    app = FakeApp()
    model_clicks = []

    def model(m, i):
        model_clicks.append(app.page)
        return format_call("The first of the two.", LeftClick(model_point(app, "order", i)))

    # The hotel page shows "Place order" twice, identical with their surroundings.
    def on_hotel_duplicate(app=app):
        app.duplicate = "order" if app.page == "hotel" else None

    screen = AppScreen(app)
    original = screen.capture

    def capture(index: int = 1):
        on_hotel_duplicate()
        return original(index)

    screen.capture = capture  # type: ignore[method-assign]
    screen.wait_settled = lambda index=1, **kw: capture(index)  # type: ignore[method-assign]
    recording = from_record(store.load(run_id))
    backend = ReplayBackend(recording, fallback=ScriptedBackend([model]))
    asked: list[ConfirmRequest] = []
    recorder = store.start(TASK)
    result = run_task(TASK, backend=backend, screen=screen, executor=AppExecutor(app),
                      gate=_gate(app, asked), recorder=recorder, config=RunConfig(offline=False))
    steps = store.load(recorder.run_id).steps
    assert result.status is RunStatus.SUCCESS
    assert model_clicks == ["hotel"]
    assert steps[2].replay["verification"] == "ambiguous" and steps[2].replay["model_called"]
    assert [r.label.text for r in asked] == ["Place order"]  # the model's click asked too


def test_model_that_never_gets_back_on_track_is_stopped(recorded) -> None:
    store, run_id = recorded
    app = FakeApp(renamed={"oslo": "Closed"})
    model = ScriptedBackend([format_call("Look around.", LeftClick((5, 5)))], repeat_last=True)
    recording = from_record(store.load(run_id))
    backend = ReplayBackend(recording, fallback=model, max_model_steps=2)
    result = run_task(TASK, backend=backend, screen=AppScreen(app), executor=AppExecutor(app),
                      gate=Gate("never"), config=RunConfig(offline=False))
    assert result.status is RunStatus.STOPPED and len(model.calls) == 2
    assert "model took 2 steps" in result.reason


def test_parameters_change_typed_text_and_task(recorded) -> None:
    store, run_id = recorded
    recording = from_record(store.load(run_id))
    assert task_parameters(recording) == ["Oslo"]
    app = FakeApp()
    result, executor, _asked, _steps, _b = replay(store, run_id, app, sets=[("Oslo", "Bergen")])
    assert app.typed == ["Bergen"]
    # The click on "Oslo Grand Hotel" still matches (that page did not change in the fake), and
    # the recorded answer about Oslo is not repeated without a model to read the new one.
    assert "Oslo Grand Hotel is placed" not in result.answer
    typed = [a for a in executor.performed if isinstance(a, TypeText)]
    assert typed[0].text == "Bergen"
    with pytest.raises(ReplayRefused, match="not in the recorded task"):
        with_parameters(recording, [("Paris", "Rome")])
    with pytest.raises(ReplayRefused, match="no recorded typing contains"):
        with_parameters(recording, [("Grand", "Small")])


def test_unfinished_recording_is_refused_without_the_flag(tmp_path: Path) -> None:
    store = TrajectoryStore(tmp_path)
    app = FakeApp()
    replies = [*solver_replies(app)[:2], lambda m, i: format_call("I give up.", Terminate("failure"))]
    recorder = store.start(TASK)
    run_task(TASK, backend=ScriptedBackend(replies), screen=AppScreen(app),
             executor=AppExecutor(app), gate=Gate("never"), recorder=recorder,
             config=RunConfig(offline=False))
    recording = from_record(store.load(recorder.run_id))
    with pytest.raises(ReplayRefused, match="--allow-unfinished"):
        check_replayable(recording)
    check_replayable(recording, allow_unfinished=True)


def test_keys_with_nothing_checked_before_them_need_a_screen_like_the_recorded_one(
        tmp_path: Path) -> None:
    from agent.actions import KeyPress

    store = TrajectoryStore(tmp_path)
    app = FakeApp()
    replies = [format_call("Select everything.", KeyPress(("ctrl", "a"))),
               *solver_replies(app)]
    recorder = store.start(TASK)
    run_task(TASK, backend=ScriptedBackend(replies), screen=AppScreen(app),
             executor=AppExecutor(app), gate=Gate("never"), recorder=recorder,
             config=RunConfig(offline=False))
    recording = from_record(store.load(recorder.run_id))

    class BlankScreen(AppScreen):  # another window entirely: nothing like the recording
        def capture(self, index: int = 1):
            shot = super().capture(index)
            return type(shot)(Image.new("RGB", shot.image.size, (20, 20, 20)), shot.monitor)

    other = FakeApp()
    executor = AppExecutor(other)
    result = run_task(TASK, backend=ReplayBackend(recording), screen=BlankScreen(other),
                      executor=executor, gate=Gate("never"), config=RunConfig(offline=False))
    assert result.status is RunStatus.STOPPED and executor.performed == []
    assert "does not look like the recorded one" in result.reason

    same = FakeApp(offset=(20, 30))
    result = run_task(TASK, backend=ReplayBackend(recording), screen=AppScreen(same),
                      executor=AppExecutor(same), gate=Gate("never"),
                      config=RunConfig(offline=False))
    assert result.status is RunStatus.SUCCESS and same.page == "done"


def test_resume_never_skips_a_recorded_action_because_a_later_screen_looks_alike(
        tmp_path: Path) -> None:
    from agent.actions import KeyPress

    store = TrajectoryStore(tmp_path)
    app = FakeApp()
    replies = [*solver_replies(app)[:2],
               lambda m, i: format_call("Save it.", LeftClick(model_point(app, "save", i))),
               format_call("Print it.", KeyPress(("ctrl", "p"))),
               format_call("Saved.", Terminate("success"))]
    recorder = store.start(TASK)
    run_task(TASK, backend=ScriptedBackend(replies), screen=AppScreen(app),
             executor=AppExecutor(app), gate=Gate("never"), recorder=recorder,
             config=RunConfig(offline=False))
    assert app.clicks == ["search", "oslo", "save"]
    # Both clicks' targets are not found now; "Save" changes nothing on screen, so the screen
    # recorded before ctrl+p looks just like the hotel page the model reaches.
    other = FakeApp(renamed={"oslo": "Trondheim Fjord Lodge", "save": "Keep this hotel"})
    model = ScriptedBackend([
        lambda m, i: format_call("Open the hotel.", LeftClick(model_point(other, "oslo", i))),
        lambda m, i: format_call("Keep it.", LeftClick(model_point(other, "save", i)))])
    backend = ReplayBackend(from_record(store.load(recorder.run_id)), fallback=model)
    executor = AppExecutor(other)
    result = run_task(TASK, backend=backend, screen=AppScreen(other), executor=executor,
                      gate=Gate("never"), config=RunConfig(offline=False))
    assert result.status is RunStatus.SUCCESS
    assert other.clicks == ["search", "oslo", "save"] and len(model.calls) == 2
    assert [a for a in executor.performed if isinstance(a, KeyPress)]  # then resumed at ctrl+p
