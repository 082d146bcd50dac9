"""The Nano recipe: six chained stages, each from the previous one's weights, skipped when done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.nano.recipe import STAGES, main


def _start(folder: Path) -> dict:
    return json.loads((folder / "metrics.jsonl").read_text().splitlines()[0])


def test_the_stages_chain_and_a_second_run_skips_them(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path), "--size", "micro", "--max-steps", "1", "--eval-n", "1"]) == 0
    a, b, c, ladder, anneal, anneal2 = (tmp_path / name for name, _, _ in STAGES)
    assert _start(a)["init_from"] is None
    assert _start(b)["init_from"] == str(a) and _start(b)["aux_where"] == 1.0
    assert _start(c)["init_from"] == str(b) and _start(c)["aux_attend"] == 1.0
    assert all(_start(f)["buttons"] == [1, 1] for f in (a, b, c))
    assert _start(ladder)["init_from"] == str(c) and _start(ladder)["screens"] == "ladder"
    # As measured: the anneal from the ladder's fp16 snapshot, the second anneal from the run.
    assert _start(anneal)["init_from"] == str(tmp_path / "snapshots" / "ladder")
    assert _start(anneal)["lr"] == 2.5e-4
    assert _start(anneal2)["init_from"] == str(anneal) and _start(anneal2)["lr"] == 1.25e-4
    assert all(_start(f)["screens"] == "buttons" for f in (a, b, c))
    capsys.readouterr()
    assert main(["--out", str(tmp_path), "--size", "micro", "--max-steps", "1", "--eval-n", "1"]) == 0
    assert capsys.readouterr().out.count("done before, skipped") == 6


def test_budgets_are_steps_so_a_run_reproduces(tmp_path: Path) -> None:
    from app.nano.recipe import stage_args

    for index, (_, steps, _) in enumerate(STAGES):
        argv = stage_args(tmp_path, index, "probe", 1.0, None)
        assert argv[argv.index("--max-steps") + 1] == str(steps) and "--minutes" not in argv
    argv = stage_args(tmp_path, 0, "probe", 0.5, None)
    assert argv[argv.index("--max-steps") + 1] == str(round(STAGES[0][1] * 0.5))


def test_where_a_stage_runs_reaches_every_stage_and_bad_values_are_refused(
        tmp_path: Path, capsys) -> None:
    """--device, --workers, --threads and --eval-every go to every stage's train call (they
    change no example and no step: tests/app/test_nano_prefetch.py); bad ones stop the recipe
    before anything is written."""
    import torch

    from app.nano.recipe import stage_args

    machine = ("--eval-every", "500", "--device", "cpu", "--workers", "3", "--threads", "2")
    for index in range(len(STAGES)):
        argv = stage_args(tmp_path, index, "probe", 1.0, None, machine=machine)
        assert all(argv[argv.index(k) + 1] == v for k, v in zip(machine[::2], machine[1::2],
                                                                strict=True))
    bad = [["--workers", "-1"], ["--eval-every", "0"], ["--threads", "0"], ["--device", "tpu"]]
    if not torch.cuda.is_available():
        bad.append(["--device", "cuda"])
    for extra in bad:
        with pytest.raises(SystemExit) as exc:
            main(["--out", str(tmp_path / "run"), *extra])
        assert exc.value.code == 2, extra
    assert not (tmp_path / "run").exists()
    assert "no CUDA device" in capsys.readouterr().err or torch.cuda.is_available()


def test_the_same_seed_and_steps_give_the_same_weights(tmp_path: Path) -> None:
    import torch

    from app.nano.train import main as train

    for name in ("x", "y"):
        assert train(["--family", "fara15", "--size", "micro", "--max-steps", "2", "--batch", "2",
                      "--eval-every", "1000", "--eval-n", "1", "--seed", "4",
                      "--out", str(tmp_path / name)]) == 0
    x, y = (torch.load(tmp_path / n / "checkpoint.pt", weights_only=False)["model"] for n in "xy")
    assert all(torch.equal(x[k], y[k]) for k in x)


def test_an_interrupted_stage_resumes(tmp_path: Path) -> None:
    from app.nano.recipe import stage_args

    assert main(["--out", str(tmp_path), "--size", "micro", "--max-steps", "1", "--eval-n", "1"]) == 0
    metrics = tmp_path / "b" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join(lines[:-1]) + "\n")  # as if killed before its end record
    argv = stage_args(tmp_path, 1, "micro", 1.0, 2)
    assert "--resume" in argv and "--init-from" not in argv
    # A stage that has a checkpoint goes on from it, whatever --init-from says.
    argv = stage_args(tmp_path, 1, "micro", 1.0, 2, init_from=tmp_path / "elsewhere")
    assert "--resume" in argv and "--init-from" not in argv


def test_each_finished_stage_leaves_a_snapshot_and_the_recipe_goes_on_from_one(
        tmp_path: Path, capsys) -> None:
    """The recipe in pieces, as on machines lent per session: the first machine stops after
    stage b; the second has only b's snapshot (no run folders) and goes on from it."""
    from app.nano import snapshot

    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--size", "micro", "--max-steps", "1", "--eval-n", "1"]
    assert main(["--out", str(first), *common, "--until", "b"]) == 0
    assert "go on with --from c" in capsys.readouterr().out
    assert snapshot.is_snapshot(first / "snapshots" / "a")
    assert snapshot.is_snapshot(first / "snapshots" / "b")
    assert not (first / "c").exists()
    carried = tmp_path / "carried_b"
    (first / "snapshots" / "b").rename(carried)
    assert main(["--out", str(second), *common, "--from", "c", "--init-from", str(carried),
                 "--until", "ladder"]) == 0
    assert _start(second / "c")["init_from"] == str(carried)
    assert _start(second / "ladder")["init_from"] == str(second / "c")  # only the first stage
    assert not (second / "a").exists() and not (second / "b").exists()
    info, model, _ = snapshot.read(second / "snapshots" / "c")
    assert info["step"] == 1 and model
    # The first machine again: b's snapshot is gone (carried away), so it is written again.
    capsys.readouterr()
    assert main(["--out", str(first), *common, "--until", "b"]) == 0
    assert "done before, skipped" in capsys.readouterr().out
    assert snapshot.is_snapshot(first / "snapshots" / "b")


