"""One evaluation worker: one display, one site server, one model; one task at a time.

Per task: server state reset, a fresh Chromium full-screen on the worker's display, the
unchanged agent loop with `Screen(display)` and `Executor(display=...)`, then programmatic
judges on evidence gathered over DevTools and from the site server (plus an optional model
judge, reported separately). Environment failures are retried in a fresh browser; model
mistakes and wrong answers never are (`evidence.is_environment_failure` decides). The same
worker runs here, in a `--workers` process (agent/eval/process_pool.py) and in a Ray actor
(agent/eval/ray_pool.py).
"""

from __future__ import annotations

import re
import resource
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.eval import miniwob
from agent.eval.browser import Browser, BrowserOptions, EnvironmentFailure, XvfbDisplay, wait_painted
from agent.eval.evidence import (
    as_dict,
    collect_evidence,
    failure_class,
    is_environment_failure,
    is_local_task,
    phase_split,
)
from agent.eval.results import write_json
from agent.eval.settings import SCRIPTED, EvalSettings, Job, server_hosts, site_of
from agent.geometry import Size


def safe_name(text: str) -> str:
    """`text` as one file-name component (task ids become folder names)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120] or "task"


def task_dir(job: Job) -> str:
    """A job's attempt folder, relative to the run folder (the same on every kind of worker)."""
    return attempt_dir(job.task.id, job.repeat)


def attempt_dir(task_id: str, repeat: int) -> str:
    """The attempt folder of a task id and repeat, relative to the run folder."""
    return f"tasks/{safe_name(task_id)}/r{repeat}"


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (browser, Xvfb)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Attempt:
    """What one try at a task came to; `env_error` set means the environment failed it."""

    status: str = "error"
    answer: str = ""
    reason: str = ""
    steps: int = 0
    env_error: str | None = None
    final_url: str = ""
    verdict: dict[str, Any] | None = None
    model_judge: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "generated": 0})


def make_record(job: Job, a: Attempt, env_errors: list[str], folder: str, *, cpu: float,
                wall: float) -> dict[str, Any]:
    """A task's line in results.jsonl; `folder` is its attempt folder within the run folder."""
    verdict = a.verdict or {"passed": False, "reason": a.reason or "not judged"}
    passed = bool(verdict.get("passed")) and a.env_error is None
    return {
        "key": job.key, "task_id": job.task.id, "site": site_of(job.task), "repeat": job.repeat,
        "question": job.task.ques, "status": a.status, "answer": a.answer,
        "reason": a.reason, "steps": a.steps, "final_url": a.final_url, "passed": passed,
        "verdict": verdict, "model_judge": a.model_judge,
        "failure": None if passed else failure_class(a.status, a.env_error),
        "env_errors": env_errors, "timings": {k: round(v, 4) for k, v in a.timings.items()},
        "tokens": a.tokens, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
        "dir": folder, "finished": time.time(),
    }


def run_attempts(attempt: Callable[[], Attempt], *, retries: int,
                 recover: Callable[[], None] = lambda: None) -> tuple[Attempt, list[str]]:
    """Try up to 1 + `retries` times while the environment fails; returns the last attempt and
    why each earlier one failed. `recover` runs between tries (e.g. restart a dead display)."""
    env_errors: list[str] = []
    for _ in range(1 + retries):
        try:
            outcome = attempt()
        except EnvironmentFailure as exc:
            outcome = Attempt(env_error=str(exc), reason=str(exc))
        if outcome.env_error is None:
            break
        env_errors.append(outcome.env_error)
        recover()
    return outcome, env_errors


@dataclass
class _Page:
    """One attempt's browser page on the worker's display, and how the harness reads it."""

    browser: Browser
    cdp: Any  # agent.eval.cdp.Cdp: DevTools on loopback, for the judges (never the agent)
    screen: Any  # agent.screen.Screen of the worker's display
    size: Size
    url: str  # the start URL


