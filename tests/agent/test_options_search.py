"""web_search without a configured search page: refused before any input, and the model is told
why (so it can open an address with visit_url), instead of a page at a port nothing serves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import agent.executor as ex
from agent.actions import Terminate, VisitUrl, WebSearch, format_call
from agent.errors import InvalidActionError
from agent.executor import DryRunExecutor, Executor
from agent.geometry import Monitor, ScreenMapping, Size
from agent.inference.base import Request, ScriptedBackend
from agent.loop import RunStatus, iter_steps
from agent.options import DEFAULTS
from agent.safety import Gate
from tests.support.fakes import FakeScreen

MAPPING = ScreenMapping(Monitor(1, 0, 0, 1440, 900), Size(1440, 900), Size(1428, 896))


class Input:
    """An input back end that records every call to its GUI and typer (none expected)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gui = self.typer = self

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self.calls.append(name)

    def activate(self) -> None:
        pass


@pytest.fixture
def no_input(monkeypatch: pytest.MonkeyPatch) -> Iterator[Input]:
    fake = Input()
    monkeypatch.setattr(ex, "_open_backend", lambda display: fake)
    yield fake
    assert fake.calls == []  # nothing pressed, typed or moved


@pytest.mark.parametrize("action", [WebSearch("weather in Oslo"), VisitUrl("weather in Oslo")])
def test_without_a_search_page_a_search_is_refused_before_any_input(no_input, action) -> None:
    assert DEFAULTS.search_url == ""
    for executor in (Executor(), Executor(search_url=None), Executor(search_url=DEFAULTS.search_url)):
        with pytest.raises(InvalidActionError, match="no search page is configured"):
            executor.perform(action, MAPPING)


def test_the_dry_run_says_the_same() -> None:
    with pytest.raises(InvalidActionError, match="no search page is configured"):
        DryRunExecutor().perform(WebSearch("weather"), MAPPING)


class Recording(ScriptedBackend):
    """A scripted model that keeps the prompts it was sent."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__(replies)
        self.prompts: list[str] = []

    def _generate(self, request: Request) -> Any:
        self.prompts.append(repr(request.messages))
        return super()._generate(request)


def test_the_model_is_told_and_the_run_goes_on() -> None:
    backend = Recording([format_call("Search it.", WebSearch("weather in Oslo")),
                         format_call("No search here; I am done.", Terminate("success"))])
    steps = iter_steps("weather in Oslo", backend=backend, screen=FakeScreen(),
                       executor=DryRunExecutor(), gate=Gate("never"))
    seen = []
    while True:
        try:
            seen.append(next(steps))
        except StopIteration as done:
            result = done.value
            break
    assert result.status is RunStatus.SUCCESS
    assert seen[0].retry and "no search page is configured" in (seen[0].error or "")
    assert "no search page is configured" in backend.prompts[1]
