"""Runs evaluation tasks through the unchanged agent loop: pixels in, real X input out.

Per worker: a private Xvfb display and a private site server. Per task: server state reset, a
fresh Chromium full-screen on the worker's display, the agent loop with `Screen(display)` and
`Executor(display=...)`, then programmatic judges on evidence gathered over DevTools and from
the site server (plus an optional model judge, reported separately). Environment failures are
retried in a fresh browser; wrong answers never are.
"""

from __future__ import annotations

import argparse
import hashlib
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.eval.browser import DEFAULT_SCREEN, Browser, BrowserOptions, EnvironmentFailure, XvfbDisplay
from agent.eval.results import ResultsLog, config_hash, file_hash, open_run_dir, write_json
from agent.geometry import DEFAULT_MODEL_PIXELS, Size

DEFAULT_MAX_STEPS = 30
SCRIPTED = ("scripted:solver", "scripted:wrong")
MINIWOB = "miniwob"
# MiniWoB++ pages end an episode after 10 s; a local model needs far longer per step.
MINIWOB_EPISODE_MS = 60 * 60 * 1000
HARNESS_VERSION = 1  # bump when a change alters results, so old run folders refuse to resume


@dataclass(frozen=True)
class EvalSettings:
    """Everything that decides a run's results (hashed into the manifest) and how it is run."""

    tasks: Path
    model: str
    repeat: int = 1
    max_steps: int | None = None  # None: each task's own `max_steps`, else DEFAULT_MAX_STEPS
    screen: Size = DEFAULT_SCREEN
    model_pixels: int = DEFAULT_MODEL_PIXELS
    settle_timeout: float = 3.0
    browser_mode: str = "window"  # or "kiosk"; see agent.eval.browser.BrowserOptions
    provider: str = "auto"
    solutions: Path | None = None  # scripted solvers' plans (default: next to the task file)
    reference: Path | None = None  # WebVoyager reference answers (shown to the model judge)
    judge_url: str | None = None  # loopback OpenAI-compatible endpoint for the model judge
    judge_model: str | None = None
    # Adaptive compute (agent.loop.RunConfig): off by default, recorded when on.
    history_scale: float = 1.0
    idle_waits: int = 0
    # How the run is carried out; not part of the configuration hash.
    workers: int = 1
    sites_only: tuple[str, ...] = ()
    limit: int | None = None
    env_retries: int = 2
    out: Path | None = None

    def manifest(self) -> dict[str, Any]:
        """The configuration that results depend on."""
        manifest: dict[str, Any] = {
            "harness": HARNESS_VERSION,
            "tasks_file": self.tasks.name,
            "tasks_sha256": _miniwob_fingerprint() if is_miniwob(self.tasks) else file_hash(self.tasks),
            "model": self.model,
            "repeat": self.repeat,
            "max_steps": self.max_steps,
            "screen": [self.screen.width, self.screen.height],
            "model_pixels": self.model_pixels,
            "settle_timeout": self.settle_timeout,
            "browser_mode": self.browser_mode,
            "judge": {"url": self.judge_url, "model": self.judge_model} if self.judge_url else None,
        }
        # Only when set, so that run folders from before these options keep their hash.
        if self.history_scale != 1.0:
            manifest["history_scale"] = self.history_scale
        if self.idle_waits:
            manifest["idle_waits"] = self.idle_waits
        if self.reference is not None:
            manifest["reference_sha256"] = file_hash(self.reference)
        if self.model in SCRIPTED:
            manifest["solutions_sha256"] = file_hash(self.solutions_path())
        elif not self.model.startswith("server:"):
            manifest["model_fingerprint"] = _model_fingerprint(self.model)
        return manifest

    def solutions_path(self) -> Path:
        if self.solutions is not None:
            return self.solutions
        name = self.tasks.name.removesuffix(".jsonl") + ".solutions.jsonl"
        return self.tasks.with_name(name)


def is_miniwob(tasks: Path) -> bool:
    """`--tasks miniwob`: the MiniWoB++ pages of the installed `miniwob` package."""
    return str(tasks) == MINIWOB


def _miniwob_fingerprint() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"miniwob {version('miniwob')}"
    except PackageNotFoundError:
        return "miniwob (not installed)"


