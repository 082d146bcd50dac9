"""One run of the agent with pause, confirmation and look/act hooks, without any Qt.

The loop only knows stop; pause is realised here by wrapping the collaborators handed to the loop
(screen, backend, executor) so the worker blocks before the next phase while paused. The same
wrappers tell the GUI when the agent is about to look at or act on the screen, so the status pill
can get out of the way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.geometry import ScreenMapping
from agent.inference.base import Backend, Generation, Request
from agent.loop import RunConfig, RunResult, RunStatus, Step, run_task
from agent.options import DEFAULTS, RunOptions
from agent.prompts import DEFAULT_FAMILY, PromptFamily, family_for, get_family
from agent.safety import ConfirmRequest, Decision, Gate, StopFlag
from agent.screen import Screenshot

Hook = Callable[[], None]


class PauseFlag:
    """Set while paused; `wait` blocks until resumed or stopped."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def is_paused(self) -> bool:
        return not self._running.is_set()

    def wait(self, stop: StopFlag) -> None:
        """Block while paused; return at once when resumed or when `stop` is set."""
        while not self._running.is_set() and not stop.is_set():
            self._running.wait(0.05)


@dataclass
class Hooks:
    """Callbacks from the worker thread; each must return quickly."""

    before_look: Hook = lambda: None      # the agent is about to capture or act: hide our windows
    after_look: Hook = lambda: None
    on_phase: Callable[[str], None] = lambda _phase: None
    on_capture: Callable[[Screenshot], None] = lambda _shot: None


class PausingScreen:
    """The loop's screen, paused at phase boundaries and bracketed by the look hooks."""

    def __init__(self, screen: Any, pause: PauseFlag, stop: StopFlag, hooks: Hooks) -> None:
        self._screen, self._pause, self._stop, self._hooks = screen, pause, stop, hooks
        self.last: Screenshot | None = None

    def _looked(self, fn: Callable[[], Screenshot], phase: str) -> Screenshot:
        self._pause.wait(self._stop)
        self._hooks.on_phase(phase)
        self._hooks.before_look()
        try:
            shot = fn()
        finally:
            self._hooks.after_look()
        self.last = shot
        self._hooks.on_capture(shot)
        return shot

    def capture(self, index: int = 1) -> Screenshot:
        return self._looked(lambda: self._screen.capture(index), "capture")

    def wait_settled(self, index: int = 1, **kwargs: Any) -> Screenshot:
        return self._looked(lambda: self._screen.wait_settled(index, **kwargs), "settle")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._screen, name)


class PausingBackend(Backend):
    """The loop's backend, paused before each generation and between tokens.

    The checks and the cancel answer are the base class's (a stopped run is answered before
    the pause); a stop pressed while paused reaches the inner backend, which then never starts.
    """

    def __init__(self, backend: Backend, pause: PauseFlag, stop: StopFlag, hooks: Hooks) -> None:
        self._backend, self._pause, self._stop, self._hooks = backend, pause, stop, hooks
        self.wraps(backend)  # the loop prompts it as the model it wraps

    def _generate(self, request: Request) -> Generation:
        self._pause.wait(self._stop)
        self._hooks.on_phase("generate")

        def token(piece: str) -> None:
            request.emit(piece)
            self._pause.wait(self._stop)  # pausing mid-answer holds the next token

        return request.pass_to(self._backend, on_token=token)


class PausingExecutor:
    """The loop's executor, paused before each action and bracketed by the look hooks."""

    def __init__(self, executor: Any, pause: PauseFlag, stop: StopFlag, hooks: Hooks) -> None:
        self._executor, self._pause, self._stop, self._hooks = executor, pause, stop, hooks

    def perform(self, action, mapping):
        self._pause.wait(self._stop)
        self._hooks.on_phase("act")
        self._hooks.before_look()
        try:
            return self._executor.perform(action, mapping)
        finally:
            self._hooks.after_look()


def _await(answered: threading.Event, stop: StopFlag, timeout: float) -> None:
    """Wait for `answered` at most `timeout` seconds, waking within 50 ms of a stop."""
    deadline = time.monotonic() + timeout
    while not answered.is_set() and not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        answered.wait(min(left, 0.05))


class ConfirmBridge:
    """The gate's `ask` callback: blocks the worker until the GUI answers, a time-out, or stop."""

    def __init__(self, notify: Callable[[ConfirmRequest], None], stop: StopFlag,
                 timeout: float = DEFAULTS.confirm_timeout) -> None:
        self._notify, self._stop, self.timeout = notify, stop, timeout
        self._answered = threading.Event()
        self._decision = Decision.DENY
        self._lock = threading.Lock()
        self.pending: ConfirmRequest | None = None

    def ask(self, request: ConfirmRequest) -> Decision:
        with self._lock:
            self._answered.clear()
            self._decision = Decision.DENY
            self.pending = request
        self._notify(request)
        _await(self._answered, self._stop, self.timeout)
        with self._lock:
            self.pending = None
            return self._decision if self._answered.is_set() else Decision.DENY

    def answer(self, decision: Decision) -> None:
        """Called from the GUI thread; a late answer after the time-out is ignored."""
        with self._lock:
            if self.pending is None:
                return
            self._decision = decision
            self._answered.set()


