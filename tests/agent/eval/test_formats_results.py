"""results.jsonl: `EvalResult`, written by the harness's one writer, read by the report and compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.eval.compare import compare
from agent.eval.report import render_html, summarise
from agent.eval.results import RESULTS, EvalResult, ResultsLog, check_results, open_run_dir


def a_result(key: str = "shop--1#0", **changes: object) -> EvalResult:
    fields: dict = dict(task_id="shop--1", site="shop", repeat=0, question="Buy it.",
                        status="success", answer="done\u2028ok", reason="", steps=3,
                        final_url="http://127.0.0.1:1/x", passed=True,
                        verdict={"passed": True, "reason": "matched"}, model_judge=None,
                        failure=None, env_errors=("display died",),
                        timings={"model": 1.5, "capture": 0.25}, tokens={"prompt": 10},
                        cpu_s=2.0, wall_s=3.0, dir="tasks/shop--1/r0", finished=1.0)
    fields.update(changes)
    return EvalResult(key, **fields)


def test_a_result_round_trips_through_its_line(tmp_path: Path) -> None:
    result = a_result()
    assert EvalResult.from_json(json.loads(json.dumps(result.to_json()))) == (result, [])
    log = ResultsLog(tmp_path)
    log.append(result)
    assert log.records() == [result] and log.finished_keys() == {"shop--1#0"}


def test_the_writer_refuses_a_record_with_a_wrong_field() -> None:
    with pytest.raises(ValueError, match="'passed'"):
        EvalResult.of({**a_result().to_json(), "passed": "yes"})
    with pytest.raises(ValueError, match="key"):
        EvalResult.of({"passed": True})


def test_a_damaged_line_costs_only_itself_in_the_report_and_compare(tmp_path: Path) -> None:
    run = tmp_path / "run"
    open_run_dir(run, {"model": "m", "repeat": 1, "tasks_file": "t.jsonl"})
    good = [a_result(), a_result("news--1#0", task_id="news--1", site="news", passed=False,
                                 failure="wrong_answer")]
    lines = [json.dumps(good[0].to_json()),
             json.dumps({**good[1].to_json(), "steps": "many"}),   # a mistyped field
             json.dumps({"key": "mail--1#0", "task_id": "mail--1", "passed": True}),  # old/short
             json.dumps(["not", "a", "result"]),
             "{broken"]
    (run / RESULTS).write_text("\n".join(lines) + "\n" + '{"key": "torn', encoding="utf-8")
    results, problems = check_results(run)
    assert [r.key for r in results] == ["shop--1#0", "news--1#0", "mail--1#0"]
    assert results[1].steps == 0 and results[2].site == ""
    assert [p.split(": ", 1)[0].rsplit(" ", 1)[-1] for p in problems] == ["2", "4", "5"]
    summary = summarise(run)  # the old reader's KeyError / ValueError stopped the whole report
    assert summary["overall"]["n"] == 3 and summary["overall"]["passed"] == 2
    assert set(summary["sites"]) == {"shop", "news", "?"}
    assert render_html(run, summary).count("<details>") == 3
    assert compare(run, run)["a"]["n"] == 3
