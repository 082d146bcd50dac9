"""Starts, pauses and stops runs; owns the worker, the status pill and the confirmation dialog.

The main window and the tray both drive runs through this one object, so a run started from the
quick-command prompt behaves exactly like one started from the window.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, replace
from typing import Any

from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, QObject, Signal

from agent.loop import RunResult, RunStatus
from agent.replay import LazyBackend, Recording, ReplayBackend
from agent.safety import Decision, StopFlag
from agent.trajectory import TrajectoryStore
from app.confirm import ConfirmDialog
from app.loaded_model import LoadedModel
from app.model_choice import model_name
from app.pill import StatusPill
from app.qtcompat import emit
from app.services import Services, SetupError, default_backend
from app.session import RunRequest
from app.settings import Settings
from app.step_estimate import StepEstimate
from app.to_gui import to_gui
from app.worker import ConfirmView, RunWorker, StepView

PHASE_TEXT = {"load": QT_TRANSLATE_NOOP("RunController", "loading the model"),
              "capture": QT_TRANSLATE_NOOP("RunController", "looking at the screen"),
              "generate": QT_TRANSLATE_NOOP("RunController", "thinking"),
              "act": QT_TRANSLATE_NOOP("RunController", "acting"),
              "settle": QT_TRANSLATE_NOOP("RunController", "waiting for the screen"),
              "idle": QT_TRANSLATE_NOOP("RunController", "idle")}


def phase_text(phase: str) -> str:
    """What the agent is doing, in the user's language."""
    return QCoreApplication.translate("RunController", PHASE_TEXT.get(phase, phase))


