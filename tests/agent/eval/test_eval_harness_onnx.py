"""The tiny random ONNX model through the whole harness: tasks fail, the run completes and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

from agent.eval.report import write_report
from agent.eval.results import read_results
from agent.eval.runner import EvalSettings, run_eval
from agent.paths import asset

pytestmark = [pytest.mark.xvfb, pytest.mark.slow]


def test_tiny_onnx_model_runs_two_tasks_end_to_end(export_fp32: Path, tmp_path: Path,
                                                   xvfb_display: str) -> None:
    settings = EvalSettings(tasks=asset("tasks", "offline-webvoyager.jsonl"), model=str(export_fp32),
                            out=tmp_path / "run", limit=2, max_steps=3, provider="cpu")
    first = run_eval(settings, displays=[xvfb_display])
    assert first.ran == 2 and first.passed == 0
    records = read_results(tmp_path / "run")
    assert len(records) == 2
    for record in records:
        assert record.failure in ("no_answer", "step_budget", "wrong_answer"), record
        assert record.steps >= 1 and record.timings["model"] > 0
        steps = (tmp_path / "run" / record.dir / "steps.jsonl").read_text().splitlines()
        assert json.loads(steps[0])["model_text"] is not None  # the raw model text is kept

    again = run_eval(settings, displays=[xvfb_display])
    assert (again.ran, again.skipped) == (0, 2)

    summary_path, report_path = write_report(tmp_path / "run")
    summary = json.loads(summary_path.read_text())
    assert summary["overall"] == {"n": 2, "passed": 0, "rate": 0.0,
                                  "ci95": [0.0, pytest.approx(0.658, abs=1e-3)]}
    assert summary["time_per_step_s"]["model"] > 0
    assert report_path.stat().st_size > 0
