"""Runs evaluation tasks through the unchanged agent loop: pixels in, real X input out.

Per worker: a private Xvfb display and a private site server. Per task: server state reset, a
fresh Chromium full-screen on the worker's display, the agent loop with `Screen(display)` and
`Executor(display=...)`, then programmatic judges on evidence gathered over DevTools and from
the site server (plus an optional model judge, reported separately). Environment failures are
retried in a fresh browser; wrong answers never are. Workers run here, in a process pool
(`--workers N`) or as Ray actors (`--ray`, agent/eval/ray_pool.py); all three file results
through `run_eval`'s one writer.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import re
import resource
import shutil
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.eval.browser import Browser, BrowserOptions, EnvironmentFailure, XvfbDisplay
from agent.eval.evidence import (
    as_dict,
    collect_evidence,
    failure_class,
    is_local_task,
    miniwob_start,
    miniwob_verdict,
    phase_split,
)
from agent.eval.results import ResultsLog, open_run_dir, write_json
from agent.eval.settings import (  # re-exported: the harness's public names live here
    DEFAULT_MAX_STEPS,
    SCRIPTED,
    EvalSettings,
    Job,
    default_run_dir,
    select_tasks,
    server_hosts,
    site_of,
)
from agent.geometry import Size

__all__ = ["EvalSettings", "Job", "RunSummary", "Worker", "default_run_dir", "run_eval",
           "select_tasks"]


@dataclass
class RunSummary:
    run_dir: Path
    resumed: bool
    skipped: int
    ran: int
    passed: int
    records: list[dict[str, Any]] = field(default_factory=list)


def run_eval(settings: EvalSettings, *, displays: list[str] | None = None,
             progress: Callable[[dict[str, Any]], None] | None = None,
             on_start: Callable[[int, int], None] | None = None) -> RunSummary:
    """Run (or resume) an evaluation; returns once every selected task has a result.

    `on_start(total, skipped)` is told the size of the run before the first task starts;
    `progress(record)` gets each result as it is filed."""
    allow = server_hosts(settings)  # refuses a public model server before anything starts
    manifest = settings.manifest()
    run_dir = settings.out or default_run_dir(manifest)
    resumed = open_run_dir(Path(run_dir), manifest)  # refuses a changed configuration
    log = ResultsLog(run_dir)
    done = log.finished_keys()
    tasks = select_tasks(settings)
    if settings.model in SCRIPTED:
        _check_plans(settings, tasks)
    jobs = [Job(t, r) for t in tasks for r in range(settings.repeat)]
    todo = [j for j in jobs if j.key not in done]
    summary = RunSummary(Path(run_dir), resumed, len(jobs) - len(todo), 0, 0)
    if on_start is not None:
        on_start(len(jobs), summary.skipped)

    def finished(record: dict[str, Any]) -> None:
        log.append(record)
        summary.ran += 1
        summary.passed += bool(record["passed"])
        summary.records.append(record)
        if progress is not None:
            progress(record)

    workers = max(1, min(settings.workers, len(todo)))
    if settings.ray is not None and todo:
        from agent.eval.ray_pool import run_on_ray

        run_on_ray(settings, Path(run_dir), todo, finished, allow=allow)
    elif workers == 1:
        worker = Worker(settings, Path(run_dir), display=(displays or [None])[0])
        try:
            for job in todo:
                finished(worker.run(job))
        finally:
            worker.close()
    else:
        _run_parallel(settings, Path(run_dir), todo, workers, displays, finished, allow=allow)
    return summary


def _check_plans(settings: EvalSettings, tasks: list[Any]) -> None:
    from agent.eval.solver import PlanError
    from agent.eval.tasks import load_plans

    path = settings.solutions_path()
    if not path.exists():
        raise PlanError(f"scripted solvers need plans: {path} does not exist (--solutions FILE)")
    missing = [t.id for t in tasks if t.id not in load_plans(path)]
    if missing:
        raise PlanError(f"{path} has no plan for {len(missing)} task(s): {', '.join(missing[:5])}")


def _run_parallel(settings: EvalSettings, run_dir: Path, todo: list[Job], workers: int,
                  displays: list[str] | None, finished: Callable[[dict[str, Any]], None], *,
                  allow: tuple[str, ...] = ()) -> None:
    # Processes, not threads: pyautogui's display binding is process-wide, and each worker
    # needs its own display, site server and model instance.
    from agent.offline_boot import child_environment, environment

    ctx = multiprocessing.get_context("spawn")
    jobs: Any = ctx.Queue()
    results: Any = ctx.Queue()
    for job in todo:
        jobs.put(job)
    procs = []
    for n in range(workers):
        display = displays[n] if displays and n < len(displays) else None
        proc = ctx.Process(target=_worker_main, args=(settings, run_dir, display, jobs, results),
                           name=f"eval-worker-{n}", daemon=True)
        # A worker holds screenshots for its whole life: offline mode from its first import
        # (agent/offline_boot.py), not only inside each task's run.
        with environment(child_environment(allow=allow)):
            proc.start()
        procs.append(proc)
    remaining = len(todo)
    try:
        while remaining:
            try:
                kind, payload = results.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError("all evaluation workers exited early") from None
                continue
            if kind == "result":
                finished(payload)
                remaining -= 1
            elif kind == "crash":
                raise RuntimeError(f"an evaluation worker failed:\n{payload}")
    finally:
        if remaining:  # interrupted: ask the workers to unwind (close browsers and displays)
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
        for proc in procs:
            proc.join(timeout=15)
            if proc.is_alive():
                proc.kill()


def _worker_main(settings: EvalSettings, run_dir: Path, display: str | None, jobs: Any,
                 results: Any) -> None:
    def terminate(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    worker = None
    parent = os.getppid()
    try:
        worker = Worker(settings, run_dir, display=display)
        while os.getppid() == parent:  # an orphan stops (and cleans up) instead of running on
            try:
                job = jobs.get(timeout=0.5)
            except queue.Empty:
                return
            results.put(("result", worker.run(job)))
    except BaseException:
        results.put(("crash", traceback.format_exc()))
    finally:
        if worker is not None:
            worker.close()


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (browser, Xvfb)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120] or "task"


@dataclass
class _Attempt:
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


def make_record(job: Job, a: _Attempt, env_errors: list[str], folder: str, *, cpu: float,
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
        task = job.task
        attempt_dir = self.run_dir / "tasks" / safe_name(task.id) / f"r{job.repeat}"
        env_errors: list[str] = []
        cpu0, wall0 = _cpu_seconds(), time.monotonic()
        for _ in range(1 + self.settings.env_retries):
            shutil.rmtree(attempt_dir, ignore_errors=True)  # a killed or failed earlier attempt
            attempt_dir.mkdir(parents=True)
            try:
                outcome = self._attempt(task, attempt_dir)
            except EnvironmentFailure as exc:
                outcome = _Attempt(env_error=str(exc), reason=str(exc))
            if outcome.env_error is None:
                break
            env_errors.append(outcome.env_error)
            self._recover_display()
        record = make_record(job, outcome, env_errors, attempt_dir.relative_to(self.run_dir).as_posix(),
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

    def _attempt(self, task: Any, attempt_dir: Path) -> _Attempt:
        from agent.executor import Executor
        from agent.loop import RunConfig, RunStatus, run_task
        from agent.safety import Gate, Limits, StopFlag
        from agent.screen import Screen
        from agent.trajectory import RunRecorder

        size = self._task_size(task)
        if self._own_display is not None and size != self._display_size:
            self.display = self._start_display(size)
        self.server.reset()
        local = is_local_task(task)
        start_url = self._start_url(task)
        outcome = _Attempt()
        browser = Browser(self.display, BrowserOptions(size=size, offline=local,
                                                       mode=self.settings.browser_mode))
        cdp = None
        screen = Screen(self.display)
        closers: list[Callable[[], None]] = []
        try:
            from agent.eval.cdp import Cdp

            cdp = Cdp(browser.start(start_url)).connect()
            if not cdp.ready(timeout=30, navigated=start_url != "about:blank"):
                raise EnvironmentFailure(f"the start page {start_url} did not load")
            if not cdp.wait_full_screen(size.width, size.height,
                                        window=self.settings.browser_mode == "window"):
                raise EnvironmentFailure("the browser did not go full-screen")
            # Pages fill in by script after `load`: the model's first screenshot should show
            # the page as a person would see it on arrival, not half-painted.
            screen.wait_settled(1, timeout=5.0, interval=0.15, stable_frames=3)
            backend = self._backend_for(task, cdp, size)
            stop = StopFlag()
            question = miniwob_start(cdp) or task.ques if task.reward == "miniwob" else task.ques
            executor = Executor(stop=stop, search_url=self.base_url + "/search/?q={query}",
                                display=self.display)
            closers.append(executor.close)
            max_steps = self.settings.max_steps or task.max_steps \
                or DEFAULT_MAX_STEPS
            config = RunConfig(limits=Limits(max_steps=int(max_steps)), offline=True,
                               offline_allow=self._allow,
                               model_pixels=self.settings.model_pixels,
                               settle_timeout=self.settings.settle_timeout,
                               history_scale=self.settings.history_scale,
                               idle_waits=self.settings.idle_waits)
            meta = {"task": question, "task_id": task.id, "model": self.settings.model,
                    "start_url": start_url, "screen": [size.width, size.height]}
            recorder = RunRecorder(attempt_dir, meta)

            def on_step(step: Any) -> None:
                for phase, seconds in phase_split(step.timings).items():
                    outcome.timings[phase] = outcome.timings.get(phase, 0.0) + seconds
                outcome.tokens["prompt"] += step.prompt_tokens
                outcome.tokens["generated"] += step.generated_tokens
                if task.reward == "miniwob" and cdp.evaluate("WOB_DONE_GLOBAL") is True:
                    stop.set("the MiniWoB episode ended")  # before the agent starts another

            result = run_task(question, on_step=on_step, backend=backend, screen=screen,
                              executor=executor, gate=Gate("never"), config=config, stop=stop,
                              recorder=recorder, current_url=cdp.url)
            outcome.status, outcome.answer = result.status.value, result.answer
            outcome.reason, outcome.steps = result.reason, result.steps
            if not browser.alive():
                outcome.env_error = f"the browser exited during the task: {browser.log_tail(300)}"
            elif result.status is RunStatus.ERROR:
                outcome.env_error = result.reason
            if outcome.env_error is None:
                self._judge(task, cdp, result, outcome, attempt_dir)
        finally:
            for close in closers:
                close()
            if cdp is not None:
                cdp.close()
            browser.close()
            screen.close()
        return outcome

    def _start_url(self, task: Any) -> str:
        return task.start_url(self.base_url)

    def _judge(self, task: Any, cdp: Any, result: Any, outcome: _Attempt, attempt_dir: Path) -> None:
        from agent.eval.judges import judge

        evidence = collect_evidence(task, cdp=cdp, server=self.server, result=result)
        outcome.final_url = evidence.final_url or ""
        eval_block = task.eval
        if task.reward == "miniwob":
            outcome.verdict = miniwob_verdict(cdp)
        elif eval_block:
            outcome.verdict = as_dict(judge(eval_block, evidence))
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
            self._model_backend = load_model_backend(model, self.settings.provider,
                                                     allow_lan=bool(self._allow))
        return self._model_backend


def load_model_backend(model: str, provider: str = "auto", *, allow_lan: bool = False) -> Any:
    """A model backend as `deskhand run --model` would build it (`server:URL` for a server)."""
    from agent.cli import load_backend

    server = model.split(":", 1)[1] if model.startswith("server:") else None
    args = argparse.Namespace(script=None, server=server, server_model=None, allow_lan=allow_lan,
                              model=None if server else model, provider=provider)
    return load_backend(args)