def _model_fingerprint(model: str) -> str:
    """Identifies the model folder's contents cheaply: file names and sizes."""
    try:
        from agent.cli import resolve_model_folder

        folder = resolve_model_folder(model)
    except Exception:
        return model
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            parts.append(f"{path.relative_to(folder)}:{path.stat().st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def default_run_dir(manifest: dict[str, Any]) -> Path:
    """Results are filed by a hash of the configuration."""
    from agent.paths import data_dir

    return data_dir() / "eval" / config_hash(manifest)[:12]


@dataclass(frozen=True)
class Job:
    task: Any
    repeat: int

    @property
    def key(self) -> str:
        return f"{self.task.id}#{self.repeat}"


@dataclass
class RunSummary:
    run_dir: Path
    resumed: bool
    skipped: int
    ran: int
    passed: int
    records: list[dict[str, Any]] = field(default_factory=list)


def load_task_file(path: Path, reference: Path | None = None) -> list[Any]:
    """Tasks from our offline JSONL or the original WebVoyager JSONL (detected by content)."""
    from agent.eval.tasks import load_tasks, load_webvoyager, miniwob_tasks

    if is_miniwob(path):
        return miniwob_tasks()
    tasks = load_tasks(path)
    if tasks and all(t.eval is None and re.match(r"^https?://", t.web) for t in tasks):
        # The unchanged WebVoyager file: live sites, graded by the model judge only.
        return load_webvoyager(path, reference)
    return tasks


def select_tasks(settings: EvalSettings) -> list[Any]:
    """The task file's tasks, filtered by site and limited, in file order."""
    tasks = load_task_file(settings.tasks, settings.reference)
    if settings.sites_only:
        wanted = {s.strip().lower() for s in settings.sites_only if s.strip()}
        tasks = [t for t in tasks if _site(t).lower() in wanted]
    if settings.limit is not None:
        tasks = tasks[: settings.limit]
    return tasks


def _site(task: Any) -> str:
    return task.web_name


def run_eval(settings: EvalSettings, *, displays: list[str] | None = None,
             progress: Callable[[dict[str, Any]], None] | None = None) -> RunSummary:
    """Run (or resume) an evaluation; returns once every selected task has a result."""
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

    def finished(record: dict[str, Any]) -> None:
        log.append(record)
        summary.ran += 1
        summary.passed += bool(record["passed"])
        summary.records.append(record)
        if progress is not None:
            progress(record)

    workers = max(1, min(settings.workers, len(todo)))
    if workers == 1:
        worker = Worker(settings, Path(run_dir), display=(displays or [None])[0])
        try:
            for job in todo:
                finished(worker.run(job))
        finally:
            worker.close()
    else:
        _run_parallel(settings, Path(run_dir), todo, workers, displays, finished)
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
                  displays: list[str] | None, finished: Callable[[dict[str, Any]], None]) -> None:
    # Processes, not threads: pyautogui's display binding is process-wide, and each worker
    # needs its own display, site server and model instance.
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


class Worker:
    """One display, one site server, one model: runs tasks one after another."""

    def __init__(self, settings: EvalSettings, run_dir: Path, *, display: str | None = None) -> None:
        from agent.eval.server import SiteServer

        self.settings = settings
        self.run_dir = run_dir
        self._own_display: XvfbDisplay | None = None
        self._display_size = settings.screen
        self.display = display or self._start_display(settings.screen)
        self.server = SiteServer()
        self.base_url = self.server.start()
        self._model_backend: Any = None
        self._plans: dict[str, Any] | None = None

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
        record = self._record(job, outcome, env_errors, attempt_dir,
                              _cpu_seconds() - cpu0, time.monotonic() - wall0)
        write_json(attempt_dir / "result.json", record)
        return record

    def _recover_display(self) -> None:
        if self._own_display is not None and not self._own_display.alive():
            self.display = self._start_display(self._display_size)

    def _record(self, job: Job, a: _Attempt, env_errors: list[str], attempt_dir: Path,
                cpu: float, wall: float) -> dict[str, Any]:
        verdict = a.verdict or {"passed": False, "reason": a.reason or "not judged"}
        passed = bool(verdict.get("passed")) and a.env_error is None
        return {
            "key": job.key, "task_id": job.task.id, "site": _site(job.task), "repeat": job.repeat,
            "question": job.task.ques, "status": a.status, "answer": a.answer,
            "reason": a.reason, "steps": a.steps, "final_url": a.final_url, "passed": passed,
            "verdict": verdict, "model_judge": a.model_judge,
            "failure": None if passed else failure_class(a.status, a.env_error),
            "env_errors": env_errors, "timings": {k: round(v, 4) for k, v in a.timings.items()},
            "tokens": a.tokens, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "dir": str(attempt_dir.relative_to(self.run_dir)), "finished": time.time(),
        }

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
        local = _is_local(task)
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
            question = _miniwob_start(cdp) or task.ques if task.reward == "miniwob" else task.ques
            executor = Executor(stop=stop, search_url=self.base_url + "/search/?q={query}",
                                display=self.display)
            closers.append(executor.close)
            max_steps = self.settings.max_steps or task.max_steps \
                or DEFAULT_MAX_STEPS
            config = RunConfig(limits=Limits(max_steps=int(max_steps)), offline=True,
                               model_pixels=self.settings.model_pixels,
                               settle_timeout=self.settings.settle_timeout,
                               history_scale=self.settings.history_scale,
                               idle_waits=self.settings.idle_waits)
            meta = {"task": question, "task_id": task.id, "model": self.settings.model,
                    "start_url": start_url, "screen": [size.width, size.height]}
            recorder = RunRecorder(attempt_dir, meta)

            def on_step(step: Any) -> None:
                for phase, seconds in _phase_split(step.timings).items():
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
            outcome.verdict = _miniwob_verdict(cdp)
        elif eval_block:
            outcome.verdict = _as_dict(judge(eval_block, evidence))
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
            self._model_backend = load_model_backend(model, self.settings.provider)
        return self._model_backend


