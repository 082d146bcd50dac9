"""Errors classified once: key names are validated by the parser through keys.py, and an action no
input can perform is the model's mistake (fed back, retried, then MODEL_ERROR), never an
environment error that the evaluation harness would run again."""

from __future__ import annotations

import pytest

from agent.actions import KeyPress, Parsed, ParseError, Terminate, VisitUrl, format_call, parse
from agent.eval.evidence import failure_class, is_environment_failure
from agent.executor import DryRunExecutor
from agent.inference.base import ScriptedBackend
from agent.keys import resolve_chord
from agent.loop import RunConfig, RunStatus, run_task
from agent.safety import ConfirmRequest, Decision, Gate, Limits
from tests.support.fakes import FakeScreen, RecordingExecutor


def _run(replies: list[str], *, executor=None, retries: int = 1):
    backend = ScriptedBackend(replies)
    steps: list = []
    result = run_task("Open the bank page", backend=backend, screen=FakeScreen(),
                      executor=executor or DryRunExecutor(browser_chords=False),
                      gate=Gate("never"), config=RunConfig(limits=Limits(parse_retries=retries)),
                      on_step=steps.append)
    return result, steps, backend


# -- key names: one table ---------------------------------------------------------------------

@pytest.mark.parametrize("keys", [("ctrl", "blorp"), ("hyperdrive",), ("Ctrl", "Shift", "Ü")])
def test_an_unknown_key_name_is_a_parse_error(keys: tuple[str, ...]) -> None:
    result = parse(format_call("Press it.", KeyPress(keys)))
    assert isinstance(result, ParseError)
    assert "unknown key" in result.message and result.thoughts == "Press it."


@pytest.mark.parametrize("keys", [("Return",), ("Control", "l"), ("del",), ("esc",),
                                  ("cmd", "c"), ("Page_Down",), ("ArrowLeft",), ("KeyA",)])
def test_every_alias_the_executor_presses_parses_unchanged(keys: tuple[str, ...]) -> None:
    result = parse(format_call("Press it.", KeyPress(keys)))
    assert isinstance(result, Parsed) and result.action == KeyPress(keys)
    resolve_chord(keys)  # and the executor can press it


@pytest.mark.parametrize("keys", [("Control", "w"), ("control", "W"), ("CTRL", "w"), ("ctl", "w")])
def test_a_key_alias_is_gated_as_the_executor_presses_it(keys: tuple[str, ...]) -> None:
    assert resolve_chord(keys, "linux") == ("ctrl", "w")  # the executor closes the tab
    asked: list[ConfirmRequest] = []

    def ask(request: ConfirmRequest) -> Decision:
        asked.append(request)
        return Decision.DENY

    verdict = Gate("risky", ask=ask, platform="linux").check(KeyPress(keys), "Tidy up.")
    assert not verdict.allowed and asked


# -- an impossible action is the model's mistake ----------------------------------------------

def test_an_impossible_action_is_fed_back_then_ends_as_model_error() -> None:
    visit = format_call("Open the bank.", VisitUrl("https://bank.example"))
    result, steps, backend = _run([visit, visit])
    assert result.status is RunStatus.MODEL_ERROR
    assert "browser shortcuts are off" in result.reason
    assert [s.retry for s in steps] == [True, False]
    assert all(isinstance(s.action, VisitUrl) and "browser" in (s.error or "") for s in steps)
    feedback = backend.calls[1][0][-1]
    assert feedback["role"] == "user" and "browser shortcuts are off" in feedback["content"][0]["text"]
    assert len(backend.calls[1][1]) == 1  # the same screen, no new capture


def test_the_model_recovers_from_an_impossible_action_within_the_retry_budget() -> None:
    replies = [format_call("Open the bank.", VisitUrl("https://bank.example")),
               format_call("I cannot browse; done.", Terminate("failure"))]
    result, steps, _ = _run(replies)
    assert result.status is RunStatus.FAILURE
    assert steps[0].retry and steps[0].error and steps[1].error is None


def test_an_unknown_key_never_reaches_the_executor() -> None:
    executor = RecordingExecutor()
    press = format_call("Press it.", KeyPress(("ctrl", "blorp")))
    result, steps, _ = _run([press, press], executor=executor)
    assert result.status is RunStatus.MODEL_ERROR and "blorp" in result.reason
    assert not executor.performed and len(steps) == 2


def test_the_harness_does_not_retry_a_model_mistake() -> None:
    visit = format_call("Open the bank.", VisitUrl("https://bank.example"))
    result, _, _ = _run([visit, visit])
    assert not is_environment_failure(result.status)  # the rule the harness retries by
    assert failure_class(result.status.value, None) != "environment"
