"""The agent loop: capture → prompt → generate → parse → gate → act → settle → record.

`iter_steps` is a generator of frozen `Step` records that returns a `RunResult`; `run_task`
consumes it with an `on_step` callback. The loop knows nothing of Qt, of which backend it runs,
or of how input is performed: every collaborator is an argument.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from PIL import Image

from agent.actions import Action, MemorizeFact, Parsed, ParseError, Terminate, Wait, describe
from agent.errors import ExecutorError, InvalidActionError
from agent.geometry import ScreenMapping
from agent.inference.base import Backend, BackendError, Generation, TokenCallback
from agent.offline import OfflineGuard
from agent.options import DEFAULTS, MAX_NEW_TOKENS, Mode, RunOptions
from agent.prompts import PromptFamily, Turn, family_for
from agent.questions import CONVERSE, AskPerson, OcrPageReader, PageReader, no_answer, respond, turn_fields
from agent.safety import Budget, Gate, GateVerdict, Limits, StallDetector, StopFlag
from agent.screen import ScreenError, Screenshot
from agent.second_look import Look, look_again, wants_look
from agent.step import (
    PHASES,
    ActionPerformer,
    PhaseTimer,
    RunResult,
    RunStatus,
    ScreenSource,
    Step,
    StepRecorder,
)
from agent.trajectory import TrajectoryError

# The loop's records and collaborators live in agent.step; imported from here by most callers.
__all__ = ["PHASES", "ActionPerformer", "RunConfig", "RunResult", "RunStatus", "ScreenSource", "Step",
           "StepRecorder", "iter_steps", "run_task"]


@dataclass(frozen=True)
class RunConfig:
    """How the loop runs; the person's choices default to `agent.options.DEFAULTS`."""

    monitor: int = DEFAULTS.monitor
    limits: Limits = field(default_factory=Limits)
    model_pixels: int | None = None  # the model image's pixel budget (None: the family's own)
    max_new_tokens: int = MAX_NEW_TOKENS
    settle_timeout: float = DEFAULTS.settle_timeout
    offline: bool = DEFAULTS.offline
    # Hosts the user explicitly allowed through offline mode (a LAN model server, --allow-lan).
    offline_allow: tuple[str, ...] = ()
    # Adaptive compute, off by default because it changes what the model sees or is asked:
    # earlier screenshots sent at this fraction of their sides (fewer image tokens per step) ...
    history_scale: float = DEFAULTS.history_scale
    # ... and after a `wait` that left the screen unchanged, wait again up to this many times
    # before asking the model (whose answer to an unchanged screen is usually another wait).
    idle_waits: int = DEFAULTS.idle_waits
    mode: Mode = DEFAULTS.mode  # the family's prompt variant: browser or desktop
    second_look: bool = DEFAULTS.second_look  # as the backend's folder declares (agent.second_look)

    @classmethod
    def from_options(cls, options: RunOptions, **engine: object) -> RunConfig:
        """The loop's configuration for `options`; `engine` sets the rest (offline_allow, ...)."""
        return cls(monitor=options.monitor, limits=Limits.from_options(options),
                   settle_timeout=options.settle_timeout, offline=options.offline,
                   history_scale=options.history_scale, idle_waits=options.idle_waits,
                   mode=options.mode, second_look=options.second_look, **engine)  # type: ignore[arg-type]


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
    family: PromptFamily | None = None,
    config: RunConfig | None = None,
    stop: StopFlag | None = None,
    recorder: StepRecorder | None = None,
    on_token: TokenCallback | None = None,
    current_url: Callable[[], str | None] | None = None,
    ask_person: AskPerson = no_answer, read_page: PageReader | None = None,
) -> Generator[Step, None, RunResult]:
    """Yield one `Step` per model turn; return the `RunResult` (`ask_person`: see agent.questions)."""
    config = config or RunConfig()
    family = family or family_for(backend, config.mode)
    stop = stop or StopFlag()
    guard = OfflineGuard(config.offline_allow) if config.offline else contextlib.nullcontext()
    budget = Budget(config.limits)
    with guard:
        try:
            run = _Run(task=task, backend=backend, screen=screen, executor=executor, gate=gate,
                       family=family, config=config, stop=stop, recorder=recorder,
                       on_token=on_token, current_url=current_url, budget=budget,
                       ask_person=ask_person, read_page=read_page or OcrPageReader())
            result = yield from _run(run)
        except TrajectoryError as exc:
            # Recording failed (e.g. disk full): stop cleanly; what was written stays readable.
            result = RunResult(RunStatus.ERROR, "", str(exc), budget.steps,
                               time.monotonic() - budget.started)
    if recorder is not None:
        with contextlib.suppress(TrajectoryError):
            recorder.finish(result)
    return result


@dataclass
class _Run:
    """One run's collaborators (the arguments of `iter_steps`) and what it carries between steps."""

    task: str
    backend: Backend
    screen: ScreenSource
    executor: ActionPerformer
    gate: Gate
    family: PromptFamily
    config: RunConfig
    stop: StopFlag
    recorder: StepRecorder | None
    on_token: TokenCallback | None
    current_url: Callable[[], str | None] | None
    budget: Budget
    ask_person: AskPerson = no_answer
    read_page: PageReader = field(default_factory=OcrPageReader)
    history: list[Turn] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    pending: Screenshot | None = None  # the settled screenshot from the previous step
    stall: StallDetector = field(init=False)

    def __post_init__(self) -> None:
        self.stall = StallDetector(self.config.limits.stall_repeats)

    def finish(self, status: RunStatus, reason: str, answer: str = "") -> RunResult:
        return RunResult(status, answer, reason, self.budget.steps,
                         time.monotonic() - self.budget.started, tuple(self.facts))

    def emit(self, view: _View, reply: Generation, timings: dict[str, float], *, thoughts: str,
             action: Action | None, error: str | None, verdict: GateVerdict | None = None,
             note: str | None = None, retry: bool = False) -> Step:
        """The one place a `Step` is built: counted, and recorded before anyone sees it."""
        step = Step(index=self.budget.steps, screenshot=view.shot, mapping=view.mapping,
                    model_text=reply.text, thoughts=thoughts, action=action, error=error,
                    timings=timings, prompt_tokens=reply.prompt_tokens,
                    generated_tokens=reply.generated_tokens, verdict=verdict,
                    screenshot_file=view.screenshot_file, url=view.url, note=note, retry=retry,
                    replay=getattr(reply, "replay", None))
        self.budget.steps += 1
        if self.recorder is not None:
            self.recorder.record(step)  # durable before anyone sees the step
        return step


@dataclass(frozen=True)
class _View:
    """One captured screen and the prompt built from it; every attempt on it shares these."""

    shot: Screenshot
    mapping: ScreenMapping
    model_image: Image.Image
    url: str | None
    messages: list[dict]
    images: list[Image.Image]
    screenshot_file: str | None


@dataclass(frozen=True)
class _Mistake:
    """A reply the model must redo on the same screen: unparseable, or an impossible action."""

    error: ParseError  # what the model is told (`PromptFamily.feedback`)
    action: Action | None = None
    verdict: GateVerdict | None = None


def _run(run: _Run) -> Generator[Step, None, RunResult]:
    while True:
        ended = _limit_reached(run)
        if ended is not None:
            return ended
        timer = PhaseTimer()
        view = _capture(run, timer)
        if isinstance(view, RunResult):
            return view
        ended = yield from _turn(run, view, timer)
        if ended is not None:
            return ended


def _limit_reached(run: _Run) -> RunResult | None:
    if run.stop.is_set():
        return run.finish(RunStatus.STOPPED, run.stop.reason)
    exceeded = run.budget.exceeded()
    if exceeded:
        return run.finish(RunStatus.MAX_STEPS if "step" in exceeded else RunStatus.TIMEOUT, exceeded)
    return None


def _capture(run: _Run, timer: PhaseTimer) -> _View | RunResult:
    """Capture (or reuse the settled screenshot) and build the prompt."""
    config = run.config
    with timer.phase("capture"):
        try:
            shot = run.pending or run.screen.capture(config.monitor)
        except ScreenError as exc:
            return run.finish(RunStatus.ERROR, str(exc))
    run.pending = None
    with timer.phase("prompt"):
        model_size = run.family.model_size(shot.size, config.model_pixels)
        mapping = ScreenMapping(shot.monitor, shot.size, model_size)
        model_image = shot.image.resize((model_size.width, model_size.height),
                                        Image.Resampling.BICUBIC)
        url = _safe_url(run.current_url)
        messages, images = run.family.build(run.task, run.history, model_image, model_size, url,
                                            history_scale=config.history_scale)
    screenshot_file = (run.recorder.save_screenshot(run.budget.steps, shot.image)
                       if run.recorder is not None else None)
    return _View(shot, mapping, model_image, url, messages, images, screenshot_file)


def _turn(run: _Run, view: _View, timer: PhaseTimer) -> Generator[Step, None, RunResult | None]:
    """Generate, parse and act on one screen; a model mistake is fed back and retried on it.

    Returns the run's result when it ends here, None when the next step should start.
    """
    messages, attempts = view.messages, 0
    while True:
        reply = _generate(run, view, messages, timer)
        if isinstance(reply, RunResult):
            return reply
        with timer.phase("parse"):
            parsed = run.family.parse(reply.text, view.mapping.model)
        if isinstance(parsed, ParseError):
            outcome: RunResult | _Mistake | None = _Mistake(parsed)
        else:
            outcome = yield from _act(run, view, reply, parsed, timer)
        if not isinstance(outcome, _Mistake):
            return outcome
        attempts += 1
        will_retry = attempts <= run.config.limits.parse_retries
        mistake = outcome.error
        yield run.emit(view, reply, _with_model(timer, reply), thoughts=mistake.thoughts,
                       action=outcome.action, error=mistake.message, verdict=outcome.verdict,
                       retry=will_retry)
        if not will_retry:
            return run.finish(RunStatus.MODEL_ERROR,
                              f"the model's reply could not be used: {mistake.message}")
        # Retry on the same screen, telling the model what was wrong with its reply.
        messages = [*messages, {"role": "assistant", "content": [{"type": "text", "text": reply.text}]},
                    {"role": "user", "content": [{"type": "text",
                                                  "text": run.family.feedback(mistake)}]}]
        timer = PhaseTimer()


def _generate(run: _Run, view: _View, messages: list[dict], timer: PhaseTimer) -> Generation | RunResult:
    with timer.phase("generate"):
        try:
            reply = run.backend.generate(messages, view.images,
                                         max_new_tokens=run.config.max_new_tokens,
                                         on_token=run.on_token, cancel=run.stop)
        except BackendError as exc:
            return run.finish(RunStatus.ERROR, f"the model failed: {exc}")
    if reply.finish_reason == "cancelled" or run.stop.is_set():
        return run.finish(RunStatus.STOPPED, run.stop.reason or "stopped")
    return reply


def _act(run: _Run, view: _View, reply: Generation, parsed: Parsed,
         timer: PhaseTimer) -> Generator[Step, None, RunResult | _Mistake | None]:
    """Gate, perform and settle one action; an action no input can do is the model's mistake."""
    thoughts, look = parsed.thoughts, Look(parsed.action)
    declared = getattr(run.backend, "second_look", None) if run.config.second_look else None
    if declared is not None and wants_look(parsed.action):  # no "look" phase where none is taken
        with timer.phase("look"):
            look = look_again(run.backend, run.family, run.task, view.shot.image, view.mapping,
                              parsed.action, declared, max_new_tokens=run.config.max_new_tokens,
                              cancel=run.stop)
        if run.stop.is_set():  # stopped while looking: no confirmation, nothing performed
            return run.finish(RunStatus.STOPPED, run.stop.reason or "stopped")
    action = look.action
    # The gate reads the label at the target's screenshot pixel.
    target = None if action.target is None else view.mapping.screenshot_pixel(*action.target)
    with timer.phase("gate"):
        verdict = run.gate.check(action, thoughts, screenshot=view.shot.image, target=target,
                                 model_text=reply.text, monitor=view.shot.monitor)
    if not verdict.allowed:
        reason = "you declined: " + "; ".join(verdict.reasons)
        yield run.emit(view, reply, dict(timer.timings), thoughts=thoughts, action=action,
                       error=reason, verdict=verdict, note=look.note)
        return run.finish(RunStatus.DENIED, reason, thoughts)
    if run.stop.is_set():
        return run.finish(RunStatus.STOPPED, run.stop.reason)
    if isinstance(action, Terminate):
        yield run.emit(view, reply, dict(timer.timings), thoughts=thoughts, action=action,
                       error=None, verdict=verdict)
        if action.status == "success":
            return run.finish(RunStatus.SUCCESS, "the model finished the task", thoughts)
        return run.finish(RunStatus.FAILURE, "the model gave up", thoughts)
    if isinstance(action, CONVERSE):
        return (yield from _converse(run, view, reply, action, thoughts, verdict, timer))
    with timer.phase("act"):
        try:
            note = run.executor.perform(action, view.mapping)
        except InvalidActionError as exc:
            error = ParseError(f"the action could not be performed: {exc}", reply.text, thoughts)
            return _Mistake(error, action, verdict)
        except ExecutorError as exc:
            yield run.emit(view, reply, dict(timer.timings), thoughts=thoughts, action=action,
                           error=str(exc), verdict=verdict)
            return run.finish(RunStatus.ERROR, str(exc))
    if isinstance(action, MemorizeFact):
        run.facts.append(action.fact)
    with timer.phase("settle"):
        note, settle_error = _settle(run, view, action, note)
    run.history.append(Turn(view.model_image, reply.text, view.url))
    yield run.emit(view, reply, _with_model(timer, reply), thoughts=thoughts, action=action,
                   error=None, verdict=verdict, note="; ".join(n for n in (look.note, note) if n) or None)
    return _after_settle(run, view, action, settle_error)