class RunController(QObject):
    """One run at a time; every public method is called on the GUI thread except `stop_now`."""

    state_changed = Signal(str)        # idle | running | paused | waiting | error
    run_started = Signal(str)          # the task
    step = Signal(object)              # StepView
    token = Signal(str)
    captured = Signal(object)          # QImage
    phase = Signal(str)
    stats = Signal(int, int, float)    # step number, max steps, tokens per second
    run_finished = Signal(object)      # RunResult
    failed = Signal(str)               # a run could not start; the message is for users
    preloaded = Signal(str)            # the background model load ended; what happened, for users
    model_problem = Signal(str)        # ... because the model is missing or unusable
    offline_warning = Signal(str)      # offline mode refused something, or its OS layer is off
    question_asked = Signal(str)       # the model asks the person (answer with answer_question)
    question_closed = Signal()         # answered, declined, stopped or the run ended

    def __init__(self, settings: Settings, services: Services | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.services = services or Services()
        self.worker: RunWorker | None = None
        self.pill = StatusPill()
        # A bound method, not a lambda: PySide holds a lambda (and what it captures) strongly,
        # which kept every controller alive for good.
        self.pill.stop_clicked.connect(self._stop_from_pill)
        self.dialog: ConfirmDialog | None = None
        self.state = "idle"
        self.last_result: RunResult | None = None
        self._stop: StopFlag | None = None
        self._pill_wanted = False
        self._steps = 0
        self._tokens = 0
        self._gen_started = 0.0
        self._tps = 0.0
        self.run_id: str | None = None
        self._loaded = LoadedModel()
        self._offline_since = 0.0
        self._os_layer_warned: set[str] = set()

    # --- state -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    @property
    def collapsed(self) -> bool:
        """True while the current run shows the status pill instead of the main window."""
        return self.running and self._pill_wanted

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            emit(self.state_changed, state)

    # --- starting ----------------------------------------------------------------------------
    def start(self, task: str, *, collapse: bool | None = None,
              overrides: dict[str, Any] | None = None, origin: dict[str, Any] | None = None,
              replay: Recording | None = None) -> bool:
        """Start a run of `task`; False (and `failed` emitted) if it cannot start.

        `overrides` replace settings for this run only (an MCP client's monitor, step limit and
        stricter confirmation policy); `origin` is written to the run record (which MCP client).
        With `replay`, the recorded run is played again, each target checked on screen first; the
        model loads only if a step cannot be verified.
        """
        task = task.strip()
        if self.running:
            emit(self.failed, self.tr("A run is already in progress; stop it first."))
            return False
        if not task:
            emit(self.failed, self.tr("Type a task first."))
            return False
        s = replace(self.settings, **overrides) if overrides else self.settings
        stop = StopFlag()
        has_model = bool(model_name(s)) or self.services.backend is not default_backend
        if replay is not None:
            s = replace(s, max_steps=max(s.max_steps, len(replay.steps) + 10))
        elif not has_model:
            message = self.tr("No model is set up yet. Import, export or download one first.")
            self._fail(message)
            emit(self.model_problem, message)
            return False
        backend = self._backend_factory(s)
        if replay is not None:
            backend = ReplayBackend(replay, fallback=LazyBackend(backend) if has_model else None)
        try:
            executor = self.services.executor(s, stop)
            screen = self.services.screen()
        except SetupError as exc:
            self._fail(str(exc))
            return False
        settings = {k: v for k, v in asdict(s).items() if k != "recent_tasks"}
        if origin is not None:
            settings["mcp"] = origin
        if replay is not None:
            settings["replay_of"] = replay.run_id
        runs_dir, keep = s.runs_dir(), s.keep_screenshots

        def recorder():
            rec = TrajectoryStore(runs_dir).start(task, settings, keep_screenshots=keep)
            self.run_id = rec.run_id
            return rec

        request = RunRequest(task=task, backend=backend, screen=screen, executor=executor,
                             options=s.run_options(offline=self.services.offline),
                             recorder=recorder, window_title=self.services.window_title)
        self._pill_wanted = s.hide_window_during_run if collapse is None else collapse
        worker = RunWorker(request, stop=stop, hide_for_look=self._pill_wanted, parent=self)
        worker.step_done.connect(self._on_step)
        worker.token.connect(self._on_token)
        worker.captured.connect(self.captured)
        worker.phase.connect(self._on_phase)
        worker.confirm.connect(self._on_confirm)
        worker.question.connect(self._on_question)
        worker.look.connect(self._on_look)
        worker.run_finished.connect(self._on_finished)
        self.worker, self._stop = worker, stop
        self._offline_since = time.time()
        self._steps, self._tokens, self._tps = 0, 0, 0.0
        s.remember_task(task)
        emit(self.run_started, task)
        self._set_state("running")
        if self._pill_wanted:
            self.pill.set_status(self.tr("Starting: {0}").format(_short(task)))
            self.pill.place()
            self.pill.show()
        worker.start()
        return True

    @property
    def _backend_cache(self) -> tuple[tuple[str, str], object] | None:
        return self._loaded.entry

    @property
    def step_estimate(self) -> StepEstimate | None:
        return self._loaded.step_estimate

    def preload(self) -> threading.Thread | None:
        """Load and warm up the configured model in the background, so the first task starts at once.

        A failure is only reported (`preloaded`); the run that needs the model tries again and
        explains the problem then. Nothing happens when that model is already loaded.
        """
        s = self.settings
        if not s.preload_model or not model_name(s) or self.services.backend is not default_backend:
            return None
        cached = self._loaded.entry
        if cached is not None and cached[0] == (model_name(s), s.provider):
            return None
        build, report = self._backend_factory(s), to_gui(self._preload_done)

        def load() -> None:  # holds no Qt object (app/to_gui.py)
            start = time.monotonic()
            try:
                build()
            except Exception as exc:  # reported; the next run shows the full message
                report(str(exc), 0.0)
                return
            report("", time.monotonic() - start)

        thread = threading.Thread(target=load, name="deskhand-preload", daemon=True)
        thread.start()
        return thread

    def _preload_done(self, error: str, seconds: float) -> None:
        if error:
            emit(self.preloaded, self.tr("The model could not be loaded: {0}").format(error))
            return
        ready = self.tr("Model ready ({0:.0f} s to load and warm up)").format(seconds)
        estimate = self.step_estimate
        emit(self.preloaded, ready if estimate is None else f"{ready}: {estimate.text()}")

    def _backend_factory(self, s: Settings):
        """Builds (or reuses) the backend on the worker thread: loading a model takes seconds."""
        make = self.services.backend  # the worker thread must not hold this QObject
        return self._loaded.builder((model_name(s), s.provider), lambda: make(s),
                                    measure=make is default_backend)

    def close_backend(self) -> None:
        """Unload the cached model (called at shutdown and when the model changes)."""
        self._loaded.close()

    def _fail(self, message: str) -> None:
        self._set_state("error")
        emit(self.failed, message)

    # --- control -----------------------------------------------------------------------------
    def stop_now(self, reason: str = "stopped by the stop hotkey") -> None:
        """Thread-safe: sets the run's stop flag directly (the hotkey thread calls this)."""
        flag = self._stop
        if flag is not None:
            flag.set(reason)

    def stop(self, reason: str = "stopped by the user") -> None:
        if self.worker is not None:
            self.worker.request_stop(reason)
        if self.dialog is not None:
            self.dialog.finish(Decision.DENY)

    def _stop_from_pill(self) -> None:
        self.stop("stopped from the status pill")

    def set_paused(self, paused: bool) -> None:
        if self.worker is None:
            return
        self.worker.set_paused(paused)
        self._set_state("paused" if paused else "running")
        self.pill.set_status(self.tr("Paused") if paused else self.tr("Resuming…"),
                             "waiting" if paused else "running")

    def toggle_pause(self) -> None:
        if self.worker is not None:
            self.set_paused(not self.worker.session.pause.is_paused())

    def wait(self, timeout_ms: int = 5000) -> bool:
        """Block until the worker thread ends (for shutdown and tests only)."""
        return self.worker.wait(timeout_ms) if self.worker is not None else True

    # --- worker signals ----------------------------------------------------------------------
    def _on_token(self, piece: str) -> None:
        now = time.monotonic()
        if self._tokens == 0:
            self._gen_started = now
        self._tokens += 1
        if now - self._gen_started > 0.2:
            self._tps = (self._tokens - 1) / (now - self._gen_started)
        emit(self.token, piece)

    def _on_phase(self, phase: str) -> None:
        if phase == "generate":
            self._tokens = 0
        if phase in PHASE_TEXT and self.worker is not None and phase != "idle":
            self.pill.set_status(self.tr("Step {0}: {1}").format(self._steps + 1,
                                                                  phase_text(phase)))
        emit(self.phase, phase)

    def _on_step(self, view: StepView) -> None:
        self._steps = view.step.index + 1
        emit(self.stats, self._steps, self.settings.max_steps, self._tps)
        emit(self.step, view)

    def _on_look(self, hide: bool) -> None:
        # Hidden for the instant of each capture and action so the agent never sees or clicks us.
        if self._pill_wanted and self.worker is not None:
            self.pill.setVisible(not hide)
        if hide and self.worker is not None:
            self.worker.ack_look()

    def _on_confirm(self, view: ConfirmView) -> None:
        self._set_state("waiting")
        self.pill.set_status(self.tr("Waiting for your confirmation"), "waiting")
        dialog = ConfirmDialog(view, self.settings.confirm_timeout)
        dialog.decided.connect(self._on_decided)
        self.dialog = dialog
        dialog.show()
        dialog.raise_()

    def _on_question(self, question: str) -> None:
        self._set_state("waiting")
        self.pill.set_status(self.tr("The agent asks you a question"), "waiting")
        emit(self.question_asked, question)

    def answer_question(self, answer: str | None) -> None:
        """The person's answer to the model's question (None: declined, the run ends)."""
        if self.worker is not None:
            self.worker.answer_question(answer)
            self._set_state("running")
        emit(self.question_closed)

    def _on_decided(self, decision: Decision) -> None:
        if self.worker is not None:
            self.worker.answer(decision)
            self._set_state("running")
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = None

    def _on_finished(self, result: RunResult) -> None:
        worker = self.worker
        if worker is not None:
            worker.wait(2000)
            worker.deleteLater()
        self.worker, self._stop = None, None
        self.pill.hide()
        if self.dialog is not None:
            self.dialog.finish(Decision.DENY)
        emit(self.question_closed)
        self.last_result = result
        self._set_state("error" if result.status is RunStatus.ERROR else "idle")
        setup_error = worker.session.setup_error if worker is not None else None
        if setup_error:
            emit(self.failed, setup_error)
            emit(self.model_problem, setup_error)
        emit(self.run_finished, result)
        warning = self._offline_report()
        if warning:
            emit(self.offline_warning, warning)

    def _offline_report(self) -> str:
        """What offline mode refused during the run just finished, and any OS layer that is off."""
        from agent.offline import attempts_since, os_layer_warnings

        attempts = attempts_since(self._offline_since)
        lines = []
        if attempts:
            lines.append(self.tr("Offline mode refused {0} attempt(s) to reach the network during "
                                 "this run (nothing was sent):").format(len(attempts)))
            lines += [f"  {a.operation} → {a.destination} ({a.process})" for a in attempts[:20]]
        fresh = [w for w in os_layer_warnings() if w not in self._os_layer_warned]
        if fresh:
            self._os_layer_warned.update(fresh)
            lines.append(self.tr("The model process is not fully sealed off by the operating "
                                 "system; the Python guard still refuses its connections:"))
            lines += [f"  {w}" for w in fresh]
        return "\n".join(lines)


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def result_text(result: RunResult) -> str:
    """One or two sentences for a notification or the status bar."""
    tr = lambda text: QCoreApplication.translate("RunController", text)  # noqa: E731
    head = {
        RunStatus.SUCCESS: tr("Done"), RunStatus.FAILURE: tr("The agent gave up"),
        RunStatus.STOPPED: tr("Stopped"), RunStatus.DENIED: tr("Stopped at your refusal"),
        RunStatus.MAX_STEPS: tr("Step limit reached"), RunStatus.TIMEOUT: tr("Time limit reached"),
        RunStatus.STALLED: tr("Stopped: the agent was stuck"),
        RunStatus.MODEL_ERROR: tr("Model error"), RunStatus.ERROR: tr("Error"),
    }[result.status]
    detail = result.answer or result.reason
    steps = tr("after {0} steps").format(result.steps) if result.steps != 1 else tr("after 1 step")
    return f"{head} {steps}" + (f": {detail}" if detail else ".")
