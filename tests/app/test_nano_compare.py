"""Two Nano folders compared screen by screen (app.nano.compare) and the paired statistics under
it (agent.eval.compare): the test of "training from scratch reproduces the shipped model"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.eval.compare import _newcombe, mcnemar_p, paired_difference
from app.nano.compare import POOLED, paired
from app.nano.compare import main as compare
from app.nano.ship import main as ship
from app.nano.train import main as train

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "models" / "nano"


def test_newcombes_paired_interval_and_the_exact_mcnemar_test() -> None:
    # Newcombe (1998, Statistics in Medicine 17:2635), example (a): 36 both, 12 and 2
    # discordant, 0 neither; method 10 gives 0.0569 to 0.3404 for p_a - p_b.
    low, high = paired_difference(36, 12, 2, 0)
    assert (round(-high, 4), round(-low, 4)) == (0.0569, 0.3404)
    # Outcomes that agree make the paired interval narrower than the unpaired one.
    low, high = paired_difference(40, 1, 3, 56)
    u_low, u_high = _newcombe(41, 100, 43, 100)
    assert u_low < low < 0.02 < high < u_high
    # Exact binomial tails: 2 * P(X <= 2), X ~ Bin(14, 1/2) = 2 * 106 / 16384.
    assert mcnemar_p(12, 2) == pytest.approx(212 / 16384)
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0 and mcnemar_p(0, 3) == 0.25


def _outcomes(hits: list[bool], after: list[bool] | None = None) -> list[dict]:
    after = after or [False] * len(hits)
    half = len(hits) // 2
    return [{"split": "heldout" if i < half else "heldout_words", "i": i % half,
             "after": a, "hit": h} for i, (h, a) in enumerate(zip(hits, after, strict=True))]


def test_paired_counts_split_by_split_and_keeps_steps_after_apart() -> None:
    a = _outcomes([True, True, False, True, True, False], [False, False, False, False, False, True])
    b = _outcomes([True, False, True, True, False, True], [False, False, False, False, False, True])
    result = paired(a, b)
    first = result["clicks"]["heldout"]
    assert (first["both"], first["only_a"], first["only_b"], first["neither"]) == (1, 1, 1, 0)
    assert first["difference"] == 0 and first["verdict"] == "within noise"
    pooled = result["clicks"][POOLED]
    assert pooled["n"] == 5 and pooled["a"]["passed"] == 4 and pooled["b"]["passed"] == 3
    assert result["after"][POOLED]["n"] == 1 and result["after"][POOLED]["only_b"] == 1
    # Different screens are refused, not compared.
    with pytest.raises(ValueError, match="same screens"):
        paired(a, b[::-1])


def test_a_clear_gap_is_called_and_a_model_against_itself_is_within_noise() -> None:
    strong, weak = _outcomes([True] * 40), _outcomes([True] * 10 + [False] * 30)
    gap = paired(strong, weak)["clicks"][POOLED]
    assert gap["verdict"] == "A better" and gap["difference_ci95"][1] < 0
    assert gap["mcnemar_p"] < 1e-6
    same = paired(weak, weak)["clicks"][POOLED]
    assert same["verdict"] == "within noise" and same["difference"] == 0
    assert same["mcnemar_p"] == 1.0


def test_the_shipped_model_beats_an_untrained_one_on_the_same_screens(tmp_path: Path,
                                                                      capsys) -> None:
    """End to end through the runtime: the shipped folder and a one-step run's, on the same
    drawn one-button screens; the command must see the gap (it would not if the pairing, the
    scoring or the verdict were broken)."""
    run, model = tmp_path / "run", tmp_path / "model"
    assert train(["--family", "fara15", "--size", "micro", "--minutes", "5", "--seed", "1",
                  "--batch", "2", "--eval-every", "1000", "--eval-n", "1", "--warmup", "1",
                  "--out", str(run), "--max-steps", "1"]) == 0
    assert ship(["--run", str(run), "--out", str(model), "--precision", "int4"]) == 0
    capsys.readouterr()
    assert compare([str(SHIPPED), str(model), "--n", "5", "--screens", "buttons", "--buttons",
                    "1-1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    pooled = result["clicks"][POOLED]
    assert pooled["n"] == 10 and pooled["a"]["passed"] >= 9  # measured 100 % on 100 per split
    assert pooled["b"]["passed"] <= 2 and pooled["verdict"] == "A better"
    assert set(result["clicks"]) == {"heldout", "heldout_words", POOLED}
    # The text form says the same.
    assert compare([str(model), str(model), "--n", "2", "--screens", "buttons",
                    "--buttons", "1-1"]) == 0
    text = capsys.readouterr().out
    assert "within noise" in text and "only A 0, only B 0" in text


def test_compare_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        compare([str(tmp_path / "none"), str(SHIPPED)])
    assert exit_.value.code == 2
