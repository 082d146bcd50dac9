"""Examples made ahead in worker processes are the examples made in place, and a run that
trains with workers trains on the very batches of one without (to the last bit)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from app.nano.prefetch import ExampleMaker, Examples
from app.nano.train import main

MICRO = ["--family", "fara15", "--size", "micro", "--seed", "3", "--batch", "3",
         "--eval-every", "1000", "--eval-n", "1", "--warmup", "2", "--max-steps", "3",
         "--screens", "ladder", "--buttons", "1-1"]


def _same(a, b) -> bool:
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            if not (x.dtype == y.dtype and np.array_equal(x, y)):
                return False
        elif x != y:
            return False
    return True


def _maker(tmp_path: Path) -> ExampleMaker:
    from tokenizers import Tokenizer

    from agent.inference.chat import find_chat_template
    from app.nano.examples import Encoder
    from app.nano.model import SIZES, make_folder

    folder = tmp_path / "model"
    make_folder("fara15", folder, SIZES["micro"])
    encoder = Encoder("fara15", Tokenizer.from_file(str(folder / "tokenizer.json")),
                      find_chat_template(folder))
    return ExampleMaker(encoder, "ladder", (1, 1))


def test_workers_make_each_step_the_examples_made_in_place_even_out_of_order(
        tmp_path: Path) -> None:
    maker = _maker(tmp_path)

    def indices(step: int) -> range:
        return range(100 + 2 * step, 102 + 2 * step)

    here = Examples(maker, indices, workers=0)
    with Examples(maker, indices, workers=2, ahead=3) as ahead:
        # 0, 1 in order; then 5 (a resumed run starts elsewhere: what was made ahead is
        # dropped), then 6 and 7 from the new run of steps.
        for step in (0, 1, 5, 6, 7):
            made, wanted = ahead.step(step), here.step(step)
            assert len(made) == len(wanted) == 2
            assert all(_same(a, b) for a, b in zip(made, wanted, strict=True)), step
    assert ahead.pool is None  # the workers are stopped
    with pytest.raises(ValueError, match="workers"):
        Examples(maker, indices, workers=-1)


def test_a_run_with_workers_trains_to_the_same_weights_as_one_without(tmp_path: Path) -> None:
    import torch

    plain, spread = tmp_path / "plain", tmp_path / "spread"
    assert main([*MICRO, "--out", str(plain)]) == 0
    assert main([*MICRO, "--out", str(spread), "--workers", "2"]) == 0
    records = [[json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
               for out in (plain, spread)]
    steps = [[r["loss"] for r in run if r["kind"] == "step"] for run in records]
    assert len(steps[0]) == 3 and steps[0] == steps[1]
    a = torch.load(plain / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(spread / "checkpoint.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_negative_worker_count_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*MICRO, "--out", str(tmp_path / "x"), "--workers", "-1"])
    assert exc.value.code == 2 and not (tmp_path / "x").exists()
