"""The verifier's data (app/nano/solved.py): real solver runs on the offline harness, kept only
where the site's judge passed them, never from a held-out site, turned into Nano's prompts; and
what a forged run folder or data folder tries."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from agent.actions import (
    DoubleClick,
    Drag,
    HScroll,
    LeftClick,
    Parsed,
    Scroll,
    Terminate,
    TypeText,
)
from agent.geometry import Monitor, Point, ScreenMapping, Size, Space
from agent.prompts import get_family
from app.nano import solved, solved_build
from app.nano.desktop import nano_model_size
from app.nano.examples import reply_for

ROOT = Path(__file__).resolve().parents[2]
DESKHAND = "from app.commands import main; raise SystemExit(main())"
NANO = get_family("fara15", system="You are Deskhand Nano.")


@pytest.mark.parametrize("action", [
    LeftClick((713, 402)), DoubleClick((0, 895)), TypeText("Oslo", (1427, 0), press_enter=True),
    Scroll(-448, (700, 500)), HScroll(300, (10, 10)), Drag((100, 120), (300, 40)),
    Terminate("success")])
def test_a_recorded_action_moves_to_nanos_image_and_reads_back_through_its_parser(action) -> None:
    solver, shot = Size(1428, 896), Size(1440, 900)
    nano = nano_model_size(shot)
    moved = solved_build.rescaled(action, solver, nano)
    parsed = NANO.parse(reply_for(NANO, moved, nano), nano)
    assert isinstance(parsed, Parsed)
    if isinstance(moved, (Scroll, HScroll)):  # display units are coarser than Nano's pixels
        side = nano.width if isinstance(moved, HScroll) else nano.height
        assert abs(parsed.action.pixels - moved.pixels) <= side / NANO.display.size
        parsed = Parsed(parsed.thoughts, replace(parsed.action, pixels=moved.pixels), parsed.raw)
    assert parsed.action == moved
    if action.target is not None:  # the same place on the screen, within one Nano pixel
        monitor = Monitor(0, 0, 0, shot.width, shot.height)
        was = ScreenMapping(monitor, shot, solver).convert(Point(*action.target, Space.MODEL),
                                                          Space.SCREENSHOT)
        now = ScreenMapping(monitor, shot, nano).convert(Point(*moved.target, Space.MODEL),
                                                        Space.SCREENSHOT)
        assert abs(was.x - now.x) <= shot.width / nano.width
        assert abs(was.y - now.y) <= shot.height / nano.height


def _eval(out: Path, model: str, site: str, limit: int) -> Path:
    done = subprocess.run([sys.executable, "-c", DESKHAND, "eval", "run", "--model", model,
                           "--sites-only", site, "--limit", str(limit), "--out", str(out),
                           "--no-report"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert (out / "results.jsonl").is_file(), done.stdout[-2000:] + done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("chromium") is None:
        pytest.fail("chromium is not installed (scripts/setup.sh installs it)")
    base = tmp_path_factory.mktemp("solver-runs")
    return {"solver": _eval(base / "solver", "scripted:solver", "shop", 2),
            "wrong": _eval(base / "wrong", "scripted:wrong", "shop", 1),
            "held_out": _eval(base / "held", "scripted:solver", "news", 1)}


def _results(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


@pytest.mark.xvfb
@pytest.mark.slow
def test_only_judge_passed_runs_of_training_sites_become_examples(runs, tmp_path: Path) -> None:
    passed = [r for r in _results(runs["solver"]) if r["passed"]]
    assert len(passed) == 2 and not any(r["passed"] for r in _results(runs["wrong"]))
    assert _results(runs["held_out"])[0]["passed"]  # a good run: dropped for its site alone
    out = tmp_path / "data"
    info = solved_build.build([runs["solver"], runs["wrong"], runs["held_out"]], out)
    assert info["trajectories"] == 2 and info["sites"] == ["shop"]
    assert info["dropped"] == {"judge failed it": 1, "held-out site": 1}
    data = solved.load(out)
    assert [t.task_id for t in data.trajectories] == [r["task_id"] for r in passed]
    assert info["steps"] == sum(r["steps"] for r in passed) == len(data.examples)
    for traj, result in zip(data.trajectories, passed, strict=True):
        recorded = [json.loads(line) for line in
                    (runs["solver"] / result["dir"] / "steps.jsonl").read_text().splitlines()]
        assert traj.task == result["question"]
        assert isinstance(traj.steps[-1].action, Terminate) and traj.steps[-1].thoughts
        for step, rec in zip(traj.steps, recorded, strict=True):
            shot = Size(*rec["screenshot_size"])
            assert step.size == nano_model_size(shot)
            assert data.image(step).size == (step.size.width, step.size.height)
            assert step.url == rec["url"] and step.action.name == rec["action"]["action"]
            if step.action.target is not None:  # Nano is taught the solver's point on the screen
                back = ScreenMapping(Monitor(0, 0, 0, shot.width, shot.height), shot, step.size
                                     ).convert(Point(*step.action.target, Space.MODEL),
                                               Space.SCREENSHOT)
                x, y = rec["screenshot_point"]
                assert abs(back.x - x) <= 3 and abs(back.y - y) <= 3
    # Each example is the loop's prompt at that step: the task, then per earlier step its reply
    # and the next screen's URL line, the newest screenshots; the solver's selectors nowhere.
    traj = data.trajectories[1]
    last = (1, len(traj.steps) - 1)
    messages, images, reply = data.prompt(NANO, last)
    assert 1 < len(images) <= NANO.max_images
    assert messages[0]["content"][0]["text"] == "You are Deskhand Nano."
    assert messages[1]["content"][-1]["text"] == traj.task
    replies = [m["content"][0]["text"] for m in messages if m["role"] == "assistant"]
    assert replies == [reply_for(NANO, s.action, s.size, s.thoughts) for s in traj.steps[:-1]]
    assert not any("#" in r for r in replies) and "Type into" not in str(messages)
    lines = [m["content"][-1]["text"].split("\n")[0] for m in messages[2:] if m["role"] == "user"]
    # (older screens are pruned with their URL lines, as the loop's prompt does)
    assert len(lines) >= len(images) - 1
    cut = NANO.data["url_max_chars"]  # the family shortens long URLs
    assert lines == [f"Current URL: {s.url[:cut]}" for s in traj.steps[1:]][-len(lines):]
    assert NANO.parse(reply, traj.steps[-1].size).action == Terminate("success")

    # Training reads it: a step with every slot a solver step runs and saves.
    from app.nano.train import main as train
    run = tmp_path / "run"
    assert train(["--family", "fara15", "--size", "micro", "--max-steps", "1", "--seed", "1",
                  "--batch", "2", "--eval-every", "1000", "--eval-n", "1", "--warmup", "1",
                  "--out", str(run), "--solved", str(out), "--solved-share", "1"]) == 0
    start = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert start["solved_steps"] == info["steps"] and (run / "checkpoint.pt").is_file()
    with pytest.raises(SystemExit, match="other --solved data or share"):  # the batches would change
        train(["--family", "fara15", "--size", "micro", "--max-steps", "2", "--seed", "1",
               "--batch", "2", "--eval-every", "1000", "--eval-n", "1", "--warmup", "1",
               "--out", str(run), "--resume"])
    with pytest.raises(SystemExit):  # the data is on Qwen3.5's grid
        train(["--family", "fara", "--out", str(tmp_path / "x"), "--max-steps", "1",
               "--solved", str(out)])


@pytest.mark.xvfb
@pytest.mark.slow
def test_a_forged_run_folder_reads_nothing_outside_itself(runs, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    shutil.copy(next((runs["solver"] / "tasks").rglob("step-000.png")), secret)
    forged = tmp_path / "forged"
    shutil.copytree(runs["solver"], forged)
    lines = _results(forged)
    lines[0]["dir"] = str(Path("..") / ".." / tmp_path.name)  # the attempt folder: elsewhere
    steps_file = forged / lines[1]["dir"] / "steps.jsonl"
    steps = [json.loads(line) for line in steps_file.read_text().splitlines()]
    steps[0]["screenshot"] = "../../../../secret.png"  # a screenshot: elsewhere
    steps_file.write_text("".join(json.dumps(s) + "\n" for s in steps))
    (forged / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(ValueError, match="nothing to keep"):
        solved_build.build([forged], tmp_path / "data")
    assert not (tmp_path / "data").exists() and not (tmp_path / "data.partial").exists()
    # Add the real run: its two attempts are kept, the forged ones dropped with their reasons.
    info = solved_build.build([forged, runs["solver"]], tmp_path / "data")
    assert info["trajectories"] == 2 and info["dropped"] == {"unusable record": 2}
    assert "is not the folder of" in info["notes"][0] and "no screenshot" in info["notes"][1]
    with pytest.raises(ValueError, match="not a harness run folder"):
        solved_build.build([tmp_path / "nothing"], tmp_path / "data2")
    assert not (tmp_path / "data2").exists() and not (tmp_path / "data2.partial").exists()

    # A held-out site's task passed off as a training site's.
    relabelled = tmp_path / "relabelled"
    shutil.copytree(runs["held_out"], relabelled)
    lines = _results(relabelled)
    lines[0]["site"] = "shop"
    (relabelled / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    info = solved_build.build([relabelled, runs["solver"]], tmp_path / "data")
    assert info["trajectories"] == 2 and info["dropped"] == {"unusable record": 1}
    assert all(t.site == "shop" for t in solved.load(tmp_path / "data").trajectories)

    # A manifest that is a link to a file elsewhere is not followed.
    linked = tmp_path / "linked"
    shutil.copytree(runs["solver"], linked)
    (linked / "manifest.json").unlink()
    (linked / "manifest.json").symlink_to(runs["solver"] / "manifest.json")
    with pytest.raises(ValueError, match="symbolic link"):
        solved_build.build([linked], tmp_path / "data3")

    # --out never destroys what is not an earlier data folder.
    with pytest.raises(ValueError, match="overlaps"):
        solved_build.build([runs["solver"]], runs["solver"] / "tasks")
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a solved-trajectory folder"):
        solved_build.build([runs["solver"]], keep)
    assert (keep / "notes.txt").read_text() == "mine" and (runs["solver"] / "manifest.json").exists()


def _data(folder: Path, steps: list[dict], site: str = "shop") -> Path:
    from PIL import Image

    folder.mkdir()
    Image.new("RGB", (512, 320), "white").save(folder / "a.png")
    Image.new("RGB", (100, 100), "white").save(folder / "small.png")
    line = {"task": "t", "task_id": f"{site}--1", "site": site, "steps": steps}
    (folder / solved.TRAJECTORIES).write_text(json.dumps(line) + "\n")
    digest = solved._digest(folder, [line]) if all(
        (folder / st["image"]).is_file() for st in steps if isinstance(st.get("image"), str)
        and "/" not in st["image"]) else ""
    (folder / solved.INFO).write_text(json.dumps({"format": solved.FORMAT,
                                                  "family": solved.FAMILY, "digest": digest}))
    return folder


def test_a_damaged_data_folder_is_refused_with_what_is_wrong(tmp_path: Path) -> None:
    click = {"image": "a.png", "size": [512, 320], "action": {"action": "left_click",
                                                              "coordinate": [5, 5]}}
    end = {**click, "action": {"action": "terminate", "status": "success"}}
    assert len(solved.load(_data(tmp_path / "ok", [click, end])).examples) == 2
    cases = {
        "outside": ([{**click, "image": "../ok/a.png"}, end], "shop", "outside the folder"),
        "held": ([click, end], "news", "held-out"),
        "action": ([{**click, "action": {"action": "format_disk"}}, end], "shop",
                   "unknown action"),
        "question": ([{**click, "action": {"action": "ask_user_question", "question": "?"}},
                      end], "shop", "unknown action"),
        "empty": ([], "shop", "without steps"),
        "far": ([{**click, "action": {"action": "left_click", "coordinate": [9999, -5]}}, end],
                "shop", "outside the"),
        "resized": ([{**click, "image": "small.png"}, end], "shop", r"is \(100, 100\)"),
        "grid": ([{**click, "size": [500, 320]}, end], "shop", "not a Nano image size"),
        "gave_up": ([click, {**end, "action": {"action": "terminate", "status": "failure"}}],
                    "shop", "terminate"),
        "ends_twice": ([end, click, end], "shop", "terminate"),
    }
    for name, (steps, site, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            solved.load(_data(tmp_path / name, steps, site))
    edited = _data(tmp_path / "edited", [click, end])
    from PIL import Image
    Image.new("RGB", (512, 320), "black").save(edited / "a.png")
    with pytest.raises(ValueError, match="changed since it was built"):
        solved.load(edited)
    broken = _data(tmp_path / "broken", [click, end])
    (broken / solved.TRAJECTORIES).write_text("{not json\n")
    with pytest.raises(ValueError, match="line 1"):
        solved.load(broken)
    with pytest.raises(ValueError, match="not a solved-trajectory folder"):
        solved.load(tmp_path / "missing")


def _fake_run(folder: Path, *records: dict) -> Path:
    """A run folder as the harness leaves it (manifest, results), without attempts."""
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"model": "scripted:solver"}))
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_build_deletes_nothing_but_its_own_work(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "data.old")  # named like a work folder of --out data
    (tmp_path / "data.partial").mkdir()
    (tmp_path / "data.partial" / "mine.txt").write_text("mine")
    with pytest.raises(ValueError, match="nothing to keep"):
        solved_build.build([run], tmp_path / "data")
    assert (run / "results.jsonl").is_file() and (tmp_path / "data.partial" / "mine.txt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.old", "data.partial"]
    # An --out holding someone's files next to a solved.json is not replaced.
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / solved.INFO).write_text(json.dumps({"family": solved.FAMILY}))
    (tmp_path / "x" / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match="holds other files"):
        solved_build.build([run], tmp_path / "x")
    assert (tmp_path / "x" / "thesis.tex").read_text() == "mine"
    with pytest.raises(ValueError, match="not a solved-trajectory folder"):
        solved_build.build([run], tmp_path / "x" / "thesis.tex")


def test_a_task_id_over_another_tasks_folder_is_dropped(tmp_path: Path) -> None:
    """A results line saying "shop--1" whose folder is a held-out task's run: not kept."""
    record = {"key": "shop--1#0", "task_id": "shop--1", "site": "shop", "repeat": 0,
              "passed": True, "status": "success", "dir": "tasks/recipes--3/r0"}
    with pytest.raises(ValueError, match="'unusable record': 1"):
        solved_build.build([_fake_run(tmp_path / "run", record)], tmp_path / "data")
