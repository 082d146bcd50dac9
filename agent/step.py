"""What one run of the agent loop produces and needs: its step records, result and collaborators.

`Step` is what the GUI, CLI, harness and trajectory see of one model turn; `RunResult` how a run
ended. The loop itself (`agent.loop`) builds them; these types are re-exported from there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from agent.actions import Action, describe
from agent.geometry import ScreenMapping, Size
from agent.options import DEFAULTS
from agent.safety import GateVerdict
from agent.screen import Screenshot

if TYPE_CHECKING:
    from agent.replay.backend import ReplayCheck

# Every phase a step can go through; "look" (the second look before acting on a point,
# agent.second_look) only where the model folder declares one.
PHASES = ("capture", "prompt", "generate", "parse", "look", "gate", "act", "settle")


class PhaseTimer:
    """Seconds spent in each of a step's PHASES (a phase entered twice adds up)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


class RunStatus(str, Enum):
    SUCCESS = "success"          # the model finished with terminate(success)
    FAILURE = "failure"          # the model finished with terminate(failure)
    STOPPED = "stopped"          # the user stopped the run
    DENIED = "denied"            # the confirmation gate refused an action
    MAX_STEPS = "max_steps"
    TIMEOUT = "timeout"
    STALLED = "stalled"          # the same action on an unchanged screen, repeatedly
    MODEL_ERROR = "model_error"  # a reply the parser refused or an impossible action, after retries
    ERROR = "error"              # the environment failed: display, backend, input


class ScreenSource(Protocol):
    def capture(self, index: int = 1) -> Screenshot: ...

    def wait_settled(self, index: int = 1, *, timeout: float = DEFAULTS.settle_timeout,
                     should_stop: Callable[[], bool] = ...) -> Screenshot: ...


class ActionPerformer(Protocol):
    def perform(self, action: Action, mapping: ScreenMapping) -> str | None: ...


class StepRecorder(Protocol):
    def save_screenshot(self, index: int, image: Image.Image) -> str | None: ...

    def record(self, step: Step) -> None: ...

    def finish(self, result: RunResult) -> None: ...


@dataclass(frozen=True)
class Step:
    """One step of a run, as the GUI, CLI, harness and trajectory see it."""

    index: int
    screenshot: Screenshot
    mapping: ScreenMapping
    model_text: str
    thoughts: str
    action: Action | None
    error: str | None
    timings: dict[str, float]
    prompt_tokens: int = 0
    generated_tokens: int = 0
    verdict: GateVerdict | None = None
    screenshot_file: str | None = None
    url: str | None = None
    note: str | None = None
    retry: bool = False  # a refused reply that the loop retries on the same screen
    replay: ReplayCheck | None = None  # how a replayed step was checked (from its backend)

    @property
    def model_size(self) -> Size:
        return self.mapping.model

    @property
    def summary(self) -> str:
        if self.action is not None:
            return describe(self.action)
        return self.error or ""


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    answer: str
    reason: str
    steps: int
    elapsed: float
    facts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCESS
