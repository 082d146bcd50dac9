"""The expected time per step, from the probe timed after the model's warm-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.inference.base import FinishReason, Generation
from app import step_estimate
from app.step_estimate import STEP_PROMPT_TOKENS, STEP_REPLY_TOKENS, StepEstimate, from_generation

ROOT = Path(__file__).resolve().parents[2]


def gen(prompt_tokens: int, generated: int, **timings: float) -> Generation:
    return Generation("x", prompt_tokens, generated, timings, FinishReason.LENGTH)


def test_the_formula_scales_the_probe_rates_to_a_step() -> None:
    # 100 prompt tokens in 0.5 s vision + 1.5 s prefill: 50 tok/s; 4 tokens = 3 decode steps.
    est = from_generation(gen(100, 4, vision=0.5, prefill=1.5, decode=0.75, total=2.8))
    assert est == StepEstimate(50.0, 0.25)
    assert STEP_PROMPT_TOKENS == 1632 + 100 and STEP_REPLY_TOKENS == 80
    assert est.step_s == pytest.approx(1732 / 50 + 80 * 0.25)  # 54.64 s
    assert est.text().startswith("about 55 s per step on this machine (prompt 50 tok/s, "
                                 "reply 4.0 tok/s")
    slow = StepEstimate(5.0, 1.0)  # 346 s + 80 s: said in minutes
    assert slow.text().startswith("about 7.1 min per step")


def test_backends_without_phase_timings_use_total_minus_decode() -> None:
    est = from_generation(gen(200, 3, total=5.0, decode=1.0))
    assert est == StepEstimate(50.0, 0.5)


@pytest.mark.parametrize("bad", [gen(100, 1, vision=0.1, prefill=1, decode=0.0),
                                 gen(0, 8, prefill=1.0, decode=1.0),
                                 gen(100, 8, total=1.0)])
def test_a_probe_that_measured_nothing_gives_no_estimate(bad) -> None:
    assert from_generation(bad) is None


class FakeBackend:
    def __init__(self) -> None:
        self.calls: list[object] = []

    def warm_up(self) -> float:
        self.calls.append("warm_up")
        return 1.0

    def generate(self, messages, images, *, max_new_tokens):
        self.calls.append((images[0].size, max_new_tokens))
        return gen(90, 8, vision=0.25, prefill=0.5, decode=0.875)


def test_the_probe_runs_after_the_warm_up_on_a_model_sized_image() -> None:
    backend = FakeBackend()
    est = step_estimate.probe(backend)
    assert backend.calls == ["warm_up", ((224, 224), 8)]
    assert est == StepEstimate(120.0, 0.125)
    backend.generate = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("broken"))
    assert step_estimate.measure(backend) is None  # never stops the app or the run


def test_the_probe_on_a_real_onnx_model(export_int4: Path) -> None:
    pytest.importorskip("onnxruntime")
    from agent.inference.onnx import OnnxBackend

    est = step_estimate.probe(OnnxBackend(str(export_int4), provider="cpu"))
    assert est is not None and est.prompt_tokens_per_s > 0 and est.decode_s_per_token > 0


@pytest.mark.xvfb
def test_deskhand_run_says_the_time_per_step_on_its_first_line(xvfb_display: str, tmp_path,
                                                               export_int4: Path) -> None:
    pytest.importorskip("onnxruntime")
    env = {**os.environ, "DISPLAY": xvfb_display, "DESKHAND_DATA_DIR": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "app.commands", "run", "look", "--model",
                          str(export_int4), "--provider", "cpu", "--dry-run", "--max-steps", "1"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL)
    first = out.stdout.splitlines()[0]
    assert first.startswith("deskhand: run "), out.stdout + out.stderr
    assert "— look (dry run) · about " in first, out.stdout + out.stderr
    assert "per step on this machine" in first and "measured after warm-up" in first
