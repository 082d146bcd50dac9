"""The confirmation gate, stop flag, stall detection and limits."""

from __future__ import annotations

import threading
import time

import pytest

from agent.actions import KeyPress, LeftClick, Terminate, TypeText
from agent.safety import (
    Budget,
    ConfirmRequest,
    Decision,
    Gate,
    Limits,
    StallDetector,
    StopFlag,
)


class Asker:
    def __init__(self, answer: Decision) -> None:
        self.answer = answer
        self.requests: list[ConfirmRequest] = []

    def __call__(self, request: ConfirmRequest) -> Decision:
        self.requests.append(request)
        return self.answer


@pytest.mark.parametrize("thoughts, action", [
    ("I will click Place order to buy it.", LeftClick((1, 1))),
    ("Now proceed to checkout.", LeftClick((1, 1))),
    ("Click Send.", LeftClick((1, 1))),
    ("Delete the file.", LeftClick((1, 1))),
    ("Fill the field.", TypeText("please transfer 100 EUR")),
    ("Close the tab.", KeyPress(("ctrl", "w"))),
    ("Quit.", KeyPress(("Alt", "F4"))),
])
def test_risky_actions_ask(thoughts, action) -> None:
    asker = Asker(Decision.DENY)
    verdict = Gate("risky", ask=asker).check(action, thoughts)
    assert not verdict.allowed and verdict.asked
    assert asker.requests and asker.requests[0].reasons


def test_plain_actions_pass_under_risky() -> None:
    asker = Asker(Decision.DENY)
    verdict = Gate("risky", ask=asker).check(LeftClick((1, 1)), "Open the search box.")
    assert verdict.allowed and not asker.requests


def test_word_boundaries_avoid_false_alarms() -> None:
    gate = Gate("risky", ask=Asker(Decision.DENY))
    assert gate.check(LeftClick((1, 1)), "Look at the payload of the bookshelf page.").allowed


def test_deny_list_matches_focused_window_title() -> None:
    asker = Asker(Decision.DENY)
    gate = Gate("risky", ask=asker, deny_titles=["Online Banking"],
                window_title=lambda: "My Online Banking — Browser")
    assert not gate.check(LeftClick((1, 1)), "Click the menu.").allowed
    assert "deny list" in asker.requests[0].reasons[0]


def test_always_asks_and_allow_for_run_sticks() -> None:
    asker = Asker(Decision.ALLOW_RUN)
    gate = Gate("always", ask=asker)
    assert gate.check(LeftClick((1, 1)), "x").allowed
    assert gate.check(LeftClick((2, 2)), "y").allowed
    assert len(asker.requests) == 1


def test_never_policy_and_terminate_do_not_ask() -> None:
    asker = Asker(Decision.DENY)
    assert Gate("never", ask=asker).check(LeftClick((1, 1)), "buy it now").allowed
    assert Gate("always", ask=asker).check(Terminate("success"), "I bought it").allowed
    assert not asker.requests


def test_broken_title_provider_does_not_crash() -> None:
    def boom() -> str:
        raise RuntimeError("window vanished")

    assert Gate("risky", window_title=boom).check(LeftClick((1, 1)), "hello").allowed


def test_stop_flag_wakes_waiters() -> None:
    flag = StopFlag()
    threading.Timer(0.05, flag.set, args=("user",)).start()
    start = time.monotonic()
    assert flag.wait(5)
    assert time.monotonic() - start < 1
    assert flag.reason == "user"


def test_stall_detector() -> None:
    d = StallDetector(limit=3)
    a = LeftClick((5, 5))
    assert not d.observe(a, "s1")
    assert not d.observe(a, "s1")
    assert d.observe(a, "s1")
    assert not d.observe(a, "s2")  # the screen changed
    assert not d.observe(LeftClick((6, 5)), "s2")


def test_budget_limits() -> None:
    b = Budget(Limits(max_steps=2, max_seconds=100))
    assert b.exceeded() is None
    b.steps = 2
    assert "step limit" in (b.exceeded() or "")
    b2 = Budget(Limits(max_steps=10, max_seconds=0.0))
    time.sleep(0.01)
    assert "time limit" in (b2.exceeded() or "")