def _converse(run: _Run, view: _View, reply: Generation, action: Action, thoughts: str,
              verdict: GateVerdict, timer: PhaseTimer) -> Generator[Step, None, RunResult | None]:
    """Ask the person, or read the page: no input; the text becomes the next user message."""
    with timer.phase("act"):
        answer, note = respond(action, run.ask_person, run.read_page, view.shot.image)
    ended = answer is None or run.stop.is_set()  # no answer in time, or Stop while waiting
    reason = run.stop.reason if run.stop.is_set() else note
    if not ended:
        run.history.append(Turn(view.model_image, reply.text, view.url, **turn_fields(action, answer)))
    yield run.emit(view, reply, _with_model(timer, reply), thoughts=thoughts, action=action,
                   error=reason if ended else None, verdict=verdict, note=None if ended else note)
    return run.finish(RunStatus.STOPPED, reason) if ended else None


def _settle(run: _Run, view: _View, action: Action, note: str | None) -> tuple[str | None, str | None]:
    """Wait for the screen to settle into `run.pending`; returns the step's note and any error."""
    if run.stop.is_set():
        return note, None
    config, stop = run.config, run.stop
    try:
        run.pending = run.screen.wait_settled(config.monitor, timeout=config.settle_timeout,
                                              should_stop=stop.is_set)
        waited = 0
        while (isinstance(action, Wait) and waited < config.idle_waits
               and run.pending.digest == view.shot.digest and not stop.is_set()):
            run.executor.perform(action, view.mapping)
            run.pending = run.screen.wait_settled(config.monitor, timeout=config.settle_timeout,
                                                  should_stop=stop.is_set)
            waited += 1
        if waited:
            note = (f"the screen did not change during the wait; waited {waited} more "
                    f"time{'s' if waited > 1 else ''} without asking the model")
    except (ScreenError, ExecutorError) as exc:
        return note, str(exc)
    return note, None


def _after_settle(run: _Run, view: _View, action: Action, settle_error: str | None) -> RunResult | None:
    if run.pending is None and not run.stop.is_set():
        return run.finish(RunStatus.ERROR, settle_error or "the screen could not be captured")
    # Digests are cached on the screenshots; wait_settled already paid for `pending`'s.
    if run.pending is not None and run.stall.observe(action, view.shot.digest) and \
            run.pending.digest == view.shot.digest:
        return run.finish(RunStatus.STALLED,
                          f"the same action ({describe(action)}) left the screen unchanged "
                          f"{run.config.limits.stall_repeats} times")
    return None


def _with_model(timer: PhaseTimer, reply: Generation) -> dict[str, float]:
    """The loop's phase timings and the backend's own (prefixed `model.`)."""
    return {**timer.timings, **{f"model.{k}": v for k, v in reply.timings.items()}}


def _safe_url(current_url: Callable[[], str | None] | None) -> str | None:
    if current_url is None:
        return None
    try:
        return current_url()
    except Exception:
        return None  # the URL is a hint for the model; never fail a step over it
