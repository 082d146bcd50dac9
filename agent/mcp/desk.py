"""One desktop, one run: the runner behind the MCP tools, headless in this process.

A `Desk` runs one task at a time and reports progress as typed records; a second `run` while
one is active raises `Busy` at once (documented: no queue, because the caller cannot see what the
screen will look like by the time a queued task starts). `LocalDesk` drives `agent.loop` here
with the offline guard on, the confirmation gate asking the local person (never the client),
and every MCP call that concerns the run written into its record. `agent.mcp.handoff` has the
`Desk` that hands the task to the running desktop app instead.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.actions import describe
from agent.inference.base import Backend, Generation, Request
from agent.loop import ActionPerformer, RunConfig, RunResult, RunStatus, ScreenSource, Step, iter_steps
from agent.options import DEFAULTS, ConfirmPolicy, RunOptions
from agent.questions import ScriptedAnswers
from agent.safety import ConfirmRequest, Decision, Gate, StopFlag
from agent.trajectory import TrajectoryError, TrajectoryStore

WAITING = "waiting for the person's confirmation"
# What a caller may ask of the gate: as strict as the person's setting or stricter, never "never".
POLICIES = (ConfirmPolicy.RISKY.value, ConfirmPolicy.ALWAYS.value)
THOUGHTS_CHARS = 200  # per step in a run_task summary; get_run has the whole text
SUMMARY_CHARS = 160  # the action in words (typed text can be long)


@dataclass(frozen=True)
class TaskRequest:
    """A task delegated by an MCP client."""

    task: str
    monitor: int = DEFAULTS.monitor
    max_steps: int = DEFAULTS.max_steps
    policy: str = DEFAULTS.policy.value
    caller: dict[str, Any] = field(default_factory=dict)  # client, transport, peer, at
    # The client's answers to questions the model may ask (ask_user_question), in order; a
    # question beyond them gets no answer and the run ends, quoting it, so the client can
    # delegate again with the answer. (The local person is asked only to confirm actions.)
    answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Progress:
    """One progress notification: step number (1-based), phase, and a sentence for the client."""

    step: int
    phase: str  # loading | thinking | acted | waiting | answered | question
    text: str


@dataclass(frozen=True)
class Outcome:
    """What `run_task` returns: text only."""

    run_id: str
    status: str
    answer: str
    reason: str
    steps: tuple[str, ...]
    elapsed: float


class Busy(RuntimeError):
    """A run is already in progress on this desktop; the message says which."""


class Desk(Protocol):
    def run(self, request: TaskRequest, on_progress: Callable[[Progress], None],
            stop: StopFlag) -> Outcome: ...

    def stop(self, reason: str) -> bool: ...

    def status(self) -> dict[str, Any]: ...

    def note_call(self, call: dict[str, Any]) -> None: ...


Asker = Callable[[ConfirmRequest, StopFlag], Decision]


def step_line(step: Step) -> str:
    """One line per step for the client: what was done, and the model's words (shortened)."""
    thoughts = " ".join(step.thoughts.split())
    if len(thoughts) > THOUGHTS_CHARS:
        thoughts = thoughts[: THOUGHTS_CHARS - 1] + "…"
    summary = step.summary if len(step.summary) <= SUMMARY_CHARS else \
        step.summary[: SUMMARY_CHARS - 1] + "…"
    what = summary if step.error is None else f"{summary} — not done: {step.error}"
    if step.error is not None and step.action is None:
        what = f"unusable model reply: {step.error}"
    return f"{step.index + 1}. {what}" + (f" (thoughts: {thoughts})" if thoughts else "")


def busy_message(run_id: str, task: str) -> str:
    return (f"busy: Deskhand is already running a task on this desktop (run {run_id or '?'}: "
            f"{task[:80]!r}). One desktop runs one task at a time; nothing was queued. Call "
            "status() and try again when it is idle, or stop_run() to stop the current task.")


@dataclass
class _Active:
    request: TaskRequest
    stop: StopFlag
    state: str = "running"
    run_id: str = ""
    step: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)


