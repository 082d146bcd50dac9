"""The MiniWoB++ adapter: what differs when a task is a MiniWoB++ page instead of a site task.

A MiniWoB++ page brings its own instruction (written into the page when the episode starts),
ends its own episode (the worker stops the agent then) and grades itself (its reward replaces
our judges). Everything else — browser, display, agent loop, records — is the same worker path.
"""

from __future__ import annotations

from typing import Any

# MiniWoB++ pages end an episode after 10 s; a local model needs far longer per step.
MINIWOB_EPISODE_MS = 60 * 60 * 1000


def is_episode(task: Any) -> bool:
    """True for a task graded by a MiniWoB++ page's own reward."""
    return task.reward == "miniwob"


def start_episode(cdp: Any) -> str:
    """Start a MiniWoB++ episode with a long time-out; returns its instruction text."""
    cdp.evaluate(f"core.EPISODE_MAX_TIME = {MINIWOB_EPISODE_MS}; core.startEpisodeReal(); true")
    return str(cdp.evaluate("(document.getElementById('query') || {}).textContent || ''")).strip()


def episode_ended(cdp: Any) -> bool:
    """True once the page has ended its episode (solved, failed or timed out)."""
    return cdp.evaluate("WOB_DONE_GLOBAL") is True


def verdict(cdp: Any) -> dict[str, Any]:
    """MiniWoB++'s own reward: the raw reward (no time penalty) must be positive."""
    done, raw, reason = cdp.evaluate("[WOB_DONE_GLOBAL, WOB_RAW_REWARD_GLOBAL, WOB_REWARD_REASON]")
    raw = float(raw or 0.0)
    return {"passed": bool(done) and raw > 0, "reward": raw,
            "reason": f"MiniWoB reward {raw:g}" + (f" ({reason})" if reason else "")
            + ("" if done else "; the episode did not end")}
