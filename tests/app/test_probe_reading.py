"""scripts/probe_reading.py: the vision tower's reading probe (README, "Deskhand Nano").

Its figures say whether the tower can learn to read, so the scoring must count a perfect reader
as perfect and a blind one near chance, every held-out button once, and the run must train the
tower it reports on."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from app.nano.examples import Encoder
from app.nano.screens import make_screen
from app.nano.train import main as train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("probe_reading", ROOT / "scripts/probe_reading.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_random_tower_trains_and_every_held_out_button_is_scored(probe, tmp_path: Path) -> None:
    log = tmp_path / "probe.jsonl"
    assert probe.main(["--out", str(log), "--size", "micro", "--max-steps", "3", "--eval-n", "3",
                       "--eval-every", "2"]) == 0
    records = _records(log)
    assert [r["kind"] for r in records] == ["start", "eval", "eval", "end"]
    assert [r["step"] for r in records[1:]] == [0, 2, 3]
    assert int(records[0]["tower_params"]) > 0
    buttons = sum(len(make_screen("heldout", i, probe.BUTTONS).buttons) for i in range(3))
    for r in records[1:]:
        assert 0 < r["words"] <= buttons and r["cells"] >= r["words"]
        assert 0.0 <= r["cell_acc"] <= 1.0 and 0.0 <= r["word_acc"] <= 1.0
    assert records[2]["loss"] > 0


def test_a_perfect_reader_scores_one_and_a_constant_one_near_chance(probe, monkeypatch) -> None:
    """The scoring alone: logits that name each cell's own word, then logits that always name
    the first word."""
    seen: list[torch.Tensor] = []
    real_batch = probe.batch

    def batch(*args):
        pixels, grids, labels = real_batch(*args)
        seen.append(labels)
        return pixels, grids, labels

    monkeypatch.setattr(probe, "batch", batch)
    encoder, model = _encoder(probe)
    for name, expected in (("perfect", 1.0), ("constant", None)):
        def logits(_model, _head, _pixels, _grids, name=name):
            labels = seen[-1]
            chosen = labels if name == "perfect" else torch.ones_like(labels)
            return torch.nn.functional.one_hot(chosen, len(probe.WORDS) + 1).float() * 20
        monkeypatch.setattr(probe, "logits", logits)
        score = probe.evaluate(model, None, encoder, 4, 1, 2)
        if expected is not None:
            assert score["cell_acc"] == score["word_acc"] == expected
        else:  # only buttons labelled with the first word count
            assert score["word_acc"] < 0.2 and score["cell_acc"] < 0.2


def test_upscaling_gives_the_same_buttons_more_cells(probe) -> None:
    encoder, _ = _encoder(probe)
    one = probe.batch(encoder, "heldout", range(2), 1)[2]
    two = probe.batch(encoder, "heldout", range(2), 2)[2]
    assert len(two) == 4 * len(one)
    assert set(two.tolist()) == set(one.tolist())  # the same words, each over more cells
    assert int((two != 0).sum()) > 2 * int((one != 0).sum())


def test_it_starts_from_a_run_and_refuses_what_it_cannot_use(probe, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(["--family", "fara15", "--size", "micro", "--minutes", "5", "--seed", "1",
                  "--batch", "2", "--eval-every", "1000", "--eval-n", "1", "--warmup", "1",
                  "--out", str(run), "--max-steps", "1"]) == 0
    log = tmp_path / "from_run.jsonl"
    assert probe.main(["--out", str(log), "--init", str(run), "--max-steps", "1",
                       "--eval-n", "1"]) == 0
    assert _records(log)[-1]["kind"] == "end"
    for bad in (["--init", str(tmp_path)], ["--init", str(run), "--vision-hidden", "64"],
                ["--upscale", "0"]):
        with pytest.raises(SystemExit) as exit_:
            probe.main(["--out", str(tmp_path / "x.jsonl"), *bad])
        assert exit_.value.code == 2


def test_it_trains_the_tower_and_nothing_else(probe, tmp_path: Path, monkeypatch) -> None:
    """What it reports is the tower's reading: the tower's weights move, the text model's don't."""
    built = {}
    real_model = probe._model

    def model(args, parser):
        built["model"], folder = real_model(args, parser)
        built["before"] = {k: v.clone() for k, v in built["model"].state_dict().items()}
        return built["model"], folder

    monkeypatch.setattr(probe, "_model", model)
    assert probe.main(["--out", str(tmp_path / "p.jsonl"), "--size", "micro", "--max-steps", "2",
                       "--eval-n", "1", "--lr", "1e-2"]) == 0
    after, before = built["model"].state_dict(), built["before"]
    tower = [k for k in after if ".visual." in f".{k}"]
    assert tower and any(not torch.equal(after[k], before[k]) for k in tower)
    assert all(torch.equal(after[k], before[k]) for k in after if k not in tower)


def test_it_starts_from_a_kept_stage_snapshot(probe, tmp_path: Path) -> None:
    log = tmp_path / "from_snapshot.jsonl"
    assert probe.main(["--out", str(log), "--init", str(ROOT / "app/nano/stages/c"),
                       "--max-steps", "1", "--eval-n", "2"]) == 0
    records = _records(log)
    assert records[-1]["kind"] == "end" and records[-1]["words"] > 0


def _encoder(probe):
    """A micro model and its encoder (the probe's own construction)."""
    args = probe.build_parser().parse_args(["--out", "unused", "--size", "micro"])
    model, folder = probe._model(args, probe.build_parser())
    encoder = Encoder.of_folder("fara15", folder)
    shutil.rmtree(folder.parent)
    return encoder, model