class _CallLog:
    """The run's recorder, adding the MCP calls made during the run to run.json when it ends."""

    def __init__(self, recorder: Any, active: _Active, lock: threading.Lock) -> None:
        self._recorder, self._active, self._lock = recorder, active, lock

    def save_screenshot(self, index: int, image: Any) -> str | None:
        return self._recorder.save_screenshot(index, image)

    def record(self, step: Step) -> None:
        self._recorder.record(step)

    def finish(self, result: RunResult) -> None:
        with self._lock:
            self._recorder.meta["settings"]["mcp"]["calls"] = list(self._active.calls)
        self._recorder.finish(result)


class _Announcing(Backend):
    """The loop's backend, announcing each model turn as a progress record.

    A turn the base class answers at once (the run was stopped) is not announced.
    """

    def __init__(self, backend: Backend, announce: Callable[[], None]) -> None:
        self._backend, self._announce = backend, announce
        self.wraps(backend)  # the loop prompts it as the model it wraps

    def _generate(self, request: Request) -> Generation:
        self._announce()
        return request.pass_to(self._backend)


class LocalDesk:
    """Runs delegated tasks in this process, one at a time (thread-safe)."""

    def __init__(self, *, backend: Callable[[], Any], screen: Callable[[], ScreenSource],
                 executor: Callable[[StopFlag], ActionPerformer], ask: Asker,
                 store: TrajectoryStore | None = None, options: RunOptions = DEFAULTS,
                 window_title: Callable[[], str] = lambda: "",
                 offline_allow: tuple[str, ...] = ()) -> None:
        self._make_backend, self._screen, self._executor, self._ask = backend, screen, executor, ask
        self._store = store or TrajectoryStore()
        # Always offline: the client is another program, never the person at the desk.
        self.options = options.with_changes(offline=True)
        self.max_steps = options.max_steps  # a task's default and upper bound
        self._window_title, self._offline_allow = window_title, offline_allow
        self._lock = threading.Lock()
        self._active: _Active | None = None
        self._backend: Any = None
        self._step_seconds: list[float] = []

    # --- the Desk protocol -------------------------------------------------------------------
    def run(self, request: TaskRequest, on_progress: Callable[[Progress], None],
            stop: StopFlag) -> Outcome:
        """Run `request` to the end on the calling thread; `Busy` at once if a run is active."""
        with self._lock:
            if self._active is not None:
                raise Busy(busy_message(self._active.run_id, self._active.request.task))
            active = self._active = _Active(request, stop, calls=[dict(request.caller,
                                                                         tool="run_task")])
        started = time.monotonic()
        try:
            return self._run(request, active, on_progress, stop, started)
        finally:
            with self._lock:
                self._active = None

    def stop(self, reason: str) -> bool:
        with self._lock:
            active = self._active
        if active is None:
            return False
        active.stop.set(reason)
        return True

    def status(self) -> dict[str, Any]:
        with self._lock:
            active = self._active
            info: dict[str, Any] = {"state": "idle" if active is None else active.state,
                                    "model_loaded": self._backend is not None,
                                    "model": getattr(self._backend, "name", None),
                                    "seconds_per_step": self._expected_step_seconds(),
                                    "runs_in": "this MCP server (headless)"}
            if active is not None:
                info["run"] = {"id": active.run_id, "task": active.request.task,
                               "step": active.step}
        return info

    def note_call(self, call: dict[str, Any]) -> None:
        with self._lock:
            if self._active is not None:
                self._active.calls.append(call)

    # --- one run -----------------------------------------------------------------------------
    def _expected_step_seconds(self) -> float | None:
        recent = self._step_seconds[-10:]
        return round(sum(recent) / len(recent), 2) if recent else None

    def _run(self, request: TaskRequest, active: _Active, on_progress: Callable[[Progress], None],
             stop: StopFlag, started: float) -> Outcome:
        def failed(reason: str) -> Outcome:
            return Outcome(active.run_id, RunStatus.ERROR.value, "", reason, (),
                           time.monotonic() - started)

        if self._backend is None:
            on_progress(Progress(0, "loading", "loading the model"))
            try:
                self._backend = self._make_backend()
            except Exception as exc:  # a missing or broken model: said to the client
                return failed(f"the model could not be loaded: {exc}")
        settings = {"model": getattr(self._backend, "name", "?"), "monitor": request.monitor,
                    "confirm": request.policy, "max_steps": request.max_steps,
                    "mcp": dict(request.caller, calls=[])}
        try:
            recorder = self._store.start(request.task, settings,
                                         keep_screenshots=self.options.keep_screenshots)
        except TrajectoryError as exc:
            return failed(str(exc))
        active.run_id = recorder.run_id
        try:
            screen, executor = self._screen(), self._executor(stop)
        except Exception as exc:  # no display, no input permission
            recorder.finish(RunResult(RunStatus.ERROR, "", str(exc), 0, 0.0))
            return failed(str(exc))

        def ask(confirm: ConfirmRequest) -> Decision:
            active.state = "waiting"
            on_progress(Progress(active.step + 1, "waiting", WAITING))
            try:
                decision = self._ask(confirm, stop)
            finally:
                active.state = "running"
            said = "denied" if decision is Decision.DENY else "allowed"
            on_progress(Progress(active.step + 1, "answered", f"the person {said} the action"))
            return decision

        def announce() -> None:
            on_progress(Progress(active.step + 1, "thinking", f"step {active.step + 1}: the "
                                 "local model is looking at the screen and deciding"))

        # Never laxer than "risky", whoever built the request.
        policy = request.policy if request.policy in POLICIES else ConfirmPolicy.RISKY.value
        gate = Gate(policy, ask=ask, deny_titles=list(self.options.deny_titles),
                    window_title=self._window_title)
        options = self.options.with_changes(monitor=request.monitor, max_steps=request.max_steps)
        config = RunConfig.from_options(options, offline_allow=self._offline_allow)
        lines: list[str] = []
        steps = iter_steps(request.task, backend=_Announcing(self._backend, announce),
                           screen=screen, executor=executor, gate=gate, config=config, stop=stop,
                           recorder=_CallLog(recorder, active, self._lock),
                           ask_person=_client_answers(request, active, on_progress))
        try:
            while True:
                try:
                    step = next(steps)
                except StopIteration as done:
                    result: RunResult = done.value
                    break
                active.step = step.index + 1
                self._step_seconds.append(sum(v for k, v in step.timings.items()
                                              if not k.startswith("model.")))
                line = step_line(step)
                lines.append(line)
                on_progress(Progress(active.step, "acted", line))
        finally:
            for collaborator in (screen, executor):
                with contextlib.suppress(Exception):
                    getattr(collaborator, "close", lambda: None)()
        return Outcome(recorder.run_id, result.status.value, result.answer, result.reason,
                       tuple(lines), result.elapsed)


