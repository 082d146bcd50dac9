"""Shared pieces of the MCP server tests: a headless desk over fakes, a person who answers later."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import mcp_types as types

from agent.inference.base import ScriptedBackend
from agent.mcp.desk import LocalDesk
from agent.mcp.server import DeskhandMCP
from agent.options import RunOptions
from agent.safety import ConfirmRequest, Decision, StopFlag
from tests.support.fakes import FakeScreen, RecordingExecutor

CLIENT = types.Implementation(name="test-host", version="9.1")


class Person:
    """The local person behind the confirmation: the test decides when and what they answer."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.requests: list[ConfirmRequest] = []
        self._answer: Decision | None = None
        self._answered = threading.Event()

    def __call__(self, request: ConfirmRequest, stop: StopFlag) -> Decision:
        self.requests.append(request)
        self.asked.set()
        while not self._answered.wait(0.02):
            if stop.is_set():
                return Decision.DENY
        return self._answer or Decision.DENY

    def answer(self, decision: Decision) -> None:
        self._answer = decision
        self._answered.set()


def make_app(responses: list[Any], *, executor: Any = None, ask: Callable | None = None,
             screen: Any = None, token_delay: float = 0.0, share_screenshots: bool = False,
             transport: str = "memory") -> tuple[DeskhandMCP, Any]:
    """A `DeskhandMCP` over a headless desk with a scripted model; returns it and the executor."""
    executor = executor if executor is not None else RecordingExecutor()

    def make_executor(stop: StopFlag) -> Any:
        executor.stop = stop
        return executor

    desk = LocalDesk(backend=lambda: ScriptedBackend(responses, token_delay=token_delay),
                     screen=(lambda: screen) if screen is not None else FakeScreen,
                     executor=make_executor, ask=ask or (lambda _r, _s: Decision.DENY),
                     options=RunOptions(settle_timeout=0.0))
    return DeskhandMCP(desk, transport=transport, share_screenshots=share_screenshots), executor
