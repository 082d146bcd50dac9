"""Nano training: a micro run writes a checkpoint, and a resumed run continues exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.nano.train import main

MICRO = ["--family", "fara15", "--size", "micro", "--minutes", "10", "--seed", "3",
         "--batch", "2", "--eval-every", "1000", "--eval-n", "1", "--warmup", "2"]


def _losses(out: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if r["kind"] == "step"]


def test_resumed_run_continues_at_step_4_with_the_uninterrupted_losses(tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main([*MICRO, "--out", str(whole), "--max-steps", "5"]) == 0
    assert main([*MICRO, "--out", str(parts), "--max-steps", "3"]) == 0
    assert (parts / "checkpoint.pt").is_file() and (parts / "model" / "config.json").is_file()
    first = _losses(parts)
    assert [s for s, _ in first] == [1, 2, 3]
    assert main([*MICRO, "--out", str(parts), "--max-steps", "5", "--resume"]) == 0
    resumed = _losses(parts)
    assert [s for s, _ in resumed] == [1, 2, 3, 4, 5]  # continued at step 4
    assert resumed == _losses(whole)  # the same loss at every step, to the last bit
    assert (parts / "curve.png").is_file()
    evals = [json.loads(line) for line in (parts / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert evals and {"heldout", "heldout_words", "heldout_parsed"} <= set(evals[-1])


def test_a_finished_folder_is_not_overwritten_without_resume(tmp_path: Path) -> None:
    assert main([*MICRO, "--out", str(tmp_path), "--max-steps", "1"]) == 0
    with pytest.raises(SystemExit):
        main([*MICRO, "--out", str(tmp_path), "--max-steps", "2"])