def _client_answers(request: TaskRequest, active: _Active,
                    on_progress: Callable[[Progress], None]) -> Callable[[str], str | None]:
    """The loop's `ask_person` for an MCP run: the client's answers, each question reported."""
    answers = ScriptedAnswers(request.answers)

    def ask_person(question: str) -> str | None:
        on_progress(Progress(active.step + 1, "question", f"the agent asks: {question}"))
        answer = answers(question)
        on_progress(Progress(active.step + 1, "answered", "answered from the client's answers"
                             if answer is not None else "no answer given: the run ends"))
        return answer

    return ask_person


def outcome_text(outcome: Outcome) -> str:
    """The text `run_task` returns: status, answer, run id, one line per step."""
    head = [f"status: {outcome.status}", f"answer: {outcome.answer or '(none)'}",
            f"reason: {outcome.reason}", f"run id: {outcome.run_id or '(not recorded)'}",
            f"steps: {len(outcome.steps)} in {outcome.elapsed:.1f} s"]
    return "\n".join(head + list(outcome.steps))


def describe_request(request: ConfirmRequest) -> str:
    """What the person is asked, in one paragraph (local dialogs and notifications)."""
    return (f"An MCP client asked Deskhand to act on this desktop. The agent wants to: "
            f"{describe(request.action)}\nbecause it {'; '.join(request.reasons)}.")
