"""steps.jsonl: one typed record (`StepRecord`), one writer, one reader, one rule for a bad line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from PIL import Image

from agent.actions import KeyPress, LeftClick, Terminate, TypeText, format_call
from agent.eval.report import _task_steps
from agent.geometry import Monitor, ScreenMapping, Size
from agent.inference.base import ScriptedBackend
from agent.loop import Step, run_task
from agent.replay.backend import ReplayCheck
from agent.replay.recording import from_record
from agent.safety import Decision, Gate, GateVerdict
from agent.screen import Screenshot
from agent.step_record import GateRecord, StepRecord, read_steps
from agent.trajectory import TrajectoryStore, render_html
from tests.support.fakes import FakeScreen, RecordingExecutor


def a_step(**changes: object) -> Step:
    monitor = Monitor(1, 1920, 0, 2560, 1440, 1.25, name="DP-2")
    mapping = ScreenMapping(monitor, Size(2560, 1440), Size(1288, 728))
    fields: dict = dict(
        index=4, screenshot=Screenshot(Image.new("RGB", (8, 8)), monitor), mapping=mapping,
        model_text="<tool_call>…</tool_call>", thoughts="Click Save\u2028then go on.",
        action=LeftClick((644, 364)), error=None, timings={"capture": 0.123456, "model": 2.0},
        prompt_tokens=900, generated_tokens=31,
        verdict=GateVerdict(False, True, ("payment",), Decision.DENY),
        screenshot_file="step-004.png", url="http://127.0.0.1/x", note="checked",
        replay=ReplayCheck(3, "verified", 0.98765, 0.5, (2, -1), False, "", 0.01))
    fields.update(changes)
    return Step(**fields)


def test_a_step_round_trips_through_its_json_line() -> None:
    record = StepRecord.from_step(a_step(), now=1_700_000_000.5,
                                  offline_attempts=({"operation": "resolve"},))
    line = json.dumps(record.to_json(), ensure_ascii=False)
    again, problems = StepRecord.from_json(json.loads(line))
    assert again == record and problems == []
    # Typed fields, parsed once: the action is an Action, sizes are Sizes, the gate a record.
    assert again.action == LeftClick((644, 364)) and again.model_size == Size(1288, 728)
    assert again.gate == GateRecord(False, True, ("payment",), "deny")
    assert again.screenshot_point == (1280.0, 720.0) and again.timings["capture"] == 0.1235
    assert again.monitor == Monitor(1, 1920, 0, 2560, 1440, 1.25)
    assert again.replay is not None and again.replay["moved"] == [2, -1]


def test_every_action_kind_and_an_actionless_step_round_trip() -> None:
    for action in (TypeText("héllo", press_enter=True), KeyPress(("ctrl", "s")),
                   Terminate("failure"), None):
        step = a_step(action=action, error=None if action else "no tool call", verdict=None,
                      replay=None)
        record = StepRecord.from_step(step, now=1.0)
        assert StepRecord.from_json(json.loads(json.dumps(record.to_json())))[0] == record


def test_the_recorder_writes_what_the_reader_returns(tmp_path: Path) -> None:
    store = TrajectoryStore(tmp_path)
    rec = store.start("t")
    seen: list[Step] = []
    run_task("t", backend=ScriptedBackend([format_call("Click.", LeftClick((5, 5))),
                                           format_call("Done.", Terminate("success"))]),
             screen=FakeScreen(), executor=RecordingExecutor(), gate=Gate("never"),
             recorder=rec, on_step=seen.append)
    loaded = store.load(rec.run_id).steps
    assert [s.action for s in loaded] == [s.action for s in seen]
    for step, record in zip(seen, loaded, strict=True):
        expected = StepRecord.from_step(step, now=record.time,
                                        offline_attempts=record.offline_attempts)
        shot = str((rec.path / step.screenshot_file).resolve())
        assert record == dataclasses.replace(expected, screenshot=shot)


def damaged_run(root: Path) -> Path:
    """A run whose steps.jsonl holds good steps around one damaged line of each kind."""
    folder = root / "20260101-000000-damaged"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"task": "t", "started": 1.0, "status": "success",
                                                 "steps": 4, "answer": "a"}))
    good = {"index": 0, "action": {"action": "left_click", "coordinate": [1, 2]},
            "description": "click", "thoughts": "first"}
    lines = [json.dumps(good),
             "{not json",                                              # line 2: not JSON
             json.dumps([1, 2]),                                       # line 3: not an object
             json.dumps({**good, "index": 1, "retry": "no"}),          # line 4: a mistyped field
             json.dumps({**good, "index": 2, "action": {"action": "fly"}}),  # line 5: no action
             json.dumps({**good, "index": 3, "thoughts": "last"})]
    (folder / "steps.jsonl").write_text("\n".join(lines) + "\n" + '{"index": 4, "thou',
                                        encoding="utf-8")  # a torn last line: killed mid-write
    return folder


def test_a_damaged_line_costs_only_itself_in_every_reader(tmp_path: Path) -> None:
    folder = damaged_run(tmp_path)
    steps, problems = read_steps(folder)
    assert [s.index for s in steps] == [0, 1, 2, 3]
    # Each damaged line or field is named once; the torn last line is a write cut short.
    assert [p.split(": ", 1)[0].rsplit(" ", 1)[-1] for p in problems] == ["2", "3", "4", "5"]
    assert steps[1].retry is False and steps[2].action is None
    # The store, the HTML export, the eval report and replay all see the same steps.
    record = TrajectoryStore(tmp_path).load(folder.name)
    assert record.steps == steps and record.problems == tuple(problems)
    assert render_html(record).count("<section>") == 4
    assert _task_steps(tmp_path, folder.name, 10).count("<div class=step>") == 4
    # A mistyped "retry" no longer makes replay drop the step (it did: "no" is truthy).
    assert [s.index for s in from_record(record).steps] == [0, 1, 3]


def test_a_steps_note_is_in_the_html_export_escaped(tmp_path: Path) -> None:
    """The step's note (what the loop did besides the model's answer: a second look, a stall)
    is shown where a person reads the run; a page's text in it stays text."""
    folder = tmp_path / "20260101-000000-noted"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"task": "t", "started": 1.0, "status": "success",
                                                 "steps": 1}))
    note = "a second look <script>alert(1)</script> moved the point to (798, 425)"
    step = {"index": 0, "action": {"action": "left_click", "coordinate": [1, 2]},
            "description": "click", "note": note}
    (folder / "steps.jsonl").write_text(json.dumps(step) + "\n", encoding="utf-8")
    page = render_html(TrajectoryStore(tmp_path).load(folder.name))
    assert "moved the point to (798, 425)" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
