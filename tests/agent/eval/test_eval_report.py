"""Eval report: metrics (Wilson, pass@k / pass^k, time split, failures) and a self-contained page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from agent.eval.report import pass_at_k, pass_hat_k, summarise, wilson, write_report
from agent.eval.results import (
    EvalResult,
    ManifestMismatch,
    ResultsLog,
    open_run_dir,
    read_results,
)


def test_wilson_matches_known_values() -> None:
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3)
    assert high == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 0) == (0.0, 0.0)
    low, high = wilson(0, 5)
    assert low == 0.0 and 0.4 < high < 0.45
    assert wilson(5, 5)[1] == pytest.approx(1.0)


def test_pass_at_k_and_pass_hat_k() -> None:
    assert pass_at_k(3, 1, 3) == 1.0  # one pass among all three runs
    assert pass_at_k(3, 0, 3) == 0.0
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    assert pass_hat_k(3, 3, 3) == 1.0
    assert pass_hat_k(3, 2, 3) == 0.0
    assert pass_hat_k(4, 3, 2) == pytest.approx(0.5)


def _record(task: str, site: str, repeat: int, passed: bool, failure: str | None,
            steps: int, folder: str) -> EvalResult:
    return EvalResult.of({"key": f"{task}#{repeat}", "task_id": task, "site": site, "repeat": repeat,
            "question": f"question of {task}", "status": "success" if passed else "max_steps",
            "answer": "42" if passed else "", "reason": "", "steps": steps,
            "final_url": "http://127.0.0.1:1/x", "passed": passed,
            "verdict": {"passed": passed, "reason": "answer matched" if passed else "no"},
            "model_judge": None, "failure": failure, "env_errors": [],
            "timings": {"capture": 0.1 * steps, "model": 1.0 * steps, "action": 0.2 * steps,
                        "settle": 0.3 * steps},
            "tokens": {"prompt": 100 * steps, "generated": 10 * steps}, "cpu_s": 36.0,
            "wall_s": 5.0, "dir": folder, "finished": 0.0})


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    open_run_dir(run, {"model": "m", "repeat": 2, "tasks_file": "t.jsonl"})
    log = ResultsLog(run)
    plan = [("shop--1", "shop", 0, True, None), ("shop--1", "shop", 1, False, "step_budget"),
            ("news--1", "news", 0, True, None), ("news--1", "news", 1, True, None)]
    for task, site, r, ok, failure in plan:
        folder = f"tasks/{task}/r{r}"
        (run / folder).mkdir(parents=True)
        Image.new("RGB", (144, 90), (200, 220, 240)).save(run / folder / "step-000.png")
        step = {"index": 0, "description": "click at (10, 10)", "model_text": "<b>thoughts</b>",
                "screenshot": "step-000.png", "screenshot_point": [20.0, 30.0],
                "timings": {"capture": 0.1}}
        (run / folder / "steps.jsonl").write_text(json.dumps(step) + "\n")
        log.append(_record(task, site, r, ok, failure, 3, folder))
    return run


def test_summary_fields(run_dir: Path) -> None:
    s = summarise(run_dir)
    assert s["overall"]["n"] == 4 and s["overall"]["passed"] == 3
    assert s["sites"]["news"]["rate"] == 1.0 and s["sites"]["shop"]["rate"] == 0.5
    assert s["pass_k"]["pass@1"] == pytest.approx(0.75)
    assert s["pass_k"]["pass@2"] == 1.0 and s["pass_k"]["pass^2"] == 0.5
    assert s["failures"]["step_budget"] == 1 and s["failures"]["wrong_answer"] == 0
    assert s["steps"]["mean_per_task"] == 3
    assert s["time_per_step_s"]["model"] == pytest.approx(1.0)
    assert sum(s["time_split"].values()) == pytest.approx(1.0)
    assert s["cpu_seconds"] == pytest.approx(144.0)
    assert s["successes_per_cpu_hour"] == pytest.approx(3 / (144 / 3600))
    assert s["tokens"]["generated"] == 120


def test_report_is_self_contained(run_dir: Path) -> None:
    summary_path, report_path = write_report(run_dir)
    assert json.loads(summary_path.read_text())["overall"]["passed"] == 3
    page = report_path.read_text()
    assert "data:image/jpeg;base64," in page
    assert "&lt;b&gt;thoughts&lt;/b&gt;" in page  # model text is escaped
    # No external resources: every src/href is inline, and no URL appears outside text.
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)
    assert "<link" not in page and "<script" not in page


def test_manifest_change_refuses_and_torn_line_ignored(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert open_run_dir(run, {"model": "a"}) is False
    assert open_run_dir(run, {"model": "a"}) is True
    with pytest.raises(ManifestMismatch, match="model"):
        open_run_dir(run, {"model": "b"})
    log = ResultsLog(run)
    log.append(EvalResult("t#0"))
    with open(run / "results.jsonl", "a") as f:
        f.write('{"key": "t#1", "tor')  # killed mid-write
    assert [r.key for r in read_results(run)] == ["t#0"]
    log.append(EvalResult("t#2"))
    assert [r.key for r in read_results(run)] == ["t#0", "t#2"]


def test_task_selection_and_format_detection(tmp_path: Path) -> None:
    from agent.eval.runner import EvalSettings, select_tasks
    from agent.paths import asset

    ours = asset("tasks", "offline-webvoyager.jsonl")
    settings = EvalSettings(tasks=ours, model="scripted:solver", sites_only=("shop",), limit=3)
    chosen = select_tasks(settings)
    assert [t.web_name for t in chosen] == ["shop"] * 3
    assert all(t.source == "offline" and t.eval for t in chosen)
    # The original WebVoyager file (absolute URLs, four keys) is recognised and loaded unchanged.
    original = tmp_path / "WebVoyager_data.jsonl"
    original.write_text(json.dumps({"web_name": "Allrecipes", "id": "Allrecipes--0", "ques": "q",
                                    "web": "https://www.allrecipes.com/"}) + "\n")
    (task,) = select_tasks(EvalSettings(tasks=original, model="m"))
    assert task.source == "webvoyager" and task.eval is None


def test_only_picks_tasks_by_id_and_refuses_an_unknown_one(tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    import argparse

    from agent.eval import settings as settings_module
    from agent.eval.runner import EvalSettings, select_tasks
    from agent.eval.settings import TaskSelectionError
    from agent.eval.tasks import Task
    from agent.paths import asset
    from app.commands.eval import register
    from app.commands.eval import run as run_command

    ours = asset("tasks", "offline-webvoyager.jsonl")
    every = select_tasks(EvalSettings(tasks=ours, model="m"))
    wanted = [every[5].id, every[0].id]
    chosen = select_tasks(EvalSettings(tasks=ours, model="m", only=tuple(wanted)))
    assert [t.id for t in chosen] == [every[0].id, every[5].id]  # file order, not the list's
    with pytest.raises(TaskSelectionError, match="no-such-task"):
        select_tasks(EvalSettings(tasks=ours, model="m", only=(every[0].id, "no-such-task")))
    # A MiniWoB++ task by its page name (a stand-in list: the package is an optional extra).
    pages = [Task(id=f"miniwob--{name}", web_name="miniwob", ques="q", web="file:///x",
                  source="miniwob", reward="miniwob")
             for name in ("click-button", "click-button-sequence", "enter-text")]
    monkeypatch.setattr(settings_module, "load_task_file", lambda *_: pages)
    picked = select_tasks(EvalSettings(tasks=Path("miniwob"), model="m",
                                       only=("click-button", "miniwob--enter-text")))
    assert [t.id for t in picked] == ["miniwob--click-button", "miniwob--enter-text"]
    monkeypatch.undo()
    # Through the command: a clear message, exit 2, and no run folder left behind.
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "run"
    args = parser.parse_args(["eval", "run", "--model", "scripted:solver", "--out", str(out),
                              "--only", "shop--1,typo-task"])
    assert run_command(args) == 2
    assert "typo-task" in capsys.readouterr().err and not out.exists()
    # A hostile id is echoed as text: no terminal escape reaches the screen.
    args = parser.parse_args(["eval", "run", "--model", "scripted:solver", "--out", str(out),
                              "--only", "\x1b]0;owned\x07\x1b[2Jx"])
    assert run_command(args) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "owned" in err and not out.exists()


def test_compare_two_runs(tmp_path: Path, capsys) -> None:
    from agent.eval.compare import compare
    from app.commands.eval import register

    plans = {"a": [("shop--1", True), ("shop--2", False), ("news--1", True)],
             "b": [("shop--1", True), ("shop--2", True), ("news--1", False)]}
    runs = {}
    for name, plan in plans.items():
        run = tmp_path / name
        manifest = {"model": "m", "repeat": 1, "tasks_file": "t.jsonl", "tasks_sha256": "x"}
        if name == "b":
            manifest["history_scale"] = 0.5
        open_run_dir(run, manifest)
        log = ResultsLog(run)
        for task, ok in plan:
            log.append(_record(task, task.split("--")[0], 0, ok, None if ok else "wrong_answer", 4,
                               f"tasks/{task}/r0"))
        runs[name] = run
    result = compare(runs["a"], runs["b"])
    assert result["settings_that_differ"] == {"history_scale": [None, 0.5]}
    assert result["a"]["passed"] == 2 and result["b"]["passed"] == 2 and result["difference"] == 0
    assert result["paired"]["only_a"] == ["news--1"] and result["paired"]["only_b"] == ["shop--2"]
    assert result["paired"]["mcnemar_p"] == 1.0  # one task each way: no evidence either way
    low, high = result["paired"]["difference_ci95"]
    assert low < 0 < high
    low, high = result["difference_ci95"]
    assert low < 0 < high
    assert result["a"]["model_s_per_step"] == pytest.approx(1.0)
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["eval", "compare", str(runs["a"]), str(runs["b"])])
    from app.commands.eval import run as eval_cli

    assert eval_cli(args) == 0
    out = capsys.readouterr().out
    assert "history_scale None -> 0.5" in out and "only A 1, only B 1" in out
    other = tmp_path / "other"
    open_run_dir(other, {"model": "m", "tasks_sha256": "y"})
    with pytest.raises(ValueError, match="different task files"):
        compare(runs["a"], other)
