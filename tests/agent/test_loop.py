"""The loop end to end with scripted fakes: step records, retries, stops, gate, limits."""

from __future__ import annotations

import threading

from agent.actions import LeftClick, MemorizeFact, Terminate, TypeText, format_call
from agent.inference.base import Backend, Generation, ScriptedBackend
from agent.loop import PHASES, RunConfig, RunStatus, iter_steps, run_task
from agent.safety import ConfirmRequest, Decision, Gate, Limits, StopFlag
from agent.trajectory import TrajectoryStore
from tests.support.fakes import FakeScreen, RecordingExecutor


def run(replies, *, screen=None, gate=None, limits=None, stop=None, recorder=None, **kw):
    screen = screen or FakeScreen()
    executor = RecordingExecutor()
    steps = []
    result = run_task("Do the thing", backend=ScriptedBackend(replies, **kw), screen=screen,
                      executor=executor, gate=gate or Gate("never"),
                      config=RunConfig(limits=limits or Limits()), stop=stop, recorder=recorder,
                      on_step=steps.append)
    return result, steps, executor


def test_click_then_finish_yields_typed_steps_with_timings() -> None:
    replies = [format_call("Click the blue button.", LeftClick((714, 448))),
               format_call("Done, the answer is 42.", Terminate("success"))]
    result, steps, executor = run(replies)
    assert result.status is RunStatus.SUCCESS
    assert result.answer == "Done, the answer is 42."
    assert [s.index for s in steps] == [0, 1]
    assert isinstance(steps[0].action, LeftClick)
    assert set(PHASES) - {"look"} <= set(steps[0].timings)  # "look": only a second look's step
    assert steps[0].mapping.model.width == 1428 or steps[0].mapping.model.pixels <= 1428 * 896
    # model (714, 448) on a 1920x1080 screen whose model image is smaller: mapped by ratio
    (_, point), = executor.performed
    m = steps[0].mapping
    assert abs(point[0] - 714 * 1920 / m.model.width) <= 1
    assert abs(point[1] - 448 * 1080 / m.model.height) <= 1


def test_model_sees_resized_screenshot_and_history_window() -> None:
    backend = ScriptedBackend([format_call(f"s{i}", LeftClick((10 + i, 10))) for i in range(5)]
                              + [format_call("ok", Terminate("success"))])
    run_task("t", backend=backend, screen=FakeScreen(), executor=RecordingExecutor(),
             gate=Gate("never"))
    counts = [len(images) for _, images in backend.calls]
    assert counts == [1, 2, 3, 3, 3, 3]
    _, images = backend.calls[0]
    assert images[0].size[0] % 28 == 0 and images[0].size[1] % 28 == 0


def test_parse_error_is_retried_once_with_feedback_then_continues() -> None:
    replies = ["I am not sure what to do.", format_call("Finished.", Terminate("success"))]
    backend = ScriptedBackend(replies)
    steps = []
    result = run_task("t", backend=backend, screen=FakeScreen(), executor=RecordingExecutor(),
                      gate=Gate("never"), on_step=steps.append)
    assert result.status is RunStatus.SUCCESS
    assert steps[0].error and steps[0].retry and steps[0].action is None
    retry_messages, retry_images = backend.calls[1]
    assert retry_messages[-1]["role"] == "user"
    assert "could not be used" in retry_messages[-1]["content"][0]["text"]
    assert len(retry_images) == 1  # same screen, no new capture


def test_second_parse_error_stops_cleanly_with_reason() -> None:
    result, steps, executor = run(["garbage", "<tool_call>{oops"])
    assert result.status is RunStatus.MODEL_ERROR
    assert "could not be used" in result.reason
    assert len(steps) == 2 and not executor.performed


def test_gate_denial_stops_without_acting() -> None:
    asked: list[ConfirmRequest] = []

    def deny(request: ConfirmRequest) -> Decision:
        asked.append(request)
        return Decision.DENY

    replies = [format_call("Click Place order to buy.", LeftClick((5, 5)))]
    result, steps, executor = run(replies, gate=Gate("risky", ask=deny))
    assert result.status is RunStatus.DENIED
    assert asked and not executor.performed
    assert steps[-1].verdict is not None and not steps[-1].verdict.allowed


def test_stall_detection_stops_repeated_clicks_on_unchanged_screen() -> None:
    replies = [format_call("Click.", LeftClick((5, 5)))]
    result, steps, _ = run(replies, screen=FakeScreen(frozen=True), repeat_last=True,
                           limits=Limits(stall_repeats=3))
    assert result.status is RunStatus.STALLED
    assert len(steps) == 3


def test_max_steps() -> None:
    replies = [format_call("Type.", TypeText("a"))]
    result, steps, _ = run(replies, repeat_last=True, limits=Limits(max_steps=4))
    assert result.status is RunStatus.MAX_STEPS and len(steps) == 4


def test_stop_between_tokens_ends_generation_promptly() -> None:
    stop = StopFlag()
    long_reply = format_call("word " * 400, LeftClick((5, 5)))
    timer = threading.Timer(0.1, stop.set)
    timer.start()
    result, _steps, executor = run([long_reply], stop=stop, token_delay=0.005)
    assert result.status is RunStatus.STOPPED
    assert not executor.performed


def test_memorized_facts_are_returned() -> None:
    replies = [format_call("Note it.", MemorizeFact("price is 12 EUR")),
               format_call("Done.", Terminate("success"))]
    result, _, _ = run(replies)
    assert result.facts == ("price is 12 EUR",)


def test_backend_error_is_a_clean_stop() -> None:
    from agent.inference.base import BackendError

    class Broken(Backend):
        name = "broken"

        def _generate(self, request) -> Generation:
            raise BackendError("model folder is unreadable")

    result = run_task("t", backend=Broken(), screen=FakeScreen(), executor=RecordingExecutor(),
                      gate=Gate("never"))
    assert result.status is RunStatus.ERROR and "unreadable" in result.reason


def test_generator_form_and_recording(tmp_path) -> None:
    store = TrajectoryStore(tmp_path)
    recorder = store.start("t", {"model": "scripted"})
    gen = iter_steps("t", backend=ScriptedBackend([format_call("a", LeftClick((1, 1))),
                                                   format_call("b", Terminate("success"))]),
                     screen=FakeScreen(), executor=RecordingExecutor(), gate=Gate("never"),
                     recorder=recorder)
    steps = list(gen)
    assert len(steps) == 2 and steps[0].screenshot_file == "step-000.png"
    record = store.load(recorder.run_id)
    assert record.info.status == "success" and len(record.steps) == 2
    assert record.steps[0].screenshot_point is not None


def test_disk_full_stops_cleanly_and_keeps_what_was_written(tmp_path, monkeypatch) -> None:
    import errno

    store = TrajectoryStore(tmp_path)
    recorder = store.start("t")
    real_save = recorder.save_screenshot

    def full_disk(index, image):
        if index >= 1:  # the PNG write fails with ENOSPC from step 2 on
            monkeypatch.setattr(type(image), "save", _raise_enospc)
        return real_save(index, image)

    def _raise_enospc(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recorder, "save_screenshot", full_disk)
    result, _steps, _ = run([format_call("a", LeftClick((1, 1)))], repeat_last=True, recorder=recorder)
    assert result.status is RunStatus.ERROR and "disk is full" in result.reason
    assert len(store.load(recorder.run_id).steps) == 1
