"""The MiniWoB++ adapter: what differs when a task is a MiniWoB++ page instead of a site task.

A MiniWoB++ page brings its own instruction (written into the page when the episode starts),
ends its own episode (the worker stops the agent then) and grades itself (its reward replaces
our judges). Everything else — browser, display, agent loop, records — is the same worker path.
"""

from __future__ import annotations

import time
from typing import Any

from agent.eval.browser import EnvironmentFailure, wait_painted

# MiniWoB++ pages end an episode after 10 s; a local model needs far longer per step.
MINIWOB_EPISODE_MS = 60 * 60 * 1000
PAINT_TIMEOUT_S = 10.0  # for the started episode to reach the screen


def is_episode(task: Any) -> bool:
    """True for a task graded by a MiniWoB++ page's own reward."""
    return task.reward == "miniwob"


def start_episode(cdp: Any, screen: Any, timeout: float = PAINT_TIMEOUT_S) -> str:
    """Start a MiniWoB++ episode with a long time-out and wait until `screen` shows it; returns
    its instruction text. Raises EnvironmentFailure when the started episode never shows.

    Why wait: starting an episode only hides the page's START cover in the DOM; Chromium paints
    that a frame or more later, and the agent loop captures its first screenshot at once. Under
    load (a training run on the other core) the first screenshot showed the START cover in 17
    of 30 episodes of one measurement: the model's first step looked at no task at all.
    What is waited for is a change from the screen just before the start (the cover going),
    which assumes that screen had settled (the worker waits for that when it opens the page)."""
    before = screen.capture(1).digest
    cdp.evaluate(f"core.EPISODE_MAX_TIME = {MINIWOB_EPISODE_MS}; core.startEpisodeReal(); true")
    query = str(cdp.evaluate("(document.getElementById('query') || {}).textContent || ''")).strip()
    deadline = time.monotonic() + timeout
    while screen.capture(1).digest == before:  # the cover is still on the screen
        if time.monotonic() > deadline:
            raise EnvironmentFailure(f"the started MiniWoB++ episode did not reach the screen "
                                     f"in {timeout:g} s")
        time.sleep(0.05)
    wait_painted(screen)
    return query


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
