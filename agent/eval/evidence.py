"""What a finished attempt is judged and classified by: evidence for the judges, MiniWoB++'s own
reward, failure classes and the per-step time split.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from agent.eval.settings import MINIWOB_EPISODE_MS


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
        "model": timings.get("prompt", 0.0) + timings.get("generate", 0.0) + timings.get("parse", 0.0),
        "action": timings.get("gate", 0.0) + timings.get("act", 0.0),
        "settle": timings.get("settle", 0.0),
    }


def failure_class(status: str, env_error: str | None) -> str:
    """Why a task failed: environment error, step budget, no answer or wrong answer."""
    if env_error is not None or status == "error":
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
    from agent.loop import RunStatus

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


def miniwob_start(cdp: Any) -> str:
    """Start a MiniWoB++ episode with a long time-out; returns its instruction text."""
    cdp.evaluate(f"core.EPISODE_MAX_TIME = {MINIWOB_EPISODE_MS}; core.startEpisodeReal(); true")
    return str(cdp.evaluate("(document.getElementById('query') || {}).textContent || ''")).strip()


def miniwob_verdict(cdp: Any) -> dict[str, Any]:
    """MiniWoB++'s own reward: the raw reward (no time penalty) must be positive."""
    done, raw, reason = cdp.evaluate("[WOB_DONE_GLOBAL, WOB_RAW_REWARD_GLOBAL, WOB_REWARD_REASON]")
    raw = float(raw or 0.0)
    return {"passed": bool(done) and raw > 0, "reward": raw,
            "reason": f"MiniWoB reward {raw:g}" + (f" ({reason})" if reason else "")
            + ("" if done else "; the episode did not end")}