class Worker:
    """One display, one site server, one model: runs tasks one after another."""

    def __init__(self, settings: EvalSettings, run_dir: Path, *, display: str | None = None,
                 plans: dict[str, Any] | None = None) -> None:
        """`plans`: the scripted solvers' plans when the task file is not on this machine."""
        from agent.eval.server import SiteServer

        self.settings = settings
        self.run_dir = run_dir
        self._own_display: XvfbDisplay | None = None
        self._display_size = settings.screen
        self.display = display or self._start_display(settings.screen)
        self.server = SiteServer()
        self.base_url = self.server.start()
        self._model_backend: Any = None
        self._plans: dict[str, Any] | None = plans
        self._allow = server_hosts(settings)  # a private-network model server (--allow-lan)

    def _start_display(self, size: Size) -> str:
        if self._own_display is not None:
            self._own_display.stop()
        self._own_display = XvfbDisplay(size)
        self._display_size = size
        return self._own_display.start()

    def close(self) -> None:
        self.server.stop()
        if self._own_display is not None:
            self._own_display.stop()
            self._own_display = None

    # -- one task -----------------------------------------------------------------------

    def run(self, job: Job) -> dict[str, Any]:
        """Run one task (retrying environment failures) and return its result record."""
        folder = task_dir(job)
        attempt_dir = self.run_dir / folder
        cpu0, wall0 = _cpu_seconds(), time.monotonic()

        def attempt() -> Attempt:
            shutil.rmtree(attempt_dir, ignore_errors=True)  # a killed or failed earlier attempt
            attempt_dir.mkdir(parents=True)
            return self._attempt(job.task, attempt_dir)

        outcome, env_errors = run_attempts(attempt, retries=self.settings.env_retries,
                                           recover=self._recover_display)
        record = make_record(job, outcome, env_errors, folder,
                             cpu=_cpu_seconds() - cpu0, wall=time.monotonic() - wall0)
        write_json(attempt_dir / "result.json", record)
        return record

    def _recover_display(self) -> None:
        if self._own_display is not None and not self._own_display.alive():
            self.display = self._start_display(self._display_size)

    def _task_size(self, task: Any) -> Size:
        if task.viewport:
            return Size(int(task.viewport[0]), int(task.viewport[1]))
        return self.settings.screen

    def _attempt(self, task: Any, attempt_dir: Path) -> Attempt:
        """One try in a fresh browser: open the page, run the agent, then judge (if the
        environment held up)."""
        from agent.screen import Screen

        size = self._task_size(task)
        if self._own_display is not None and size != self._display_size:
            self.display = self._start_display(size)
        self.server.reset()
        outcome = Attempt()
        with ExitStack() as stack:  # closes executor, DevTools, browser, screen: in that order
            browser = Browser(self.display, BrowserOptions(size=size, offline=is_local_task(task),
                                                           mode=self.settings.browser_mode))
            screen = Screen(self.display)
            stack.callback(screen.close)
            stack.callback(browser.close)
            page = self._open_page(stack, browser, screen, size, self._start_url(task))
            result = self._run_agent(task, page, outcome, attempt_dir, stack)
            outcome.status, outcome.answer = result.status.value, result.answer
            outcome.reason, outcome.steps = result.reason, result.steps
            if not browser.alive():
                outcome.env_error = f"the browser exited during the task: {browser.log_tail(300)}"
            elif is_environment_failure(result.status):
                outcome.env_error = result.reason
            if outcome.env_error is None:
                self._judge(task, page.cdp, result, outcome, attempt_dir)
        return outcome

    def _open_page(self, stack: ExitStack, browser: Browser, screen: Any, size: Size,
                   start_url: str) -> _Page:
        """Start the browser full-screen at `start_url`, loaded and painted; else raise
        EnvironmentFailure."""
        from agent.eval.cdp import Cdp

        cdp = Cdp(browser.start(start_url)).connect()
        stack.callback(cdp.close)
        if not cdp.ready(timeout=30, navigated=start_url != "about:blank"):
            raise EnvironmentFailure(f"the start page {start_url} did not load")
        if not cdp.wait_full_screen(size.width, size.height,
                                    window=self.settings.browser_mode == "window"):
            raise EnvironmentFailure("the browser did not go full-screen")
        wait_painted(screen)  # not half-painted: pages fill in by script after `load`
        return _Page(browser, cdp, screen, size, start_url)

    def _run_agent(self, task: Any, page: _Page, outcome: Attempt, attempt_dir: Path,
                   stack: ExitStack) -> Any:
        """The unchanged agent loop on the page; step timings and tokens add up in `outcome`."""
        from agent.eval.page_text import DevToolsPageReader
        from agent.executor import Executor
        from agent.loop import run_task
        from agent.questions import ScriptedAnswers
        from agent.safety import Gate, StopFlag
        from agent.trajectory import RunRecorder

        backend = self._backend_for(task, page.cdp, page.size)
        stop = StopFlag()
        episode = miniwob.is_episode(task)
        question = (miniwob.start_episode(page.cdp, page.screen) or task.ques) if episode else task.ques
        executor = Executor(stop=stop, search_url=self.base_url + "/search/?q={query}",
                            display=self.display)
        stack.callback(executor.close)
        meta = {"task": question, "task_id": task.id, "model": self.settings.model,
                "start_url": page.url, "screen": [page.size.width, page.size.height]}

        def on_step(step: Any) -> None:
            for phase, seconds in phase_split(step.timings).items():
                outcome.timings[phase] = outcome.timings.get(phase, 0.0) + seconds
            outcome.tokens["prompt"] += step.prompt_tokens
            outcome.tokens["generated"] += step.generated_tokens
            if episode and miniwob.episode_ended(page.cdp):
                stop.set("the MiniWoB episode ended")  # before the agent starts another

        return run_task(question, on_step=on_step, backend=backend, screen=page.screen,
                        executor=executor, gate=Gate("never"), config=self._run_config(task),
                        stop=stop, recorder=RunRecorder(attempt_dir, meta),
                        current_url=page.cdp.url, ask_person=ScriptedAnswers(task.user_replies),
                        read_page=DevToolsPageReader(page.cdp))

    def _run_config(self, task: Any) -> Any:
        """The loop's configuration for `task`: the run's options, the task's step budget."""
        from agent.loop import RunConfig

        return RunConfig.from_options(self.settings.run_options(task.max_steps),
                                      offline_allow=self._allow,
                                      model_pixels=self.settings.model_pixels)

    def _start_url(self, task: Any) -> str:
        return task.start_url(self.base_url)

    def _judge(self, task: Any, cdp: Any, result: Any, outcome: Attempt, attempt_dir: Path) -> None:
        from agent.eval.judges import judge

        evidence = collect_evidence(task, cdp=cdp, server=self.server, result=result)
        outcome.final_url = evidence.final_url or ""
        if miniwob.is_episode(task):
            outcome.verdict = miniwob.verdict(cdp)
        elif task.eval:
            outcome.verdict = as_dict(judge(task.eval, evidence))
        else:  # e.g. the original WebVoyager tasks: only a model judge can grade them
            outcome.verdict = {"passed": False, "judged": False,
                               "reason": "no programmatic checks for this task"}
        if self.settings.judge_url:
            from agent.eval.model_judge import ModelJudge

            outcome.model_judge = ModelJudge(self.settings.judge_url, self.settings.judge_model) \
                .judge_run(task.ques, result.answer, attempt_dir, task.reference)

    def _backend_for(self, task: Any, cdp: Any, size: Size) -> Any:
        model = self.settings.model
        if model in SCRIPTED:
            from agent.eval.solver import solver_backend
            from agent.eval.tasks import load_plans

            if self._plans is None:
                self._plans = load_plans(self.settings.solutions_path())
            return solver_backend(model.split(":", 1)[1], self._plans[task.id], cdp=cdp,
                                  screen=size, base_url=self.base_url)
        if self._model_backend is None:
            from agent.eval.model import load_model_backend

            self._model_backend = load_model_backend(model, self.settings.provider,
                                                     allow_lan=bool(self._allow),
                                                     resolve=self.settings.resolve_model,
                                                     kv_shift=self.settings.kv_shift)
        return self._model_backend

