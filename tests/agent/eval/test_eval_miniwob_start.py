"""Starting a MiniWoB++ episode waits until the screen shows it (agent.eval.miniwob): the agent
loop's first screenshot follows at once, and Chromium paints the started page frames later."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agent.eval.browser import EnvironmentFailure
from agent.eval.miniwob import start_episode


class _Page:
    """A stand-in page whose started episode reaches the screen `lag` captures after the start."""

    def __init__(self, lag: int | None) -> None:
        self.lag, self.started_at, self.captures, self.settled = lag, None, 0, 0
        self.scripts: list[str] = []

    def evaluate(self, script: str):
        self.scripts.append(script)
        if "startEpisodeReal" in script:
            self.started_at = self.captures
            return True
        return 'Click on the "no" button.'

    def capture(self, index: int = 1):
        self.captures += 1
        shown = (self.started_at is not None and self.lag is not None
                 and self.captures > self.started_at + self.lag)
        return SimpleNamespace(digest="episode" if shown else "START cover")

    def wait_settled(self, index: int = 1, **_kw):
        self.settled += 1
        return self.capture(index)


def test_the_start_returns_only_once_the_screen_shows_the_episode() -> None:
    page = _Page(lag=4)  # four captures still show the START cover
    assert start_episode(page, page) == 'Click on the "no" button.'
    assert page.started_at == 1  # one capture before the start: what the cover looks like
    assert page.captures >= 1 + 4 + 1 and page.settled == 1
    assert "EPISODE_MAX_TIME" in page.scripts[0]


def test_an_episode_that_never_shows_is_an_environment_failure() -> None:
    page = _Page(lag=None)
    with pytest.raises(EnvironmentFailure, match="did not reach the screen"):
        start_episode(page, page, timeout=0.3)
