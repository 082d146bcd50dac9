"""What a finished attempt is judged and classified by: evidence for the judges, whose fault a
run's end was (the one rule for what the harness retries), failure classes and the per-step time
split. MiniWoB++'s own reward is in agent/eval/miniwob.py.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from agent.loop import RunStatus

# Whose fault each way a run ends is. Only the environment's (display, browser, input, a backend
# that cannot run) is retried in a fresh browser; a model's mistake (unparseable output, an
# invalid action: MODEL_ERROR), a wrong or missing answer and a budget run out are results.
# Every status is listed, so that a new one needs a decision here (a test checks).
_ENVIRONMENT_FAULT: dict[RunStatus, bool] = {
    RunStatus.SUCCESS: False,
    RunStatus.FAILURE: False,
    RunStatus.STOPPED: False,
    RunStatus.DENIED: False,
    RunStatus.MAX_STEPS: False,
    RunStatus.TIMEOUT: False,
    RunStatus.STALLED: False,
    RunStatus.MODEL_ERROR: False,
    RunStatus.ERROR: True,
}


def is_local_task(task: Any) -> bool:
    """True for a task on this machine (a file, a relative path or a loopback URL)."""
    web = str(task.web)
    if not re.match(r"^[a-z]+://", web) or web.startswith("file:"):
        return True
    from urllib.parse import urlsplit

    from agent.offline import is_loopback_host

    return is_loopback_host(urlsplit(web).hostname or "")


def phase_split(timings: dict[str, float]) -> dict[str, float]:
    """A step's phase timings folded into capture / model / action / settle."""
    return {
        "capture": timings.get("capture", 0.0),
        "model": timings.get("prompt", 0.0) + timings.get("generate", 0.0) + timings.get("parse", 0.0)
                 + timings.get("look", 0.0),
        "action": timings.get("gate", 0.0) + timings.get("act", 0.0),
        "settle": timings.get("settle", 0.0),
    }


def is_environment_failure(status: RunStatus | str) -> bool:
    """True if a run that ended with `status` failed through no fault of the model: retry it."""
    return _ENVIRONMENT_FAULT[RunStatus(status)]


def failure_class(status: str, env_error: str | None) -> str:
    """Why a task failed: environment error, step budget, no answer or wrong answer."""
    if env_error is not None or is_environment_failure(status):
        return "environment"
    if status in ("max_steps", "timeout"):
        return "step_budget"
    if status == "success":
        return "wrong_answer"
    return "no_answer"


def as_dict(verdict: Any) -> dict[str, Any]:
    """A judge's verdict as the plain dict results.jsonl holds."""
    if isinstance(verdict, dict):
        return verdict
    try:
        return asdict(verdict)
    except TypeError:
        return {"passed": bool(getattr(verdict, "passed", False)),
                "reason": str(getattr(verdict, "reason", ""))}


def collect_evidence(task: Any, *, cdp: Any, server: Any, result: Any) -> Any:
    """What the judges look at: final answer and status, final URL, page-state JS, server state."""
    from agent.eval.cdp import CdpError
    from agent.eval.judges import Evidence, page_expressions

    try:
        final_url = cdp.url()
    except Exception:
        final_url = ""
    page_values: dict[str, Any] = {}
    for expr in page_expressions(task.eval):
        try:
            page_values[expr] = cdp.evaluate(expr)
        except CdpError:
            pass  # a missing value fails its check, with the judge saying so
    terminated = result.status in (RunStatus.SUCCESS, RunStatus.FAILURE)
    return Evidence(answer=result.answer, status=result.status.value if terminated else None,
                    final_url=final_url, page_values=page_values, server_state=server.state())
