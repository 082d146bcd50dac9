"""Whose fault a run's end was decides what the harness retries: only the environment's."""

from __future__ import annotations

import pytest

from agent.eval.browser import EnvironmentFailure
from agent.eval.evidence import failure_class, is_environment_failure
from agent.eval.worker import Attempt, run_attempts
from agent.loop import RunStatus


def test_only_an_environment_error_is_retried() -> None:
    retried = {status for status in RunStatus if is_environment_failure(status)}
    assert retried == {RunStatus.ERROR}


@pytest.mark.parametrize("status", list(RunStatus))
def test_every_status_is_classified_and_strings_match_the_enum(status: RunStatus) -> None:
    # A new status without a decision raises here instead of silently meaning "no retry".
    assert is_environment_failure(status.value) is is_environment_failure(status)


def test_a_model_mistake_is_a_result_not_an_environment_failure() -> None:
    assert is_environment_failure(RunStatus.MODEL_ERROR) is False
    assert failure_class(RunStatus.MODEL_ERROR.value, None) != "environment"
    assert failure_class(RunStatus.ERROR.value, None) == "environment"


def test_an_unknown_status_is_a_bug_not_a_guess() -> None:
    with pytest.raises(ValueError):
        is_environment_failure("crashed")


def _scripted(*outcomes: Attempt | Exception):
    calls: list[int] = []

    def attempt() -> Attempt:
        calls.append(1)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return attempt, calls


def test_run_attempts_stops_at_the_first_attempt_the_environment_did_not_fail() -> None:
    attempt, calls = _scripted(Attempt(status="model_error", reason="unparseable"))
    recovered: list[int] = []
    outcome, env_errors = run_attempts(attempt, retries=2, recover=lambda: recovered.append(1))
    assert (outcome.status, env_errors, len(calls), recovered) == ("model_error", [], 1, [])


def test_run_attempts_retries_environment_failures_then_gives_up() -> None:
    attempt, calls = _scripted(EnvironmentFailure("no page"),
                               Attempt(status="error", env_error="display lost"),
                               Attempt(status="error", env_error="browser exited"),
                               Attempt(status="success"))
    recovered: list[int] = []
    outcome, env_errors = run_attempts(attempt, retries=2, recover=lambda: recovered.append(1))
    assert env_errors == ["no page", "display lost", "browser exited"]
    assert outcome.env_error == "browser exited" and len(calls) == 3 and len(recovered) == 3


def test_run_attempts_files_the_success_after_a_retry() -> None:
    attempt, _ = _scripted(EnvironmentFailure("no page"), Attempt(status="success"))
    outcome, env_errors = run_attempts(attempt, retries=2)
    assert outcome.status == "success" and env_errors == ["no page"]
