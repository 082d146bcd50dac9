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


def test_a_snapshot_starts_the_next_stage_with_the_same_weights(tmp_path: Path) -> None:
    """A snapshot (fp16 safetensors, no optimizer, no pickle) is a valid --init-from: the next
    stage starts from the run's weights (to fp16 precision), and a broken one is refused."""
    import torch

    from app.nano import snapshot

    run, snap, nxt = tmp_path / "run", tmp_path / "snap", tmp_path / "next"
    assert main([*MICRO, "--out", str(run), "--max-steps", "2"]) == 0
    assert snapshot.main(["--run", str(run), "--out", str(snap)]) == 0
    assert sorted(p.name for p in snap.iterdir()) == ["model", "snapshot.json",
                                                      "weights.safetensors"]
    info, weights, heads = snapshot.read(snap)
    assert info["family"] == "fara15" and info["step"] == 2 and heads
    trained = torch.load(run / "checkpoint.pt", weights_only=False)
    for name, value in trained["model"].items():
        assert torch.allclose(weights[name], value, rtol=1e-3, atol=1e-4), name
    # The next stage starts from it: at step 0 its weights are the snapshot's.
    assert main([*MICRO, "--out", str(nxt), "--max-steps", "1", "--init-from", str(snap),
                 "--lr", "0"]) == 0
    started = torch.load(nxt / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(started[k], weights[k]) for k in weights)
    with pytest.raises(SystemExit, match="trained fara15, not fara"):
        main([*MICRO[:1], "fara", *MICRO[2:], "--out", str(tmp_path / "x"), "--max-steps", "1",
              "--init-from", str(snap)])
    (snap / "weights.safetensors").write_bytes(b"not tensors")
    with pytest.raises(SystemExit, match="not a readable Nano snapshot"):
        main([*MICRO, "--out", str(tmp_path / "y"), "--max-steps", "1", "--init-from", str(snap)])
