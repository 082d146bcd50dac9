"""Task file schema, solver plans, loaders, and every task's judge against its own plans."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agent.eval.judges import Evidence, judge
from agent.eval.server import SiteState
from agent.eval.tasks import (
    OFFLINE_SOLUTIONS,
    OFFLINE_TASKS,
    TaskFileError,
    load_plans,
    load_tasks,
    load_webvoyager,
    miniwob_tasks,
    task_file_hash,
)

SITES = ["recipes", "shop", "dictionary", "news", "flights", "code", "archive", "hotels",
         "sports", "courses"]
TASKS = load_tasks()
PLANS = load_plans()


def test_task_file_shape() -> None:
    assert len(TASKS) >= 80
    counts = Counter(t.web_name for t in TASKS)
    for site in SITES:
        assert counts[site] >= 10, f"{site} has {counts[site]} tasks"
    assert len({t.id for t in TASKS}) == len(TASKS)
    for t in TASKS:
        assert t.eval and t.eval["checks"], t.id
        assert t.web.startswith("/"), t.id
        assert t.id in PLANS, f"no plan for {t.id}"
        assert PLANS[t.id].wrong_answer.strip(), t.id
    assert set(PLANS) == {t.id for t in TASKS}
    assert any("critical" in t.tags for t in TASKS)


def _evidence(base: str, steps: list[dict], expect: dict, answer: str | None = None) -> Evidence:
    st = SiteState()
    for site, action, body in expect.get("api", []):
        st.call(site, action, body)
    last = steps[-1]
    return Evidence(answer=answer if answer is not None else last["text"], status=last["status"],
                    final_url=base + expect.get("url", "/"),
                    page_values=expect.get("page", {}), server_state=st.snapshot())


@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
def test_plan_passes_and_wrong_fails(task) -> None:
    plan = PLANS[task.id]
    good = judge(task.eval, _evidence("http://127.0.0.1:1", plan.steps, plan.expect))
    assert good.passed, f"{task.id}: correct plan fails: {good.reason}"
    wrong = plan.wrong_plan()
    bad = judge(task.eval, _evidence("http://127.0.0.1:1", wrong, plan.wrong_expect,
                                     plan.wrong_answer))
    assert not bad.passed, f"{task.id}: wrong run passes ({plan.wrong_does})"


def test_loader_names_bad_line(tmp_path: Path) -> None:
    lines = OFFLINE_TASKS.read_text().splitlines()[:2]
    broken = json.loads(lines[1])
    del broken["eval"]["checks"][0]["kind"]
    f = tmp_path / "t.jsonl"
    f.write_text(lines[0] + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(TaskFileError, match=r"t\.jsonl:2"):
        load_tasks(f)
    f.write_text(lines[0] + "\n" + lines[0] + "\n")
    with pytest.raises(TaskFileError, match="duplicate id"):
        load_tasks(f)
    f.write_text("{not json\n")
    with pytest.raises(TaskFileError, match=":1: not valid JSON"):
        load_tasks(f)
    assert len(task_file_hash(OFFLINE_TASKS)) == 64


def test_original_webvoyager_format(tmp_path: Path) -> None:
    f = tmp_path / "wv.jsonl"
    f.write_text(json.dumps({"web_name": "Allrecipes", "id": "Allrecipes--0",
                             "ques": "Find a vegan lasagna.", "web": "https://www.allrecipes.com/"})
                 + "\n")
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"Allrecipes": {"notice": "", "answers": [
        {"id": 0, "type": "possible", "ans": "Vegan Lasagna II"}]}}))
    (t,) = load_webvoyager(f, ref)
    assert t.web == "https://www.allrecipes.com/" and t.eval is None and t.source == "webvoyager"
    assert t.reference == {"type": "possible", "ans": "Vegan Lasagna II"}
    assert t.start_url("http://127.0.0.1:9") == "https://www.allrecipes.com/"
    assert TASKS[0].start_url("http://127.0.0.1:9") == "http://127.0.0.1:9" + TASKS[0].web


def test_miniwob_loader_message() -> None:
    try:
        tasks = miniwob_tasks()
    except ImportError as exc:
        assert "miniwob" in str(exc)
    else:
        assert tasks and all(t.reward == "miniwob" for t in tasks)


def test_plans_reject_unknown_ops(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"id": "x--1", "wrong_answer": "n", "steps": [{"op": "fly"}]}) + "\n")
    with pytest.raises(TaskFileError, match="unknown op"):
        load_plans(f)
    assert OFFLINE_SOLUTIONS.exists()


def test_task_files_match_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The committed task and plan files are what assets/tasks/_build produces."""
    import importlib

    build_dir = OFFLINE_TASKS.parent / "_build"
    monkeypatch.syspath_prepend(str(build_dir))
    builder = importlib.import_module("build_tasks")
    tasks, sols = [], []
    for name in builder.SITE_MODULES:
        book = importlib.import_module(name).build()
        tasks += book.tasks
        sols += book.solutions
    on_disk = [json.loads(line) for line in OFFLINE_TASKS.read_text().splitlines()]
    assert tasks == on_disk, "task file is stale: rerun assets/tasks/_build/build_tasks.py"
    assert sols == [json.loads(line) for line in OFFLINE_SOLUTIONS.read_text().splitlines()]
