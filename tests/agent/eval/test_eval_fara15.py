"""The harness's side of Fara1.5's questions: scripted answers from the task, page text over DevTools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.eval.page_text import DevToolsPageReader
from agent.eval.tasks import TaskFileError, load_tasks
from agent.questions import OBSERVATION_MAX, ScriptedAnswers, observation

TASK = {"web_name": "shop", "id": "shop--1", "ques": "Buy shoes", "web": "/shop/"}


def write_tasks(tmp_path: Path, *tasks: dict) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks), encoding="utf-8")
    return path


def test_a_task_can_script_the_users_answers(tmp_path: Path) -> None:
    task, = load_tasks(write_tasks(tmp_path, {**TASK, "user_replies": ["size 42", "black"]}))
    assert task.user_replies == ("size 42", "black")
    plain, = load_tasks(write_tasks(tmp_path, TASK))
    assert plain.user_replies == ()


@pytest.mark.parametrize("bad", ["size 42", [""], [3], None])
def test_bad_scripted_answers_are_a_task_file_error(tmp_path: Path, bad) -> None:
    with pytest.raises(TaskFileError, match="user_replies"):
        load_tasks(write_tasks(tmp_path, {**TASK, "user_replies": bad}))


def test_scripted_answers_in_order_then_none() -> None:
    ask = ScriptedAnswers(["size 42"])
    assert ask("Which size?") == "size 42"
    assert ask("Which colour?") is None
    assert ask.asked == ["Which size?", "Which colour?"]


class FakeCdp:
    def __init__(self, value) -> None:
        self.value, self.expressions = value, []

    def evaluate(self, expression: str):
        self.expressions.append(expression)
        return self.value


def test_page_text_comes_from_the_rendered_text_bounded_in_the_page() -> None:
    cdp = FakeCdp("Total: 42 EUR")
    assert DevToolsPageReader(cdp).read("What is the total?", None) == "Total: 42 EUR"
    assert "innerText" in cdp.expressions[0] and f".slice(0, {OBSERVATION_MAX * 4})" in cdp.expressions[0]
    assert DevToolsPageReader(FakeCdp(None)).read("q", None) == ""  # an odd page: no text, no crash


PAGE = ("data:text/html,<body><h1>Order summary</h1><p>Total:   42 EUR</p>"
        "<p hidden>secret hidden text</p><script>var x = 'script text';</script></body>")


@pytest.mark.xvfb
def test_page_text_over_real_devtools(xvfb_display: str) -> None:
    from agent.eval.browser import Browser, BrowserOptions
    from agent.eval.cdp import Cdp

    with Browser(xvfb_display, BrowserOptions()) as browser:
        cdp = Cdp(browser.start(PAGE)).connect()
        try:
            assert cdp.ready(navigated=True)
            text = observation(DevToolsPageReader(cdp).read("What is the total?", None))
        finally:
            cdp.close()
    assert text == "Order summary Total: 42 EUR"  # what a person reads: no hidden text, no script
