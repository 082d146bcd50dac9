"""Replay on the offline evaluation harness: record with the scripted solver, replay, judge.

`ReplayWorker` is the harness's `Worker` with one change: for a task that has a recording, the
backend is a `ReplayBackend` over that recording, so the replayed run goes through the same
browser, X input, loop and judges as the original one. `OracleFallback` is the scripted
stand-in for the model used in measurements and CI: for the recorded step replay could not
verify, it finds that step's element over DevTools (the solver's thoughts name its selector) and
aims at it through the same pixel path as the solver — a model that always understands the step.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.actions import LeftClick, Terminate, TypeText, Wait, format_call, parse
from agent.eval.settings import Job
from agent.eval.worker import Worker
from agent.inference.base import Backend, Generation, Request
from agent.replay.backend import ReplayBackend
from agent.replay.recording import Recording, check_replayable, from_record
from agent.trajectory import TrajectoryStore

_SELECTOR = re.compile(r"^(?:Replaying recorded step \d+: )?"
                       r"(?:Click|Type into|Open the|Scroll (?:down|up) towards) (.+?)(?: list)?\.$")


def load_attempt(attempt_dir: Path) -> Recording:
    """The recording an eval attempt folder holds (it is a run folder)."""
    recording = from_record(TrajectoryStore(attempt_dir.parent).load(attempt_dir.name))
    check_replayable(recording)
    return recording


class OracleFallback(Backend):
    """A scripted "model" for replay's unverifiable steps: plays the recorded step's element."""

    name = "scripted:oracle"

    def __init__(self, replay: ReplayBackend, *, cdp: Any, screen: Any, base_url: str) -> None:
        self._replay, self._cdp, self._screen, self._base = replay, cdp, screen, base_url
        self._solvers: dict[int, Any] = {}
        self._done: set[int] = set()
        self.calls = 0

    def _generate(self, request: Request) -> Generation:
        from agent.eval.solver import PlanSolver

        messages, images = request.messages, request.images
        self.calls += 1
        replay = self._replay
        todo = [s for s in replay.recording.steps[replay.cursor:] if s.index not in self._done]
        if not todo:
            return Generation(format_call("Nothing left to do.", Terminate("failure")))
        step = todo[0]
        if isinstance(step.action, Terminate):
            return Generation(format_call(step.thoughts, step.action))
        if step.index not in self._solvers:
            op = _op(step)
            if op is None:
                return Generation(format_call("The oracle cannot stand in for this step.",
                                              Terminate("failure")))
            self._solvers[step.index] = PlanSolver([op], cdp=self._cdp, screen=self._screen,
                                                   base_url=self._base)
        text = self._solvers[step.index].reply(messages, images)
        parsed = parse(text)
        action = getattr(parsed, "action", None)
        if isinstance(action, Terminate):
            self._done.add(step.index)  # its element is reached (a scroll_to): nothing to send
            return Generation(format_call("Already in view.", Wait(0.2)))
        if isinstance(action, (LeftClick, TypeText)):
            self._done.add(step.index)
        return Generation(text)


def _op(step: Any) -> dict[str, Any] | None:
    """The solver op that did a recorded step, read back from the solver's thoughts."""
    m = _SELECTOR.match(step.thoughts.strip())
    if m is None:
        return None
    selector, a = m.group(1), step.action
    if isinstance(a, TypeText):
        return {"op": "type", "selector": selector, "text": a.text, "enter": a.press_enter,
                "clear": a.delete_existing_text}
    if isinstance(a, LeftClick):
        return {"op": "click", "selector": selector}
    return {"op": "scroll_to", "selector": selector}


class ReplayWorker(Worker):
    """A harness worker that replays recorded attempts (tasks without one run as configured)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recordings: dict[str, Path] = {}
        self.fallback = "none"           # or "oracle"
        self.last: ReplayBackend | None = None

    def replay(self, job: Job, attempt_dir: Path, *, fallback: str = "none") -> dict[str, Any]:
        """Replay one recorded attempt; the result record gains `model_steps` and `checks`."""
        self.recordings[job.task.id] = attempt_dir
        self.fallback, self.last = fallback, None
        try:
            record = self.run(job)
        finally:
            del self.recordings[job.task.id]
        backend = self.last
        record["model_steps"] = backend.model_steps if backend is not None else 0
        return record

    def _backend_for(self, task: Any, cdp: Any, size: Any) -> Any:
        attempt = self.recordings.get(task.id)
        if attempt is None:
            return super()._backend_for(task, cdp, size)
        backend = ReplayBackend(load_attempt(attempt))
        if self.fallback == "oracle":
            backend.fallback = OracleFallback(backend, cdp=cdp, screen=size, base_url=self.base_url)
        self.last = backend
        return backend
