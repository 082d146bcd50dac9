"""The agent loop: capture → prompt → generate → parse → gate → act → settle → record.

`iter_steps` is a generator of frozen `Step` records that returns a `RunResult`; `run_task`
consumes it with an `on_step` callback. The loop knows nothing of Qt, of which backend it runs,
or of how input is performed: every collaborator is an argument.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from agent.actions import Action, MemorizeFact, ParseError, Terminate, Wait, describe
from agent.errors import ExecutorError
from agent.geometry import DEFAULT_MODEL_PIXELS, Point, ScreenMapping, Size, Space, model_size_for
from agent.inference.base import Backend, BackendError, TokenCallback
from agent.offline import OfflineGuard
from agent.prompts.fara import FaraFamily, Turn
from agent.safety import Budget, Gate, GateVerdict, Limits, StallDetector, StopFlag
from agent.screen import ScreenError, Screenshot
from agent.trajectory import TrajectoryError

if TYPE_CHECKING:
    from agent.replay.backend import ReplayCheck

PHASES = ("capture", "prompt", "generate", "parse", "gate", "act", "settle")


class RunStatus(str, Enum):
    SUCCESS = "success"          # the model finished with terminate(success)
    FAILURE = "failure"          # the model finished with terminate(failure)
    STOPPED = "stopped"          # the user stopped the run
    DENIED = "denied"            # the confirmation gate refused an action
    MAX_STEPS = "max_steps"
    TIMEOUT = "timeout"
    STALLED = "stalled"          # the same action on an unchanged screen, repeatedly
    MODEL_ERROR = "model_error"  # output the parser could not accept, after the retry
    ERROR = "error"              # the environment failed: display, backend, input


class ScreenSource(Protocol):
    def capture(self, index: int = 1) -> Screenshot: ...

    def wait_settled(self, index: int = 1, *, timeout: float = 3.0,
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


@dataclass(frozen=True)
class RunConfig:
    monitor: int = 1
    limits: Limits = field(default_factory=Limits)
    model_pixels: int = DEFAULT_MODEL_PIXELS
    max_new_tokens: int = 512
    settle_timeout: float = 3.0
    offline: bool = True
    # Hosts the user explicitly allowed through offline mode (a LAN model server, --allow-lan).
    offline_allow: tuple[str, ...] = ()
    # Adaptive compute, off by default because it changes what the model sees or is asked:
    # earlier screenshots sent at this fraction of their sides (fewer image tokens per step) ...
    history_scale: float = 1.0
    # ... and after a `wait` that left the screen unchanged, wait again up to this many times
    # before asking the model (whose answer to an unchanged screen is usually another wait).
    idle_waits: int = 0


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def run_task(task: str, *, on_step: Callable[[Step], None] | None = None, **kwargs) -> RunResult:
    """Run a task to the end, calling `on_step` with each step; see `iter_steps`."""
    steps = iter_steps(task, **kwargs)
    while True:
        try:
            step = next(steps)
        except StopIteration as done:
            return done.value
        if on_step is not None:
            on_step(step)


def iter_steps(
    task: str,
    *,
    backend: Backend,
    screen: ScreenSource,
    executor: ActionPerformer,
    gate: Gate,
    family: FaraFamily | None = None,
    config: RunConfig | None = None,
    stop: StopFlag | None = None,
    recorder: StepRecorder | None = None,
    on_token: TokenCallback | None = None,
    current_url: Callable[[], str | None] | None = None,
) -> Generator[Step, None, RunResult]:
    """Yield one `Step` per model turn until the task ends; return the `RunResult`."""
    family = family or FaraFamily.load()
    config = config or RunConfig()
    stop = stop or StopFlag()
    guard = OfflineGuard(config.offline_allow) if config.offline else contextlib.nullcontext()
    budget = Budget(config.limits)
    with guard:
        try:
            result = yield from _run(task, backend, screen, executor, gate, family, config, stop,
                                     recorder, on_token, current_url, budget)
        except TrajectoryError as exc:
            # Recording failed (e.g. disk full): stop cleanly; what was written stays readable.
            result = RunResult(RunStatus.ERROR, "", str(exc), budget.steps,
                               time.monotonic() - budget.started)
    if recorder is not None:
        with contextlib.suppress(TrajectoryError):
            recorder.finish(result)
    return result


def _run(task, backend, screen, executor, gate, family, config, stop, recorder, on_token,
         current_url, budget) -> Generator[Step, None, RunResult]:
    stall = StallDetector(config.limits.stall_repeats)
    history: list[Turn] = []
    facts: list[str] = []
    pending: Screenshot | None = None  # the settled screenshot from the previous step

    def finish(status: RunStatus, reason: str, answer: str = "") -> RunResult:
        return RunResult(status, answer, reason, budget.steps, time.monotonic() - budget.started,
                         tuple(facts))

    while True:
        if stop.is_set():
            return finish(RunStatus.STOPPED, stop.reason)
        exceeded = budget.exceeded()
        if exceeded:
            status = RunStatus.MAX_STEPS if "step" in exceeded else RunStatus.TIMEOUT
            return finish(status, exceeded)
        timer = _Timer()
        with timer.phase("capture"):
            try:
                shot = pending or screen.capture(config.monitor)
            except ScreenError as exc:
                return finish(RunStatus.ERROR, str(exc))
        pending = None
        with timer.phase("prompt"):
            model_size = model_size_for(shot.size, config.model_pixels)
            mapping = ScreenMapping(shot.monitor, shot.size, model_size)
            model_image = shot.image.resize((model_size.width, model_size.height),
                                            Image.Resampling.BICUBIC)
            url = _safe_url(current_url)
            messages, images = family.build(task, history, model_image, model_size, url,
                                            history_scale=config.history_scale)
        screenshot_file = (recorder.save_screenshot(budget.steps, shot.image)
                           if recorder is not None else None)

        attempts = 0
        while True:
            with timer.phase("generate"):
                try:
                    gen = backend.generate(messages, images, max_new_tokens=config.max_new_tokens,
                                           on_token=on_token, cancel=stop)
                except BackendError as exc:
                    return finish(RunStatus.ERROR, f"the model failed: {exc}")
            if gen.finish_reason == "cancelled" or stop.is_set():
                return finish(RunStatus.STOPPED, stop.reason or "stopped")
            with timer.phase("parse"):
                parsed = family.parse(gen.text, model_size)
            timings = {**timer.timings, **{f"model.{k}": v for k, v in gen.timings.items()}}
            base = dict(index=budget.steps, screenshot=shot, mapping=mapping,
                        model_text=gen.text, prompt_tokens=gen.prompt_tokens,
                        generated_tokens=gen.generated_tokens, screenshot_file=screenshot_file,
                        url=url, replay=getattr(gen, "replay", None))
            if not isinstance(parsed, ParseError):
                break
            attempts += 1
            will_retry = attempts <= config.limits.parse_retries
            step = Step(**base, thoughts=parsed.thoughts, action=None, error=parsed.message,
                        timings=dict(timings), retry=will_retry)
            budget.steps += 1
            yield _recorded(recorder, step)
            if not will_retry:
                return finish(RunStatus.MODEL_ERROR,
                              f"the model's reply could not be used: {parsed.message}")
            # Retry on the same screen, telling the model what was wrong with its reply.
            messages = [*messages, {"role": "assistant", "content": [{"type": "text", "text": gen.text}]},
                        {"role": "user", "content": [{"type": "text",
                                                      "text": family.feedback(parsed)}]}]
            timer = _Timer()

        action, thoughts = parsed.action, parsed.thoughts
        with timer.phase("gate"):
            verdict = gate.check(action, thoughts, screenshot=shot.image,
                                 target=_screenshot_point(mapping, action), model_text=gen.text,
                                 monitor=shot.monitor)
        if not verdict.allowed:
            reason = "you declined: " + "; ".join(verdict.reasons)
            step = Step(**base, thoughts=thoughts, action=action, error=reason,
                        timings=dict(timer.timings), verdict=verdict)
            budget.steps += 1
            yield _recorded(recorder, step)
            return finish(RunStatus.DENIED, reason, thoughts)
        if stop.is_set():
            return finish(RunStatus.STOPPED, stop.reason)

        note = None
        if isinstance(action, Terminate):
            step = Step(**base, thoughts=thoughts, action=action, error=None,
                        timings=dict(timer.timings), verdict=verdict)
            budget.steps += 1
            yield _recorded(recorder, step)
            status = RunStatus.SUCCESS if action.status == "success" else RunStatus.FAILURE
            return finish(status, "the model finished the task" if status is RunStatus.SUCCESS
                          else "the model gave up", thoughts)
        with timer.phase("act"):
            try:
                note = executor.perform(action, mapping)
            except ExecutorError as exc:
                step = Step(**base, thoughts=thoughts, action=action, error=str(exc),
                            timings=dict(timer.timings), verdict=verdict)
                budget.steps += 1
                yield _recorded(recorder, step)
                return finish(RunStatus.ERROR, str(exc))
        if isinstance(action, MemorizeFact):
            facts.append(action.fact)
        settle_error: str | None = None
        with timer.phase("settle"):
            if not stop.is_set():
                try:
                    pending = screen.wait_settled(config.monitor, timeout=config.settle_timeout,
                                                  should_stop=stop.is_set)
                    waited = 0
                    while (isinstance(action, Wait) and waited < config.idle_waits
                           and pending.digest == shot.digest and not stop.is_set()):
                        executor.perform(action, mapping)
                        pending = screen.wait_settled(config.monitor, timeout=config.settle_timeout,
                                                      should_stop=stop.is_set)
                        waited += 1
                    if waited:
                        note = (f"the screen did not change during the wait; waited {waited} more "
                                f"time{'s' if waited > 1 else ''} without asking the model")
                except ScreenError as exc:
                    settle_error = str(exc)
                except ExecutorError as exc:
                    settle_error = str(exc)
        timings = {**timer.timings, **{f"model.{k}": v for k, v in gen.timings.items()}}
        step = Step(**base, thoughts=thoughts, action=action, error=None, timings=timings,
                    verdict=verdict, note=note)
        budget.steps += 1
        history.append(Turn(model_image, gen.text, url))
        yield _recorded(recorder, step)
        if pending is None and not stop.is_set():
            return finish(RunStatus.ERROR, settle_error or "the screen could not be captured")
        # Digests are cached on the screenshots; wait_settled already paid for `pending`'s.
        if pending is not None and stall.observe(action, shot.digest) and \
                pending.digest == shot.digest:
            return finish(RunStatus.STALLED,
                          f"the same action ({describe(action)}) left the screen unchanged "
                          f"{config.limits.stall_repeats} times")


def _screenshot_point(mapping: ScreenMapping, action: Action) -> tuple[int, int] | None:
    """The action's target in screenshot pixels (where the gate reads the label), if any."""
    if action.target is None:
        return None
    p = mapping.convert(Point(action.target[0], action.target[1], Space.MODEL), Space.SCREENSHOT)
    x, y = p.rounded()
    return (min(max(x, 0), mapping.screenshot.width - 1), min(max(y, 0), mapping.screenshot.height - 1))


def _recorded(recorder: StepRecorder | None, step: Step) -> Step:
    if recorder is not None:
        recorder.record(step)  # durable before anyone sees the step
    return step


def _safe_url(current_url: Callable[[], str | None] | None) -> str | None:
    if current_url is None:
        return None
    try:
        return current_url()
    except Exception:
        return None  # the URL is a hint for the model; never fail a step over it