def test_a_stage_trained_again_replaces_its_old_snapshot(tmp_path: Path) -> None:
    from app.nano import snapshot

    common = ["--out", str(tmp_path), "--size", "micro", "--eval-n", "1", "--until", "a"]
    assert main([*common, "--max-steps", "1"]) == 0
    assert snapshot.read(tmp_path / "snapshots" / "a")[0]["step"] == 1
    import shutil

    shutil.rmtree(tmp_path / "a")  # retrain stage a, longer
    assert main([*common, "--max-steps", "2"]) == 0
    assert snapshot.read(tmp_path / "snapshots" / "a")[0]["step"] == 2
    # A finished stage without its checkpoint: its snapshot stands; without both, said plainly.
    (tmp_path / "a" / "checkpoint.pt").unlink()
    assert main([*common, "--max-steps", "2"]) == 0
    shutil.rmtree(tmp_path / "snapshots" / "a")
    with pytest.raises(SystemExit, match=r"holds no checkpoint\.pt to snapshot"):
        main([*common, "--max-steps", "2"])


def test_going_on_from_a_stage_without_its_weights_is_refused(tmp_path: Path, capsys) -> None:
    unfinished = tmp_path / "unfinished"
    (unfinished / "model").mkdir(parents=True)
    (unfinished / "model" / "config.json").write_text("{}")
    (unfinished / "checkpoint.pt").write_bytes(b"")
    (unfinished / "metrics.jsonl").write_text('{"kind": "start"}\n')
    for argv, expected in (
            (["--from", "ladder"], "needs the weights of stage c"),
            (["--from", "c", "--init-from", str(tmp_path)], "neither a training run"),
            (["--from", "c", "--init-from", str(tmp_path / "nowhere")], "does not exist"),
            (["--from", "c", "--init-from", str(unfinished)], "has not finished"),
            (["--init-from", str(tmp_path)], "stage a starts from random weights"),
            (["--from", "anneal", "--until", "c"], "comes before")):
        with pytest.raises(SystemExit) as stop:
            main(["--out", str(tmp_path / "run"), "--size", "micro", *argv])
        assert stop.value.code == 2
        assert expected in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written
