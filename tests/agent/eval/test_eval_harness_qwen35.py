"""The tiny random Qwen3.5 export through the harness: one offline task runs and files a result.

The harness gives the model its family's own pixel budget: Fara1.5 sees the 1440x900 viewport
as 1440x896 (factor 32), not at Fara-7B's budget (which would give it 1408x864).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

from agent.eval.results import read_results
from agent.eval.runner import EvalSettings, run_eval
from agent.paths import asset
from tests.support.qwen35 import qwen35_export

pytestmark = [pytest.mark.xvfb, pytest.mark.slow]


def test_tiny_qwen35_model_runs_an_offline_task(tmp_path: Path, xvfb_display: str) -> None:
    settings = EvalSettings(tasks=asset("tasks", "offline-webvoyager.jsonl"),
                            model=str(qwen35_export("fp32")), out=tmp_path / "run", limit=1,
                            max_steps=2, provider="cpu")
    assert settings.model_pixels is None  # the family's own budget
    summary = run_eval(settings, displays=[xvfb_display])
    assert summary.ran == 1 and summary.passed == 0
    (record,) = read_results(tmp_path / "run")
    assert record.failure in ("no_answer", "step_budget", "wrong_answer"), record
    assert record.steps >= 1 and record.timings["model"] > 0
    lines = (tmp_path / "run" / record.dir / "steps.jsonl").read_text().splitlines()
    steps = [json.loads(line) for line in lines]
    assert steps[0]["model_text"] is not None
    assert {tuple(s["screenshot_size"]) for s in steps} == {(1440, 900)}
    assert {tuple(s["model_size"]) for s in steps} == {(1440, 896)}