class QuestionBridge:
    """The loop's `ask_person`: blocks the worker until the person answers, a time-out, or stop.

    None (the run ends) when nobody answered within `timeout` (the confirmation time-out), the
    person declined, or Stop was pressed; a late answer after that is ignored.
    """

    def __init__(self, notify: Callable[[str], None], stop: StopFlag,
                 timeout: float = DEFAULTS.confirm_timeout) -> None:
        self._notify, self._stop, self.timeout = notify, stop, timeout
        self._answered = threading.Event()
        self._answer: str | None = None
        self._lock = threading.Lock()
        self.pending: str | None = None

    def ask(self, question: str) -> str | None:
        with self._lock:
            self._answered.clear()
            self._answer, self.pending = None, question
        self._notify(question)
        _await(self._answered, self._stop, self.timeout)
        with self._lock:
            self.pending = None
            return self._answer if self._answered.is_set() and not self._stop.is_set() else None

    def answer(self, text: str | None) -> None:
        """Called from the GUI thread with the person's answer (None: they declined)."""
        with self._lock:
            if self.pending is None:
                return
            self._answer = text if text is None or text.strip() else None
            self._answered.set()


@dataclass
class RunRequest:
    """Everything one run needs; the GUI builds it from the settings."""

    task: str
    backend: Any  # a Backend, or a zero-argument callable that builds one (on the worker thread)
    screen: Any
    executor: Any
    options: RunOptions = DEFAULTS  # `Settings.run_options()` in the app
    recorder: Any = None  # a StepRecorder, or a zero-argument callable that starts one
    window_title: Callable[[], str] = lambda: ""


class RunSession:
    """Runs one task on the calling thread; `stop` and `pause` may be set from any thread."""

    def __init__(self, request: RunRequest, *, hooks: Hooks | None = None,
                 on_step: Callable[[Step], None] = lambda _s: None,
                 on_token: Callable[[str], None] = lambda _t: None,
                 on_confirm: Callable[[ConfirmRequest], None] = lambda _r: None,
                 on_question: Callable[[str], None] = lambda _q: None,
                 stop: StopFlag | None = None) -> None:
        self.request = request
        self.hooks = hooks or Hooks()
        self.stop = stop or StopFlag()
        self.pause = PauseFlag()
        self.bridge = ConfirmBridge(on_confirm, self.stop, request.options.confirm_timeout)
        self.questions = QuestionBridge(on_question, self.stop, request.options.confirm_timeout)
        self._on_step, self._on_token = on_step, on_token
        self.setup_error: str | None = None  # the backend could not be built (model problem)
        self.screen = PausingScreen(request.screen, self.pause, self.stop, self.hooks)
        self.config = RunConfig.from_options(request.options)
        # The model's prompt family (with what its folder declares), known once the backend is
        # built; until then the default family.
        self.family: PromptFamily = get_family(DEFAULT_FAMILY, mode=self.config.mode)

    def mapping_for_last(self) -> ScreenMapping | None:
        """How the model's coordinates map onto the latest screenshot (for the confirm dialog)."""
        shot = self.screen.last
        if shot is None:
            return None
        # Its image grid and the folder's pixel limit, as the loop's.
        return ScreenMapping(shot.monitor, shot.size,
                             self.family.model_size(shot.size, self.config.model_pixels))

    def run(self) -> RunResult:
        """Run to the end; environment failures become an ERROR result, never an exception."""
        r = self.request
        started = time.monotonic()
        backend = r.backend
        if callable(backend) and not hasattr(backend, "generate"):
            self.hooks.on_phase("load")
            try:
                backend = backend()  # loading a 7B model takes seconds: never on the GUI thread
            except Exception as exc:
                self.setup_error = str(exc) or type(exc).__name__
                self.hooks.on_phase("idle")
                return RunResult(RunStatus.ERROR, "", self.setup_error, 0, time.monotonic() - started)
        self.family = family_for(backend, self.config.mode)
        recorder = r.recorder
        if callable(recorder) and not hasattr(recorder, "record"):
            try:
                recorder = recorder()  # creates folders and fsyncs: kept off the GUI thread
            except Exception as exc:
                self.hooks.on_phase("idle")
                return RunResult(RunStatus.ERROR, "", f"the run could not be recorded: {exc}", 0,
                                 time.monotonic() - started)
        gate = Gate(r.options.policy.value, ask=self.bridge.ask, deny_titles=list(r.options.deny_titles),
                    window_title=r.window_title)
        try:
            return run_task(
                r.task, backend=PausingBackend(backend, self.pause, self.stop, self.hooks),
                screen=self.screen,
                executor=PausingExecutor(r.executor, self.pause, self.stop, self.hooks),
                gate=gate, config=self.config, stop=self.stop, recorder=recorder,
                on_step=self._on_step, on_token=self._on_token, ask_person=self.questions.ask)
        except Exception as exc:  # disk full while recording, a backend bug: report, keep the app
            message = str(exc) or type(exc).__name__
            return RunResult(RunStatus.ERROR, "", message, 0, time.monotonic() - started)
        finally:
            self.hooks.on_phase("idle")
            # Per-run X connections (mss is per thread, the executor's input connection) end here,
            # on the thread that opened them.
            for collaborator in (r.screen, r.executor):
                close = getattr(collaborator, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception:
                        pass  # a display that is already gone has nothing left to close
