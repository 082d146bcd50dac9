"""Run records: a killed run leaves a readable prefix; list/show/export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.actions import LeftClick, Terminate, format_call
from agent.inference.base import ScriptedBackend
from agent.loop import run_task
from agent.safety import Gate
from agent.trajectory import TrajectoryStore
from tests.support.fakes import FakeScreen, RecordingExecutor

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys
from agent.actions import LeftClick, format_call
from agent.inference.base import ScriptedBackend
from agent.loop import run_task
from agent.safety import Gate, Limits
from agent.loop import RunConfig
from agent.trajectory import TrajectoryStore
from tests.support.fakes import FakeScreen, RecordingExecutor
store = TrajectoryStore(sys.argv[1])
rec = store.start("endless task")
print(rec.run_id, flush=True)
reply = format_call("Clicking again and again. " * 20, LeftClick((3, 3)))
run_task("endless task", backend=ScriptedBackend([reply], repeat_last=True, token_delay=0.002),
         screen=FakeScreen(), executor=RecordingExecutor(), gate=Gate("never"), recorder=rec,
         config=RunConfig(limits=Limits(max_steps=10_000, stall_repeats=10_000)))
"""


def test_killed_run_leaves_a_readable_prefix(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    run_id = proc.stdout.readline().strip()
    steps_file = tmp_path / run_id / "steps.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if steps_file.exists() and steps_file.read_text().count("\n") >= 3:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-step: generating, saving or appending
    proc.wait()
    store = TrajectoryStore(tmp_path)
    record = store.load(run_id)
    assert len(record.steps) >= 3
    assert all(s.action is not None and s.action.name == "left_click" for s in record.steps)
    info = store.list_runs()[0]
    assert info.status == "interrupted" and info.steps == len(record.steps)
    html = store.export_html(run_id).read_text()
    assert html.count("<section>") == len(record.steps)


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    store = TrajectoryStore(tmp_path)
    rec = store.start("t")
    run_task("t", backend=ScriptedBackend([format_call("a", LeftClick((1, 1))),
                                           format_call("b", Terminate("success"))]),
             screen=FakeScreen(), executor=RecordingExecutor(), gate=Gate("never"), recorder=rec)
    with open(rec.path / "steps.jsonl", "a") as f:
        f.write('{"index": 2, "thou')
    assert len(store.load(rec.run_id).steps) == 2


def test_export_is_self_contained_with_markers(tmp_path: Path) -> None:
    store = TrajectoryStore(tmp_path)
    rec = store.start("find the blue box")
    run_task("find the blue box",
             backend=ScriptedBackend([format_call("Click it.", LeftClick((700, 400))),
                                      format_call("Found.", Terminate("success"))]),
             screen=FakeScreen(), executor=RecordingExecutor(), gate=Gate("never"), recorder=rec)
    out = store.export_html("last", tmp_path / "run.html")
    html = out.read_text()
    assert "find the blue box" in html and "data:image/jpeg;base64," in html
    assert "http://" not in html and "https://" not in html
    meta = json.loads((rec.path / "run.json").read_text())
    assert meta["status"] == "success" and meta["steps"] == 2
    step = store.load(rec.run_id).steps[0]
    x, _y = step.screenshot_point
    assert abs(x - 700 * 1920 / step.model_size.width) < 1


def test_resolve_by_prefix_and_errors(tmp_path: Path) -> None:
    store = TrajectoryStore(tmp_path)
    rec = store.start("t")
    assert store.resolve(rec.run_id[:-2]) == rec.path
    for bad in ("nope", "../etc"):
        try:
            store.resolve(bad)
        except KeyError:
            pass
        else:
            raise AssertionError(bad)
