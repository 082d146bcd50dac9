"""Adaptive compute (off by default): smaller history screenshots, waits without the model."""

from __future__ import annotations

from PIL import Image

from agent.actions import LeftClick, Terminate, Wait, format_call
from agent.geometry import Size
from agent.inference.base import ScriptedBackend
from agent.inference.vl_inputs import image_digest
from agent.loop import RunConfig, RunStatus, run_task
from agent.prompts import Turn, get_family
from agent.prompts.fara import reduced
from agent.safety import Gate
from tests.support.fakes import FakeScreen, RecordingExecutor


def _shots(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (1428, 896), (10 * i, 100, 200)) for i in range(n)]


def test_history_scale_shrinks_only_earlier_screenshots_and_is_stable() -> None:
    family = get_family()
    shots = _shots(4)
    history = [Turn(im, "reply", None) for im in shots[:3]]
    _, full = family.build("t", history, shots[3], Size(1428, 896))
    _, half = family.build("t", history, shots[3], Size(1428, 896), history_scale=0.5)
    assert [im.size for im in full] == [(1428, 896)] * 3
    assert [im.size for im in half] == [(728, 448), (728, 448), (1428, 896)]  # 714 rounds to 728
    assert all(w % 28 == 0 and h % 28 == 0 for w, h in (im.size for im in half))
    # The same history screenshot gives the same pixels every step: the vision cache still hits.
    assert image_digest(reduced(shots[1], 0.5)) == image_digest(reduced(shots[1], 0.5))
    assert reduced(shots[0], 1.0) is shots[0]


def test_history_scale_reaches_the_model_through_the_loop() -> None:
    backend = ScriptedBackend([format_call("a", LeftClick((10, 10))),
                               format_call("b", LeftClick((20, 10))),
                               format_call("ok", Terminate("success"))])
    result = run_task("t", backend=backend, screen=FakeScreen(), executor=RecordingExecutor(),
                      gate=Gate("never"), config=RunConfig(history_scale=0.5))
    assert result.status is RunStatus.SUCCESS
    sizes = [[im.size for im in images] for _, images in backend.calls]
    assert sizes[2][0][0] < sizes[2][2][0] and sizes[2][1] == sizes[2][0]


class _StillThenChanged(FakeScreen):
    """A screen that stays unchanged for `still` settles, then changes."""

    def __init__(self, still: int) -> None:
        super().__init__(frozen=True)
        self.still = still
        self.settles = 0

    def wait_settled(self, index: int = 1, **kwargs):
        self.settles += 1
        if self.settles > self.still:
            self.frame += 1
        return self.capture(index)


def _wait_run(idle_waits: int, still: int):
    backend = ScriptedBackend([format_call("Loading, I will wait.", Wait(time=0)),
                               format_call("Done.", Terminate("success"))])
    executor = RecordingExecutor()
    steps = []
    result = run_task("t", backend=backend, screen=_StillThenChanged(still), executor=executor,
                      gate=Gate("never"), config=RunConfig(idle_waits=idle_waits),
                      on_step=steps.append)
    return result, steps, executor, backend


def test_unchanged_screen_after_wait_waits_again_without_the_model() -> None:
    result, steps, executor, backend = _wait_run(idle_waits=3, still=2)
    assert result.status is RunStatus.SUCCESS
    assert len(backend.calls) == 2 and len(steps) == 2  # no model call for the repeated waits
    assert [type(a) for a, _ in executor.performed] == [Wait, Wait, Wait]
    assert "waited 2 more times without asking the model" in steps[0].note


def test_idle_waits_are_bounded_and_off_by_default() -> None:
    _, steps, executor, _ = _wait_run(idle_waits=1, still=5)
    assert len(executor.performed) == 2 and "waited 1 more time " in steps[0].note
    _, steps, executor, _ = _wait_run(idle_waits=0, still=5)
    assert len(executor.performed) == 1 and steps[0].note is None


def test_options_reach_the_cli_and_the_eval_manifest(tmp_path) -> None:
    import pytest

    from agent.eval.runner import EvalSettings
    from app.commands import build_parser

    args = build_parser().parse_args(["run", "t", "--history-scale", "0.5", "--idle-waits", "2"])
    assert (args.history_scale, args.idle_waits) == (0.5, 2)
    for bad in ("0", "1.5", "half"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["run", "t", "--history-scale", bad])
    tasks = tmp_path / "t.jsonl"
    tasks.write_text("")
    plain = EvalSettings(tasks=tasks, model="server:http://127.0.0.1:1/v1").manifest()
    assert "history_scale" not in plain and "idle_waits" not in plain  # old run folders keep their hash
    adaptive = EvalSettings(tasks=tasks, model="server:http://127.0.0.1:1/v1", history_scale=0.5,
                            idle_waits=3).manifest()
    assert adaptive["history_scale"] == 0.5 and adaptive["idle_waits"] == 3