def load_model_backend(model: str, provider: str = "auto") -> Any:
    """A model backend as `deskhand run --model` would build it (`server:URL` for a server)."""
    from agent.cli import load_backend

    server = model.split(":", 1)[1] if model.startswith("server:") else None
    args = argparse.Namespace(script=None, server=server, server_model=None, allow_lan=False,
                              model=None if server else model, provider=provider)
    return load_backend(args)


def _is_local(task: Any) -> bool:
    web = str(task.web)
    if not re.match(r"^[a-z]+://", web) or web.startswith("file:"):
        return True
    from urllib.parse import urlsplit

    from agent.offline import is_loopback_host

    return is_loopback_host(urlsplit(web).hostname or "")


def _phase_split(timings: dict[str, float]) -> dict[str, float]:
    """A step's phase timings folded into capture / model / action / settle."""
    return {
        "capture": timings.get("capture", 0.0),
        "model": timings.get("prompt", 0.0) + timings.get("generate", 0.0) + timings.get("parse", 0.0),
        "action": timings.get("gate", 0.0) + timings.get("act", 0.0),
        "settle": timings.get("settle", 0.0),
    }


def failure_class(status: str, env_error: str | None) -> str:
    """Why a task failed: environment error, step budget, no answer or wrong answer."""
    if env_error is not None or status == "error":
        return "environment"
    if status in ("max_steps", "timeout"):
        return "step_budget"
    if status == "success":
        return "wrong_answer"
    return "no_answer"


def _as_dict(verdict: Any) -> dict[str, Any]:
    if isinstance(verdict, dict):
        return verdict
    try:
        return asdict(verdict)
    except TypeError:
        return {"passed": bool(getattr(verdict, "passed", False)),
                "reason": str(getattr(verdict, "reason", ""))}


def collect_evidence(task: Any, *, cdp: Any, server: Any, result: Any) -> Any:
    """What the judges look at: final answer and status, final URL, page-state JS, server state."""
    from agent.eval.cdp import CdpError
    from agent.eval.judges import Evidence, page_expressions
    from agent.loop import RunStatus

    try:
        final_url = cdp.url()
    except Exception:
        final_url = ""
    page_values: dict[str, Any] = {}
    for expr in page_expressions(task.eval):
        try:
            page_values[expr] = cdp.evaluate(expr)
        except CdpError:
            pass  # a missing value fails its check, with the judge saying so
    terminated = result.status in (RunStatus.SUCCESS, RunStatus.FAILURE)
    return Evidence(answer=result.answer, status=result.status.value if terminated else None,
                    final_url=final_url, page_values=page_values, server_state=server.state())


def _miniwob_start(cdp: Any) -> str:
    """Start a MiniWoB++ episode with a long time-out; returns its instruction text."""
    cdp.evaluate(f"core.EPISODE_MAX_TIME = {MINIWOB_EPISODE_MS}; core.startEpisodeReal(); true")
    return str(cdp.evaluate("(document.getElementById('query') || {}).textContent || ''")).strip()


def _miniwob_verdict(cdp: Any) -> dict[str, Any]:
    """MiniWoB++'s own reward: the raw reward (no time penalty) must be positive."""
    done, raw, reason = cdp.evaluate("[WOB_DONE_GLOBAL, WOB_RAW_REWARD_GLOBAL, WOB_REWARD_REASON]")
    raw = float(raw or 0.0)
    return {"passed": bool(done) and raw > 0, "reward": raw,
            "reason": f"MiniWoB reward {raw:g}" + (f" ({reason})" if reason else "")
            + ("" if done else "; the episode did not end")}
